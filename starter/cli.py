"""`orderflow`: the command line for operators, support and admins (on the Python client).

    orderflow list --needs-action            orderflow show <order id or number> [--live]
    orderflow confirm <order_id> --price 450 orderflow cancel <order_id> --reason customer_request
    orderflow refund <order_id> --amount 100 --reason goodwill
    orderflow returns open <order_id> --item MUG-01:1 --reason wrong_size
    orderflow keys issue shop-backend --role service
    orderflow subscriptions create https://shop.example/hooks -e order.shipped -e order.delivered
    orderflow connectors create woocommerce myshop --credential webhook_secret=env:MYSHOP_WC
Every command takes --json (otherwise tables fit the terminal: 80 columns when it says
nothing). The API and key come from ORDERFLOW_API_URL and ORDERFLOW_API_KEY; with `make dev`
running, the defaults find it (.data/dev-api-key).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from schema.api.admin import StaffPassword
from schema.api.orders import OrderOut
from schema.contracts import PriceReason
from settings import get_settings
from starter.client import NotFound, OrderflowClient, OrderflowError

app = typer.Typer(help="orderflow: orders as durable workflows.", no_args_is_help=True)
keys = typer.Typer(help="API keys (admin).", no_args_is_help=True)
accounts = typer.Typer(help="Staff accounts (admin).", no_args_is_help=True)
subscriptions = typer.Typer(
    help="Order events for the shop's backend: subscriptions and their delivery log.",
    no_args_is_help=True,
)
returns = typer.Typer(help="Customer returns of an order (operators).", no_args_is_help=True)
connectors = typer.Typer(
    help="Intake connectors: the shop platforms orders arrive from (admin); the orders they "
    "could not take (operators).",
    no_args_is_help=True,
)
app.add_typer(keys, name="keys")
app.add_typer(accounts, name="accounts")
app.add_typer(subscriptions, name="subscriptions")
app.add_typer(returns, name="returns")
app.add_typer(connectors, name="connectors")
console = Console()
T = TypeVar("T")

JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json", help="Print JSON instead of a table (an answer to an action is JSON either way)."
    ),
]


def _client() -> OrderflowClient:
    settings = get_settings()
    url = os.environ.get("ORDERFLOW_API_URL", settings.public_url)
    key = os.environ.get("ORDERFLOW_API_KEY")
    key_file = settings.data_dir / "dev-api-key"
    if not key and key_file.exists():
        key = key_file.read_text().strip()
    if not key:
        raise typer.BadParameter(
            "set ORDERFLOW_API_KEY (or run `make dev`, which writes .data/dev-api-key)"
        )
    return OrderflowClient(url, key)


def _run(call: Callable[[OrderflowClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _client() as client:
            return await call(client)

    try:
        return asyncio.run(go())
    except OrderflowError as exc:
        status = f" {exc.status}" if exc.status else ""  # 0: no answer at all
        console.print(f"[red]error{status}[/red]: {exc.detail}", highlight=False, soft_wrap=True)
        for error in exc.errors:
            console.print(f"  {error.field}: {error.message}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from exc


def _print(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    """The client's answer (an API model, or a list of them) as JSON with --json (or for a
    single answer), else a table within the terminal's width (80 columns when it says
    nothing): long values fold onto further lines."""
    data = _plain(data)
    if as_json or columns is None:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in data:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_plain(item) for item in data]
    return data


def _cell(value: Any) -> str:
    """A value as a table shows it: a moment to the minute, a list joined, yes or nothing."""
    if value is None or value is False:
        return ""
    if value is True:
        return "yes"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    text = str(value)
    if len(text) > 16 and text[10:11] == "T" and text[4:5] == "-":  # ISO 8601, UTC
        return f"{text[:10]} {text[11:16]}"
    return text


async def _order_id(client: OrderflowClient, reference: str) -> str:
    """The id of the order `reference` names: its id, or its number."""
    try:
        return str(uuid.UUID(reference))
    except ValueError:
        pass
    page = await client.find_orders(reference, limit=5)
    found = [item.order_id for item in page.items if item.number == reference]
    if not found:
        raise NotFound(404, f"no order has the id or number {reference}")
    return found[0]


@app.command()
def create(file: Path, as_json: JsonFlag = False) -> None:
    """Create an order from a JSON file (idempotent on its number)."""
    order = json.loads(file.read_text())
    accepted = _run(lambda c: c.create_order(order))
    _print(accepted.model_dump(mode="json"), True)


@app.command(name="list")
def list_orders(
    q: Annotated[
        str | None, typer.Argument(help="number, phone, e-mail or tracking number")
    ] = None,
    stage: str | None = None,
    needs_action: Annotated[bool, typer.Option("--needs-action")] = False,
    sla_breached: Annotated[bool, typer.Option("--sla-breached")] = False,
    payment_failed: Annotated[bool, typer.Option("--payment-failed")] = False,
    limit: int = 50,
    as_json: JsonFlag = False,
) -> None:
    """Find orders (newest first)."""
    flags = {
        "stage": stage,
        "needs_action": needs_action or None,
        "sla_breached": sla_breached or None,
        "payment_failed": payment_failed or None,
        "limit": limit,
    }
    page = _run(lambda c: c.find_orders(q, **flags))
    rows = [{**item.model_dump(mode="json"), **item.flags.model_dump()} for item in page.items]
    _print(
        rows,
        as_json,
        ["number", "stage", "status", "total", "currency", "customer", "needs_action"],
    )


@app.command()
def show(
    order: Annotated[str, typer.Argument(help="the order's id or its number")],
    live: Annotated[
        bool, typer.Option("--live", help="Ask the workflow too (its live status, within 2 s).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """One order: stage, status, what it waits for, and its timeline; with --live, what the
    workflow itself answers now."""

    async def read(client: OrderflowClient) -> OrderOut:
        return await client.get_order(await _order_id(client, order), live=live)

    view = _run(read)
    if as_json:
        _print(view.model_dump(mode="json"), True)
        return
    progress = view.progress
    say = console.print
    say(
        f"[bold]{view.number}[/bold]  {view.stage.value} / {view.status.value}  "
        f"{view.total} {view.currency}  ({view.order_id})",
        highlight=False,
    )
    say(
        f"customer: {view.customer.name}, {view.customer.email}, {view.customer.phone}",
        markup=False,
    )
    if view.customer_note:
        say(f"customer's note: {view.customer_note}", markup=False)
    waiting = progress.waiting_for.value if progress.waiting_for else "-"
    say(f"waiting for: {waiting}   allowed: {', '.join(progress.allowed_actions) or '-'}")
    if view.workflow is not None:  # asked, and answered: the workflow's own word, now
        _say_live(view.workflow)
    elif live:
        say(f"the workflow did not answer: {view.workflow_unavailable}", markup=False)
    _print(
        [e.model_dump(mode="json") for e in view.timeline], False, ["at", "stage", "type", "actor"]
    )


def _say_live(answer: dict[str, Any]) -> None:
    """What the workflow's `status` query answered."""
    deadline = answer.get("next_deadline")
    until = f" until {_cell(str(deadline['at']))}" if deadline else ""
    for line in (
        f"the workflow answers: {answer['stage']} / {answer['status']}",
        f"  waiting for: {answer.get('waiting_for') or '-'}{until}",
        f"  allowed: {', '.join(answer.get('allowed_actions', [])) or '-'}",
        f"  payment: {answer.get('payment_status')}   fulfilment: {answer.get('fulfilment_status')}",
        f"  SLA breaches: {len(answer.get('sla_breaches', []))}",
    ):
        console.print(line, highlight=False)


