"""The console's pages. Sign-in opens a staff session (a cookie); every page uses the same
order services as the API — the same roles, masking, audit, and the API's request models
to read the forms — so the console can do nothing the API would refuse.

Every form that changes something (POST) carries a CSRF token that must match the browser's
CSRF cookie, and comes from our own origin (Origin, else Referer); a cross-site POST is
refused with 403. Cookies are SameSite=Strict, HttpOnly, and Secure when the public URL is
https."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError
from sqlmodel import col, select

from schema.api.actions import NoteIn, ResolveIn
from schema.api.connectors import ConnectorIn, ConnectorPatch
from schema.api.fields import OneLine
from schema.api.returns import (
    IDEMPOTENCY_KEY,
    RefundIn,
    RefundRow,
    ReturnDecisionIn,
    ReturnIn,
    ReturnOut,
)
from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    DeliveryMethod,
    FulfilmentStatus,
    PaymentMethod,
    PriceReason,
    RefundReason,
    ReturnReason,
)
from schema.database import open_session
from schema.intake import ConnectorKind
from schema.reports import DailyQuery
from schema.tables import Incident, Order, Return
from schema.vocabulary import Action, EventType
from settings import Settings
from starter.api.deps import (
    AppSettings,
    Session,
    SignInGuard,
    Workflows,
    client_ip,
    same_origin,
)
from starter.console import charts
from starter.services import (
    access,
    actions,
    connectors,
    intake,
    refunds,
    reports,
    returns,
    subscriptions,
)
from starter.services.access import (
    AccountNotFound,
    LockingOneselfOut,
    Permission,
    Principal,
    SignInLocked,
    WrongCredentials,
    close_staff_session,
    open_staff_session,
    principal_for,
)
from starter.services.errors import (
    ConnectorNotFound,
    IntakeFailureNotFound,
    OrderNotFound,
    OrderServiceError,
    SubscriptionNotFound,
)
from starter.services.orders import find_orders, search_orders, view_order

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
COOKIE = "orderflow_session"
CSRF_COOKIE = "orderflow_csrf"
CSRF_FIELD = "csrf_token"
ACTION_LABELS = {name: action.label for name, action in actions.OPERATOR_ACTIONS.items()}
ONE_LINE: TypeAdapter[str] = TypeAdapter(OneLine)

# Codes as staff read them: most are their words joined by "_"; these need others.
WORDS = {
    PaymentMethod.COD.value: "cash on delivery",
    PaymentMethod.PREPAID.value: "prepaid",
    PaymentMethod.EXCHANGE.value: "paid by a return",
    "cash_on_delivery": "to be paid on delivery",
    "collected_on_delivery": "paid on delivery",
    "not_requested": "not requested yet",
}


def words(code: object) -> str:
    """`changed_mind` -> "changed mind"; `cod` -> "cash on delivery"."""
    text = str(code.value if isinstance(code, StrEnum) else code)
    return WORDS.get(text, text.replace("_", " "))


def counted(count: int, noun: str) -> str:
    """`1 answer`, `2 answers`, `0 answers`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def in_days(value: float | None) -> str:
    """A number of days, or a dash (no unit) when there is none."""
    if value is None:
        return "—"
    return f"{value:g} day" if value == 1 else f"{value:g} days"


templates.env.filters |= {"words": words, "counted": counted, "days": in_days}


class SignInRequired(Exception):
    pass


class Refused(Exception):
    """A page that cannot be shown: rendered as an error page with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


async def same_site_form(request: Request) -> None:
    """Every console POST: from our own origin, with the CSRF token of this browser."""
    if not same_origin(request):
        raise Refused(403, "This form was not sent from the console's own pages.")
    form = await request.form()
    token, expected = form.get(CSRF_FIELD), request.cookies.get(CSRF_COOKIE)
    if not (isinstance(token, str) and expected and secrets.compare_digest(token, expected)):
        raise Refused(403, "This form has expired or was not sent from the console: reload it.")


SameSiteForm = Depends(same_site_form)


async def _principal(request: Request) -> Principal | None:
    """The signed-in staff member; an API key in the cookie is no one (the console is for
    people: a key reaches only what the API gives it)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with open_session(request.app.state.engine) as session:
        principal = await principal_for(session, token, client_ip(request))
    return principal if principal is not None and principal.session is not None else None


async def _staff(request: Request, permission: Permission = Permission.ORDERS_SEARCH) -> Principal:
    principal = await _principal(request)
    if principal is None:
        raise SignInRequired
    if not principal.may(permission):
        raise Refused(403, f"Role {principal.role.value} may not {permission.value}.")
    return principal


def _page(
    request: Request,
    name: str,
    principal: Principal | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page; it carries this browser's CSRF token (set as a cookie on its first page)."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        f"console/{name}",
        {
            "principal": principal,
            "flash": request.query_params.get("done"),
            "error": request.query_params.get("error"),
            "ACTION_LABELS": ACTION_LABELS,
            "csrf_token": token,
            "Permission": Permission,
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=_secure(request.app.state.settings),
        )
    return response


# The refunds an order's own workflow makes, by their step.
ORDER_REFUNDS = {
    "refund": "the order's cancellation",
    "refund:not-packed": "items that could not be packed",
}


def _refund_source(row: RefundRow, order_returns: list[ReturnOut]) -> str:
    """What a ledger row stands for, in words (its key is the refund's step): a return's
    refunds by the return's number, an operator's refund, the order's own."""
    kind, _, rest = row.key.partition(":")
    if kind == "return":
        return_id, _, part = rest.partition(":")
        number = next((r.number for r in order_returns if r.return_id == return_id), "a return")
        return f"return {number}" + (f" ({words(part)})" if part else "")
    if row.key in ORDER_REFUNDS:
        return ORDER_REFUNDS[row.key]
    return "an operator's refund" if row.actor else words(row.key)


def _back_to(order_id: uuid.UUID, **message: str) -> RedirectResponse:
    [(kind, text)] = message.items()
    return RedirectResponse(f"/console/orders/{order_id}?{kind}={quote(text)}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None)


@router.post("/login", dependencies=[SameSiteForm])
async def login(
    request: Request,
    db: Session,
    limits: SignInGuard,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    try:
        username = ONE_LINE.validate_python(username)
        token = await open_staff_session(
            db, limits=limits, username=username, password=password, ip=client_ip(request)
        )
    except (ValidationError, WrongCredentials):
        return _page(request, "login.html", None, 401, error="Wrong username or password.")
    except SignInLocked as locked:
        return _page(
            request,
            "login.html",
            None,
            429,
            {"Retry-After": str(locked.retry_after)},
            error=f"Too many failed sign-ins: try again in {locked.retry_after} s.",
        )
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        max_age=int(access.SESSION_LIFETIME.total_seconds()),
    )
    return response


@router.post("/logout", dependencies=[SameSiteForm])
async def logout(request: Request, db: Session) -> Response:
    """Sign out: the session ends on the server, not only in this browser."""
    principal = await _principal(request)
    if principal is not None:
        await close_staff_session(db, caller=principal)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, db: Session) -> Response:
    """What needs a person now: decisions, failed payments, SLA breaches, open incidents,
    the shops' orders that could not be taken."""
    principal = await _staff(request)
    sections = [
        ("Waiting for a decision", (await search_orders(db, needs_action=True)).items),
        ("Failed payments", (await search_orders(db, payment_failed=True)).items),
        ("SLA breaches", (await search_orders(db, sla_breached=True)).items),
    ]
    incidents = (
        await db.exec(
            select(Incident, Order.number)
            .join(Order, col(Order.id) == col(Incident.order_id))
            .where(Incident.status == "open")
            .order_by(col(Incident.id).desc())
            .limit(50)
        )
    ).all()
    waiting_returns = (
        await db.exec(
            select(Return)
            .where(col(Return.needs_action))
            .order_by(col(Return.created_at))
            .limit(50)
        )
    ).all()
    return _page(
        request,
        "queue.html",
        principal,
        sections=sections,
        incidents=incidents,
        waiting_returns=waiting_returns,
        intake_failures=await intake.open_failures(db),
    )


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, db: Session, q: str = "") -> Response:
    principal = await _staff(request)
    try:
        term = ONE_LINE.validate_python(q[:200]) if q else None
    except ValidationError:
        return _page(
            request,
            "search.html",
            principal,
            422,
            q=q,
            orders=[],
            error="Search for one line of text.",
        )
    page = await find_orders(db, caller=principal, q=term)
    return _page(request, "search.html", principal, q=q, orders=page.items)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    live: bool = False,
) -> Response:
    """The stored order (the workflow keeps its progress there); `?live=1` asks the workflow."""
    principal = await _staff(request, Permission.ORDERS_READ)
    try:
        view = await view_order(
            db,
            caller=principal,
            order_id=order_id,
            workflows=workflows,
            settings=settings,
            live=live,
        )
    except OrderNotFound as missing:
        raise Refused(404, str(missing)) from missing
    answer = view.workflow  # the workflow's `status`, when asked and answered in time
    progress = view.progress
    progress_view = {
        "waiting_for": progress.waiting_for.value if progress.waiting_for else None,
        "next_deadline": progress.next_deadline,
        "payment_status": progress.payment_status.value if progress.payment_status else None,
        "sla_breaches": sum(
            event.type == EventType.SLA_SILENCE_BREACHED for event in view.timeline
        ),
        "allowed_actions": progress.allowed_actions,
    }
    if answer is not None:
        deadline = answer.get("next_deadline")
        progress_view = {
            "waiting_for": answer.get("waiting_for"),
            "next_deadline": deadline["at"] if deadline else None,
            "payment_status": answer.get("payment_status"),
            "sla_breaches": len(answer.get("sla_breaches", [])),
            "allowed_actions": answer.get("allowed_actions", []),
        }
    if not principal.may(Permission.ORDERS_ACT):
        progress_view["allowed_actions"] = []
    order_returns = await returns.returns_of(db, order_id=order_id)
    ledger = await refunds.refunds_of(db, order_id=order_id)
    return _page(
        request,
        "order.html",
        principal,
        order=view,
        live=progress_view,
        asked_live=live,
        can_read_personal=principal.may(Permission.PERSONAL_DATA),
        can_act=principal.may(Permission.ORDERS_ACT),
        returns=order_returns,
        ledger=ledger,
        refund_sources={row.key: _refund_source(row, order_returns) for row in ledger.refunds},
        # Money is returned only for what was paid: a cash order not yet collected has
        # nothing to refund, and nothing to return before it is delivered.
        may_refund=ledger.paid is not None and ledger.left > 0,
        may_return=view.progress.fulfilment_status == FulfilmentStatus.DELIVERED
        or view.status == CustomerStatus.DELIVERED,
        request_key=secrets.token_hex(16),  # a form sent twice makes one refund, one return
        REFUND_REASONS=[reason.value for reason in RefundReason],
        RETURN_REASONS=[reason.value for reason in ReturnReason],
    )