@app.command()
def confirm(
    order_id: str,
    price: str | None = None,
    price_reason: Annotated[
        str | None,
        typer.Option(
            help="why the price differs from the lines' sum (the customer reads it): "
            + ", ".join(reason.value for reason in PriceReason)
        ),
    ] = None,
    note: str = "",
    as_json: JsonFlag = False,
) -> None:
    """Confirm an order awaiting review, optionally with a final price."""
    _print(
        _run(
            lambda c: c.confirm(order_id, final_price=price, price_reason=price_reason, note=note)
        ),
        True,
    )


@app.command()
def reject(order_id: str, reason: str, as_json: JsonFlag = False) -> None:
    """Reject an order awaiting review."""
    _print(_run(lambda c: c.reject(order_id, reason)), True)


@app.command()
def cancel(
    order_id: str, reason: str = "customer_request", note: str = "", as_json: JsonFlag = False
) -> None:
    """Cancel an order (until handover); compensation runs."""
    _print(_run(lambda c: c.cancel(order_id, reason, note)), True)


@app.command()
def delay(order_id: str, reason: str, new_date: str, as_json: JsonFlag = False) -> None:
    """Mark an order delayed: REASON is supplier_late, carrier_delay, high_demand, weather or
    other; NEW_DATE is YYYY-MM-DD. The customer is told, in their language."""
    _print(_run(lambda c: c.delay(order_id, reason, new_date)), True)


@app.command()
def resolve(
    order_id: str,
    choice: Annotated[str, typer.Argument(help="retry, or skip (messages and compensation)")],
    as_json: JsonFlag = False,
) -> None:
    """Decide about a step that failed for good (the order waits for it)."""
    _print(_run(lambda c: c.resolve(order_id, choice)), True)


@app.command(name="parcel-decision")
def parcel_decision(
    order_id: str,
    choice: Annotated[str, typer.Argument(help="reship, refund or cancel")],
    note: str = "",
    as_json: JsonFlag = False,
) -> None:
    """Decide about a lost or damaged parcel: send it again, refund what is left and close
    the order, or close it (nothing left to refund). The customer is told which."""
    _print(_run(lambda c: c.decide_parcel(order_id, choice, note)), True)


Items = Annotated[
    list[str] | None,
    typer.Option("--item", help="SKU:QUANTITY, once per item (e.g. --item MUG-01:1)"),
]


def _items(items: list[str] | None) -> list[dict[str, Any]] | None:
    if not items:
        return None
    parsed = []
    for item in items:
        sku, _, quantity = item.rpartition(":")
        if not sku or not quantity.isdigit():
            raise typer.BadParameter(f"{item!r} is not SKU:QUANTITY")
        parsed.append({"sku": sku, "quantity": int(quantity)})
    return parsed


@app.command()
def refund(
    order_id: str,
    reason: Annotated[
        str, typer.Option(help="goodwill, item_missing, item_damaged, price_adjustment, other")
    ],
    amount: Annotated[str | None, typer.Option(help="e.g. 100.00")] = None,
    item: Items = None,
    note: str = "",
    as_json: JsonFlag = False,
) -> None:
    """Refund an amount, or items, of a paid order (never more than was paid in all)."""
    made = _run(
        lambda c: c.refund(order_id, reason=reason, amount=amount, lines=_items(item), note=note)
    )
    _print(made, True)


@app.command()
def refunds(order_id: str, as_json: JsonFlag = False) -> None:
    """The order's refund ledger: paid, refunded, left, and every refund."""
    ledger = _run(lambda c: c.refunds(order_id))
    if as_json:
        _print(ledger, True)
        return
    console.print(f"paid {ledger.paid}  refunded {ledger.refunded}  left {ledger.left}")
    _print(ledger.refunds, False, ["key", "amount", "status", "reason", "actor"])


@returns.command("list")
def list_returns(order_id: str, as_json: JsonFlag = False) -> None:
    """The order's returns."""
    _print(
        _run(lambda c: c.returns(order_id)),
        as_json,
        ["return_id", "number", "status", "reason", "resolution", "refunded", "needs_action"],
    )