@router.get("/orders/{order_id}/act/{action}", response_class=HTMLResponse)
async def confirm_action_page(
    request: Request,
    order_id: uuid.UUID,
    action: str,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> Response:
    """The confirmation step before any action, with what the operator decides on (the
    total, the customer's note) as the order page shows it."""
    principal = await _staff(request, Permission.ORDERS_ACT)
    if action not in actions.OPERATOR_ACTIONS:
        raise Refused(404, f"There is no action {action}.")
    try:
        order = await view_order(
            db, caller=principal, order_id=order_id, workflows=workflows, settings=settings
        )
    except OrderNotFound as missing:
        raise Refused(404, str(missing)) from missing
    return _page(
        request,
        "act.html",
        principal,
        order=order,
        action=action,
        CANCEL_REASONS=[reason.value for reason in CancelReason],
        DELAY_REASONS=[reason.value for reason in DelayReason],
        PRICE_REASONS=[reason.value for reason in PriceReason],
    )


@router.post("/orders/{order_id}/act/{action}", dependencies=[SameSiteForm])
async def act(
    request: Request, order_id: uuid.UUID, action: str, db: Session, workflows: Workflows
) -> Response:
    principal = await _staff(request, Permission.ORDERS_ACT)
    if action not in actions.OPERATOR_ACTIONS:
        raise Refused(404, f"There is no action {action}.")
    operator_action = actions.OPERATOR_ACTIONS[Action(action)]
    if await db.get(Order, order_id) is None:
        raise Refused(404, f"Order {order_id} does not exist.")
    fields, _, _ = await _filled(request)

    async def acted() -> str:
        body = operator_action.form.model_validate(fields)
        await operator_action.run(
            db, workflows=workflows, caller=principal, order_id=order_id, body=body
        )
        return f"{operator_action.label}: done."

    return await _done(order_id, acted)


async def _filled(
    request: Request, *, keyed: bool = False
) -> tuple[dict[str, str], list[dict[str, str]], str]:
    """A console form's fields (empty ones absent: the API's model then applies its defaults
    and rules), its item rows (sku, quantity), and the request key a form that makes
    something was rendered with (sent twice, it makes one)."""
    form = await request.form()
    key = form.get("request_key") if keyed else ""
    if not isinstance(key, str) or (keyed and not re.fullmatch(IDEMPOTENCY_KEY, key)):
        raise Refused(422, "This form is incomplete: reload the page.")
    fields = {
        name: value
        for name, value in form.items()
        if name not in (CSRF_FIELD, "sku", "quantity", "request_key")
        and isinstance(value, str)
        and value.strip()
    }
    rows = [
        {"sku": str(sku), "quantity": str(quantity)}
        for sku, quantity in zip(form.getlist("sku"), form.getlist("quantity"), strict=False)
        if str(quantity).strip() not in ("", "0")
    ]
    return fields, rows, key


async def _done(order_id: uuid.UUID, action: Callable[[], Awaitable[str]]) -> Response:
    """Back to the order page: what was done, or why not (a bad field, the order's refusal)."""
    try:
        done = await action()
    except ValidationError as exc:
        return _back_to(order_id, error=_problems(exc))
    except OrderServiceError as exc:
        return _back_to(order_id, error=str(exc))
    return _back_to(order_id, done=done)


def _row(row: dict[str, str]) -> dict[str, object]:
    quantity = row["quantity"]
    return {"sku": row["sku"], "quantity": int(quantity) if quantity.isdigit() else quantity}


@router.post("/orders/{order_id}/refunds", dependencies=[SameSiteForm])
async def refund(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> Response:
    """Refund an amount, or items, of the order (the ledger's limit holds here too)."""
    principal = await _staff(request, Permission.ORDERS_ACT)
    fields, rows, key = await _filled(request, keyed=True)

    async def refunded() -> str:
        lines = [_row(r) for r in rows] if rows and "amount" not in fields else None
        body = RefundIn.model_validate({**fields, **({"lines": lines} if lines else {})})
        made = await refunds.refund(
            db,
            workflows=workflows,
            settings=settings,
            caller=principal,
            order_id=order_id,
            key=key,
            body=body,
        )
        return f"Refund of {made.amount}: {made.status.replace('_', ' ')}."

    return await _done(order_id, refunded)


@router.post("/orders/{order_id}/returns", dependencies=[SameSiteForm])
async def open_return(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> Response:
    """Open a return for a customer who asked by phone or mail."""
    principal = await _staff(request, Permission.ORDERS_ACT)
    fields, rows, key = await _filled(request, keyed=True)

    async def opened() -> str:
        body = ReturnIn.model_validate({**fields, "lines": [_row(r) for r in rows]})
        ret, _ = await returns.open_return(
            db,
            workflows=workflows,
            settings=settings,
            caller=principal,
            order_id=order_id,
            key=key,
            body=body,
        )
        return f"Return {ret.number}: {ret.status.value.replace('_', ' ')}."

    return await _done(order_id, opened)


@router.post("/orders/{order_id}/returns/{return_id}/{step}", dependencies=[SameSiteForm])
async def steer_return(
    request: Request,
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    step: str,
    db: Session,
    workflows: Workflows,
) -> Response:
    """Approve or refuse a return (`decision`), or decide about its failed step (`resolve`)."""
    principal = await _staff(request, Permission.ORDERS_ACT)
    if step not in ("decision", "resolve"):
        raise Refused(404, f"There is no return step {step}.")
    fields, _, _ = await _filled(request)

    async def steered() -> str:
        if step == "decision":
            decision = ReturnDecisionIn.model_validate(
                {**fields, "approve": fields.get("approve") == "yes"}
            )
            ret = await returns.decide_return(
                db,
                workflows=workflows,
                caller=principal,
                order_id=order_id,
                return_id=return_id,
                body=decision,
            )
        else:
            ret = await returns.resolve_return_step(
                db,
                workflows=workflows,
                caller=principal,
                order_id=order_id,
                return_id=return_id,
                choice=ResolveIn.model_validate(fields).choice,
            )
        return f"Return {ret.number}: {ret.status.value.replace('_', ' ')}."

    return await _done(order_id, steered)


@router.post("/orders/{order_id}/notes", dependencies=[SameSiteForm])
async def add_note(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    text: Annotated[str, Form()],
    customer_contact: Annotated[bool, Form()] = False,
) -> Response:
    principal = await _staff(request, Permission.ORDERS_NOTE)
    try:
        note = NoteIn.model_validate({"text": text, "customer_contact": customer_contact})
        await actions.add_note(db, caller=principal, order_id=order_id, body=note, via="console")
    except ValidationError:
        return _back_to(
            order_id, error="A note is 1 to 2000 characters of text (no control characters)."
        )
    except OrderNotFound as missing:
        raise Refused(404, str(missing)) from missing
    return _back_to(order_id, done="Note added.")


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, db: Session) -> Response:
    """Admins: staff accounts, with disable, enable and end-sessions buttons."""
    principal = await _staff(request, Permission.ADMINISTER)
    return _page(request, "accounts.html", principal, accounts=await access.list_accounts(db))


@router.post("/accounts/{username}/{change}", dependencies=[SameSiteForm])
async def change_account(request: Request, username: str, change: str, db: Session) -> Response:
    principal = await _staff(request, Permission.ADMINISTER)
    try:
        if change == "revoke-sessions":
            ended = await access.revoke_sessions(db, caller=principal, username=username)
            done = f"{username}: {ended} session(s) ended."
        elif change in ("disable", "enable"):
            disabled = change == "disable"
            await access.set_account_disabled(
                db, caller=principal, username=username, disabled=disabled
            )
            done = f"{username}: {change}d."
        else:
            raise Refused(404, f"There is no account change {change}.")
    except AccountNotFound as missing:
        raise Refused(404, str(missing)) from missing
    except LockingOneselfOut as refused:
        return RedirectResponse(f"/console/accounts?error={quote(str(refused))}", status_code=303)
    return RedirectResponse(f"/console/accounts?done={quote(done)}", status_code=303)


@router.get("/connectors", response_class=HTMLResponse)
async def connectors_page(request: Request, db: Session, settings: AppSettings) -> Response:
    """Admins: the shop platforms orders arrive from — add one, enable or disable it.
    Credentials are asked, never shown: only whether each is set and how it is kept."""
    principal = await _staff(request, Permission.ADMINISTER)
    return _page(
        request,
        "connectors.html",
        principal,
        connectors=await connectors.list_connectors(db),
        kinds=[kind.value for kind in ConnectorKind],
        public_url=settings.public_url,
    )


@router.post("/connectors", dependencies=[SameSiteForm])
async def add_connector(
    request: Request,
    db: Session,
    settings: AppSettings,
    kind: Annotated[str, Form()],
    name: Annotated[str, Form()],
    webhook_secret: Annotated[str, Form()] = "",
) -> Response:
    principal = await _staff(request, Permission.ADMINISTER)
    try:
        body = ConnectorIn.model_validate(
            {"kind": kind, "name": name, "credentials": {"webhook_secret": webhook_secret}}
        )
        await connectors.create_connector(db, caller=principal, body=body, settings=settings)
    except ValidationError as invalid:
        field = ".".join(str(part) for part in invalid.errors()[0]["loc"])
        return RedirectResponse(f"/console/connectors?error={quote(f'Check {field}.')}", 303)
    except OrderServiceError as refused:
        return RedirectResponse(f"/console/connectors?error={quote(str(refused))}", 303)
    return RedirectResponse(f"/console/connectors?done={quote(f'{name} added.')}", 303)


@router.post("/connectors/{name}/{change}", dependencies=[SameSiteForm])
async def change_connector(
    request: Request, name: str, change: str, db: Session, settings: AppSettings
) -> Response:
    principal = await _staff(request, Permission.ADMINISTER)
    if change not in ("enable", "disable"):
        raise Refused(404, f"There is no connector change {change}.")
    try:
        await connectors.update_connector(
            db,
            caller=principal,
            name=name,
            body=ConnectorPatch(enabled=change == "enable"),
            settings=settings,
        )
    except ConnectorNotFound as missing:
        raise Refused(404, str(missing)) from missing
    return RedirectResponse(f"/console/connectors?done={quote(f'{name}: {change}d.')}", 303)


@router.post("/intake-failures/{failure_id}/resolve", dependencies=[SameSiteForm])
async def resolve_intake_failure(request: Request, failure_id: int, db: Session) -> Response:
    principal = await _staff(request, Permission.ORDERS_ACT)
    try:
        await intake.resolve_failure(db, caller=principal, failure_id=failure_id)
    except IntakeFailureNotFound as missing:
        raise Refused(404, str(missing)) from missing
    return RedirectResponse(f"/console?done={quote(f'Intake failure {failure_id} resolved.')}", 303)


@router.get("/subscriptions", response_class=HTMLResponse)
async def subscriptions_page(request: Request, db: Session) -> Response:
    """Admins: the shop's event subscriptions, with what waits and what failed."""
    principal = await _staff(request, Permission.ADMINISTER)
    rows = await subscriptions.list_subscriptions(db, caller=principal)
    return _page(request, "subscriptions.html", principal, subscriptions=rows)


@router.get("/subscriptions/{subscription_id}", response_class=HTMLResponse)
async def deliveries_page(
    request: Request, subscription_id: uuid.UUID, db: Session, status: str = ""
) -> Response:
    """One subscription's delivery log, newest first, with a redeliver button per row."""
    principal = await _staff(request, Permission.ADMINISTER)
    wanted = status if status in ("pending", "delivered", "failed") else None
    try:
        subscription = await subscriptions.get_subscription(
            db, caller=principal, subscription_id=subscription_id
        )
        page = await subscriptions.deliveries(
            db, caller=principal, subscription_id=subscription_id, status=wanted, limit=200
        )
    except SubscriptionNotFound as missing:
        raise Refused(404, str(missing)) from missing
    return _page(
        request,
        "deliveries.html",
        principal,
        subscription=subscription,
        deliveries=page.items,
        status=wanted or "",
    )


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
    dependencies=[SameSiteForm],
)
async def redeliver(
    request: Request, subscription_id: uuid.UUID, delivery_id: int, db: Session
) -> Response:
    principal = await _staff(request, Permission.ADMINISTER)
    try:
        await subscriptions.redeliver(
            db, caller=principal, subscription_id=subscription_id, delivery_id=delivery_id
        )
    except SubscriptionNotFound as missing:
        raise Refused(404, str(missing)) from missing
    done = quote(f"Delivery {delivery_id} queued again.")
    return RedirectResponse(f"/console/subscriptions/{subscription_id}?done={done}", 303)


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request, db: Session) -> Response:
    """The managers' charts over a date range (both days included), with the API's filters."""
    principal = await _staff(request, Permission.REPORTS_READ)
    params = request.query_params
    today = datetime.now(UTC).date()
    first, last = (
        params.get("from") or str(today - timedelta(days=29)),
        params.get("to") or str(today),
    )
    filters = {
        key: params[key]
        for key in ("delivery_method", "payment_method", "carrier")
        if params.get(key, "").strip()
    }
    form = {"from": first, "to": last, **filters}
    try:
        since = datetime.combine(_day(first), time(), UTC)
        until = datetime.combine(_day(last), time(), UTC) + timedelta(days=1)
        if until <= since:
            raise ValueError("the last day comes before the first")
        query = DailyQuery.model_validate({"since": since, "until": until, **filters})
    except ValueError as exc:  # a bad date, a window backwards, an unknown filter
        return _page(request, "reports.html", principal, form=form, error=_problems(exc))
    summary = await reports.summary(db, query=query)
    daily = await reports.daily(db, query=query)
    days = [day.day for day in daily.days]
    reasons = {
        reason: [day.cancellations_by_reason.get(reason, 0) for day in daily.days]
        for reason in summary.cancellations_by_reason
    }
    return _page(
        request,
        "reports.html",
        principal,
        form=form,
        report=summary,
        duration=charts.duration,
        stage_chart=charts.stage_times(summary.stage_seconds),
        cancellations_chart=charts.stacked_columns(
            days, reasons, "Cancellations by reason per day"
        ),
        on_time_chart=charts.line(
            days,
            [None if d.on_time_rate is None else 100 * d.on_time_rate for d in daily.days],
            "On-time deliveries per day, percent",
            low=0,
            high=100,
            unit="%",
        ),
        nps_chart=charts.line(
            days, [d.feedback.nps for d in daily.days], "NPS per day", low=-100, high=100
        ),
        incident_peak=max(
            count
            for causes in summary.incidents.by_stage_and_cause.values()
            for count in causes.values()
        )
        or 1,
        DELIVERY_METHODS=[m.value for m in DeliveryMethod],
        PAYMENT_METHODS=[m.value for m in PaymentMethod],
    )


def _problems(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return str(exc)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD, not {text!r}") from None


async def _sign_in_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/login", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    principal = await _principal(request)
    return _page(request, "refused.html", principal, exc.status, message=str(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(Refused, _refused)