@returns.command("open")
def open_return(
    order_id: str,
    item: Items = None,
    reason: Annotated[
        str,
        typer.Option(
            help="changed_mind, wrong_size, defective, not_as_described, wrong_item, other"
        ),
    ] = "changed_mind",
    exchange: Annotated[bool, typer.Option(help="the same items again, not a refund")] = False,
    comment: str | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Open a return of a delivered order for the customer (policy decides the window)."""
    lines = _items(item)
    if not lines:
        raise typer.BadParameter("name at least one --item SKU:QUANTITY")
    resolution = "exchange" if exchange else "refund"
    opened = _run(
        lambda c: c.open_return(
            order_id, lines=lines, reason=reason, resolution=resolution, comment=comment
        )
    )
    _print(opened, True)


@returns.command("decide")
def decide_return(
    order_id: str,
    return_id: str,
    approve: Annotated[bool, typer.Option("--approve/--refuse")],
    note: str = "",
    as_json: JsonFlag = False,
) -> None:
    """Approve, or refuse, a return awaiting approval."""
    _print(_run(lambda c: c.decide_return(order_id, return_id, approve=approve, note=note)), True)


@returns.command("resolve")
def resolve_return(
    order_id: str,
    return_id: str,
    choice: Annotated[str, typer.Argument(help="retry, or skip")],
    as_json: JsonFlag = False,
) -> None:
    """Decide about a return's step that failed for good."""
    _print(_run(lambda c: c.resolve_return(order_id, return_id, choice)), True)


@app.command()
def note(
    order_id: str,
    text: str,
    customer_contact: Annotated[
        bool,
        typer.Option(help='the customer asked about the order ("where is my order?")'),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a note to an order; --customer-contact when it records the customer asking."""
    _print(_run(lambda c: c.add_note(order_id, text, customer_contact=customer_contact)), True)


@app.command()
def erase(email: str, as_json: JsonFlag = False) -> None:
    """Erase a customer's personal data (admin)."""
    _print(_run(lambda c: c.erase_customer(email)), True)


@app.command()
def audit(target: str | None = None, limit: int = 50, as_json: JsonFlag = False) -> None:
    """The audit log, newest first (admin)."""
    _print(
        _run(lambda c: c.audit_log(target, limit)),
        as_json,
        ["at", "actor", "action", "target", "ip"],
    )


@keys.command("issue")
def issue_key(
    name: str,
    role: Annotated[str, typer.Option(help="service, operator, support or admin")],
    as_json: JsonFlag = False,
) -> None:
    """Issue an API key; it is printed once."""
    _print(_run(lambda c: c.issue_key(name, role)), True)


@keys.command("list")
def list_keys(as_json: JsonFlag = False) -> None:
    _print(_run(lambda c: c.list_keys()), as_json, ["id", "name", "role", "prefix", "revoked"])


@keys.command("revoke")
def revoke_key(key_id: str, as_json: JsonFlag = False) -> None:
    _print(_run(lambda c: c.revoke_key(key_id)), True)


def _password_rule(password: str) -> str:
    """The API's rule for a staff password, checked when it is typed (before it is asked again)."""
    try:
        return STAFF_PASSWORD.validate_python(password)
    except ValidationError as exc:
        # A hidden prompt's error is shown without its message: say the rule here.
        why = exc.errors()[0]["msg"].replace("String should", "The password must")
        typer.echo(why, err=True)
        raise typer.BadParameter(why) from None


STAFF_PASSWORD: TypeAdapter[str] = TypeAdapter(StaffPassword)


@accounts.command("create")
def create_account(
    username: str,
    role: Annotated[str, typer.Option(help="operator, support or admin")],
    password: Annotated[
        str,
        typer.Option(
            prompt="Password (10 to 200 characters)",
            hide_input=True,
            confirmation_prompt=True,
            callback=_password_rule,
            help="10 to 200 characters (asked for when not given)",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create a staff account (a person's: they sign in to the console and the API)."""
    _print(_run(lambda c: c.create_account(username, password, role)), True)


@accounts.command("list")
def list_accounts(as_json: JsonFlag = False) -> None:
    """Staff accounts: role, disabled or not, open sessions."""
    _print(
        _run(lambda c: c.list_accounts()),
        as_json,
        ["username", "role", "disabled", "sessions", "created_at"],
    )


@accounts.command("disable")
def disable_account(username: str, as_json: JsonFlag = False) -> None:
    """Disable an account: it cannot sign in, and its sessions end now."""
    _print(_run(lambda c: c.disable_account(username)), True)


@accounts.command("enable")
def enable_account(username: str, as_json: JsonFlag = False) -> None:
    """Enable a disabled account."""
    _print(_run(lambda c: c.enable_account(username)), True)


@accounts.command("revoke-sessions")
def revoke_sessions(username: str, as_json: JsonFlag = False) -> None:
    """End every session of an account now (it may sign in again)."""
    _print(_run(lambda c: c.revoke_sessions(username)), True)


EventOption = Annotated[
    list[str] | None,
    typer.Option("--event", "-e", help="an event type, e.g. order.shipped (repeat for more)"),
]


@subscriptions.command("create")
def create_subscription(url: str, event: EventOption = None, as_json: JsonFlag = False) -> None:
    """Subscribe URL to order events; the signing secret is printed once."""
    _print(_run(lambda c: c.create_subscription(url, event or [])), True)


@subscriptions.command("list")
def list_subscriptions(as_json: JsonFlag = False) -> None:
    _print(
        _run(lambda c: c.list_subscriptions()),
        as_json,
        ["id", "url", "events", "active", "scope", "pending", "failed"],
    )


@subscriptions.command("update")
def update_subscription(
    subscription_id: str,
    url: str | None = None,
    event: EventOption = None,
    active: Annotated[
        bool | None, typer.Option("--active/--paused", help="resume or pause deliveries")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a subscription's URL or events (the given ones replace them), or pause it."""
    changes = {
        key: value
        for key, value in {"url": url, "events": event, "active": active}.items()
        if value is not None
    }
    _print(_run(lambda c: c.update_subscription(subscription_id, **changes)), True)


@subscriptions.command("delete")
def delete_subscription(subscription_id: str, as_json: JsonFlag = False) -> None:
    """Delete a subscription and its delivery log."""
    _run(lambda c: c.delete_subscription(subscription_id))
    if as_json:
        _print({"deleted": subscription_id}, True)
    else:
        console.print(f"deleted {subscription_id}")


@subscriptions.command("deliveries")
def deliveries(
    subscription_id: str,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: int = 50,
    as_json: JsonFlag = False,
) -> None:
    """The delivery log, newest first: each event, its attempts, the receiver's last answer."""
    page = _run(lambda c: c.deliveries(subscription_id, status=status, limit=limit))
    _print(
        page.items,
        as_json,
        ["id", "type", "order_id", "status", "attempts", "last_status_code", "last_error"],
    )


@subscriptions.command("redeliver")
def redeliver(subscription_id: str, delivery_id: int, as_json: JsonFlag = False) -> None:
    """Send a delivery again (the same event id and body)."""
    _print(_run(lambda c: c.redeliver(subscription_id, delivery_id)), True)


CredentialOption = Annotated[
    list[str] | None,
    typer.Option(
        "--credential",
        "-c",
        help="name=value, the value `env:VAR` to read it from the API's environment (repeat)",
    ),
]
SettingsOption = Annotated[
    str | None, typer.Option("--settings", help="the connector's settings as a JSON object")
]
CONNECTOR_COLUMNS = ["name", "kind", "enabled", "credentials", "webhook_path"]


def _pairs(given: list[str] | None) -> dict[str, str] | None:
    if given is None:
        return None
    pairs = dict(item.partition("=")[::2] for item in given)
    if any(not name or not value for name, value in pairs.items()):
        raise typer.BadParameter("write each as name=value", param_hint="--credential")
    return pairs


def _settings(given: str | None) -> dict[str, Any] | None:
    if given is None:
        return None
    try:
        settings = json.loads(given)
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise typer.BadParameter(
            'a JSON object, e.g. \'{"locale": "en"}\'', param_hint="--settings"
        )
    return settings


@connectors.command("create")
def create_connector(
    kind: str,
    name: str,
    credential: CredentialOption = None,
    settings: SettingsOption = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="added, not yet taking orders")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a connector (kind woocommerce, shopify, prom or rozetka); prints its webhook's path."""
    body = {
        "kind": kind,
        "name": name,
        "credentials": _pairs(credential) or {},
        "settings": _settings(settings) or {},
        "enabled": not disabled,
    }
    _print(_run(lambda c: c.create_connector(**body)), True)


@connectors.command("list")
def list_connectors(as_json: JsonFlag = False) -> None:
    """Every connector: which credentials are set (never their values)."""
    _print(_run(lambda c: c.list_connectors()), as_json, CONNECTOR_COLUMNS)


@connectors.command("update")
def update_connector(
    name: str,
    credential: CredentialOption = None,
    settings: SettingsOption = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="take orders, or not")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace credentials (those named), the settings (whole), or enable or disable it."""
    changes = {
        key: value
        for key, value in {
            "credentials": _pairs(credential),
            "settings": _settings(settings),
            "enabled": enabled,
        }.items()
        if value is not None
    }
    _print(_run(lambda c: c.update_connector(name, **changes)), True)


@connectors.command("delete")
def delete_connector(name: str, as_json: JsonFlag = False) -> None:
    """Delete a connector that brought no orders (disable one that did)."""
    _run(lambda c: c.delete_connector(name))
    if as_json:
        _print({"deleted": name}, True)
    else:
        console.print(f"deleted {name}")


@connectors.command("failures")
def intake_failures(as_json: JsonFlag = False) -> None:
    """The shops' orders that could not be taken, open ones: the field and why."""
    _print(
        _run(lambda c: c.intake_failures()),
        as_json,
        ["id", "connector", "source_order_id", "field", "message", "opened_at"],
    )


@connectors.command("resolve")
def resolve_intake_failure(failure_id: int, as_json: JsonFlag = False) -> None:
    """Close an intake failure (taken by hand, or decided against); its payload is deleted."""
    _run(lambda c: c.resolve_intake_failure(failure_id))
    if as_json:
        _print({"resolved": failure_id}, True)
    else:
        console.print(f"resolved {failure_id}")


if __name__ == "__main__":
    app()
