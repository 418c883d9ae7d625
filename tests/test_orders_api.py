"""An order posted over HTTP becomes a workflow that confirms it by e-mail (dev server, real parts)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.client import Client

from devstack.mailsink import MailSink
from schema.api.fields import Role
from schema.database import open_session
from schema.tables import Customer, Notification, Order, OrderEvent
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import (
    body_text,
    decoded_history,
    eventually,
    mail_to,
    order_handle,
    sample_order,
    until_status,
    wait_for_mail,
)


async def _order_count(engine: AsyncEngine, number: str) -> int:
    async with open_session(engine) as session:
        query = select(func.count()).select_from(Order).where(Order.number == number)
        return (await session.exec(query)).one()


async def _confirmed(api: httpx.AsyncClient, client: Client, order_id: str) -> dict[str, Any]:
    """The order's view once the confirmation is recorded (the workflow then goes on to stock)."""
    await until_status(
        client, order_id, lambda s: "order.confirmed" in [e.type for e in s.timeline]
    )
    response = await api.get(f"/v1/orders/{order_id}", params={"live": "true"})
    assert response.status_code == 200
    return dict(response.json())


async def test_order_is_confirmed_by_email(
    api: httpx.AsyncClient,
    client: Client,
    mail_sink: MailSink,
    engine: AsyncEngine,
    dev_stack: Stack,
) -> None:
    order = sample_order()
    email = order["customer"]["email"]

    response = await api.post("/v1/orders", json=order)

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["number"] == order["number"]
    assert accepted["status"] == "received"
    assert accepted["links"]["self"] == f"/v1/orders/{accepted['order_id']}"
    messages = await wait_for_mail(mail_sink.maildir, email)
    assert len(messages) == 1
    message = messages[0]
    assert order["number"] in str(message["Subject"])
    assert "підтверджено" in str(message["Subject"])  # Ukrainian template for locale uk
    text, html = body_text(message, "plain"), body_text(message, "html")
    for body in (text, html):
        assert "Iryna Koval" in body
        assert order["number"] in body
        assert "Mug" in body and "MUG-01" in body
        assert "500,00" in body  # 2 x 250.00 UAH, formatted for uk
    assert "<table" in html

    view = await _confirmed(api, client, accepted["order_id"])
    assert view["status"] == "processing"
    assert view["expected_date"] is not None
    assert view["expected_date"] in str(view["workflow"]["expected_date"])
    assert [e["type"] for e in view["timeline"]][:5] == [
        "order.received",
        "order.validation_started",
        "order.validated",
        "order.confirmation_started",
        "order.confirmed",
    ]
    assert [e["type"] for e in view["workflow"]["timeline"]][:5] == [
        e["type"] for e in view["timeline"]
    ][:5]
    assert view["notifications"][0] == {
        "kind": "confirmation",
        "channel": "email",
        "recipient": f"{email[:2]}***@example.com",
        "status": "sent",
        "sent_at": view["notifications"][0]["sent_at"],
        "delivery": None,  # plain SMTP: no ESP reports on it
        "delivered_via": None,
    }
    # An admin sees the personal data; support sees it masked.
    assert view["customer"]["email"] == email and view["customer"]["name"] == "Iryna Koval"
    support = await dev_stack.as_role[Role.SUPPORT].get(f"/v1/orders/{accepted['order_id']}")
    masked = support.json()["customer"]
    assert masked["email"] == f"{email[:2]}***@example.com"
    assert masked["phone"] == "+38050***4567"
    assert masked["name"] == "Iryna K." and masked["address"] is None


async def test_every_message_is_dated_and_comes_from_the_shop(
    dev_stack: Stack, mail_sink: MailSink
) -> None:
    """The headers a mail reader shows and sorts by, on the real message in the SMTP sink."""
    order = sample_order()
    sent_from = datetime.now(UTC)
    response = await dev_stack.api.post("/v1/orders", json=order)
    assert response.status_code == 202, response.text
    [message] = await wait_for_mail(mail_sink.maildir, order["customer"]["email"])

    settings = dev_stack.settings
    assert message["From"] == f"{settings.shop_name} <{settings.smtp_sender}>"
    assert message["Reply-To"] == settings.support_email  # no reply-to set: support answers
    dated = parsedate_to_datetime(str(message["Date"]))
    assert sent_from - timedelta(seconds=1) <= dated <= datetime.now(UTC)
    domain = settings.smtp_sender.rpartition("@")[2]
    assert str(message["Message-ID"]).endswith(f"@{domain}>"), message["Message-ID"]
    assert response.json()["order_id"] in str(message["Message-ID"])


async def test_same_request_twice_is_one_order(
    api: httpx.AsyncClient, client: Client, mail_sink: MailSink, engine: AsyncEngine
) -> None:
    order = sample_order()

    first = await api.post("/v1/orders", json=order)
    second = await api.post("/v1/orders", json=order)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == first.json()
    assert await _order_count(engine, order["number"]) == 1
    await _confirmed(api, client, first.json()["order_id"])
    assert len(mail_to(mail_sink.maildir, order["customer"]["email"])) == 1


async def test_used_number_with_another_body_is_409_and_changes_nothing(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = sample_order()
    assert (await api.post("/v1/orders", json=order)).status_code == 202
    other = sample_order(number=order["number"])  # same number, another customer and e-mail
    other["lines"][0]["quantity"] = 3

    response = await api.post("/v1/orders", json=other)

    assert response.status_code == 409
    assert order["number"] in response.json()["detail"]
    assert await _order_count(engine, order["number"]) == 1
    async with open_session(engine) as session:
        stranger = await session.exec(
            select(Customer).where(Customer.email == other["customer"]["email"])
        )
        assert stranger.first() is None


def _without(path: str) -> dict[str, Any]:
    order = sample_order()
    *parents, leaf = path.split(".")
    node: Any = order
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[leaf]
    return order


def _with(path: str, value: Any) -> dict[str, Any]:
    order = sample_order()
    *parents, leaf = path.split(".")
    node: Any = order
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(leaf) if leaf.isdigit() else leaf] = value
    return order


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (_with("customer.phone", "12345"), "customer.phone"),
        (_with("customer.phone", "+380 00"), "customer.phone"),
        (_with("customer.email", "iryna-at-example.com"), "customer.email"),
        (_without("delivery.address"), "delivery"),
        (_with("delivery.method", "teleport"), "delivery.method"),
        (_with("payment.method", "barter"), "payment.method"),
        (_with("lines.0.quantity", 0), "lines.0.quantity"),
        (_with("lines.0.quantity", -2), "lines.0.quantity"),
        (_with("lines.0.unit_price", 250.0), "lines.0.unit_price"),
        (_with("lines.0.unit_price", "25O.00"), "lines.0.unit_price"),
        (_with("lines", []), "lines"),
        (_with("currency", "XYZ"), "currency"),
        (_with("delivery.address.postal_code", ""), "delivery.address.postal_code"),
        (_without("customer.name"), "customer.name"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_invalid_order_is_422_naming_the_field_and_creates_nothing(
    api: httpx.AsyncClient, engine: AsyncEngine, order: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/orders", json=order)

    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body["errors"]], body
    assert field in body["detail"]
    assert all(e["message"] for e in body["errors"])
    assert await _order_count(engine, order["number"]) == 0


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        ("UAK", "not an ISO 4217 currency in use today"),  # the karbovanets, gone since 1996
        ("DEM", "not an ISO 4217 currency in use today"),
        ("XAU", "not an ISO 4217 currency in use today"),  # gold is no price
        ("uah", "use upper case: UAH"),
        ("Eur", "use upper case: EUR"),
    ],
)
async def test_only_a_currency_in_use_today_is_taken_and_lower_case_is_told_how(
    api: httpx.AsyncClient, engine: AsyncEngine, currency: str, message: str
) -> None:
    order = _with("currency", currency)
    response = await api.post("/v1/orders", json=order)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "currency" and message in error["message"]
    assert await _order_count(engine, order["number"]) == 0
    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]["OrderCreate"]
    codes = schema["properties"]["currency"]["enum"]
    assert {"UAH", "EUR", "USD", "PLN"} <= set(codes) and not {"UAK", "DEM", "XAU"} & set(codes)


async def test_pickup_needs_no_address(api: httpx.AsyncClient, client: Client) -> None:
    order = sample_order(delivery={"method": "pickup", "pickup_point": "KYIV-01"})
    response = await api.post("/v1/orders", json=order)
    assert response.status_code == 202, response.text
    view = await _confirmed(api, client, response.json()["order_id"])
    assert view["delivery_method"] == "pickup"


async def test_unknown_order_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/v1/orders/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


async def test_a_second_order_under_the_same_email_leaves_the_first_untouched(
    dev_stack: Stack,
) -> None:
    phones = [f"+38050{random.randrange(10**7):07d}", f"+4860{random.randrange(10**7):07d}"]
    first = await Journey.place(
        dev_stack,
        customer={**sample_order()["customer"], "phone": phones[0], "channels": ["sms", "email"]},
    )
    await first.waiting_for("payment")
    email = first.body["customer"]["email"]
    second = await Journey.place(
        dev_stack,
        customer={
            "name": "Olha Petrenko",
            "email": email.upper(),  # the same person's e-mail, spelled otherwise
            "phone": phones[1],
            "locale": "en",
            "channels": ["push", "email"],
            "push_token": f"push-{uuid.uuid4().hex[:8]}",
        },
        delivery={
            "method": "courier",
            "address": {
                "country": "PL",
                "city": "Warszawa",
                "line1": "Marszalkowska 1",
                "postal_code": "00-001",
            },
        },
    )
    await second.waiting_for("payment")

    view = (await dev_stack.api.get(f"/v1/orders/{first.order_id}")).json()
    assert view["customer"] == {
        "name": "Iryna Koval",
        "email": email,
        "phone": phones[0],
        "locale": "uk",
        "address": "Khreshchatyk 1, 01001 Kyiv, UA",
    }
    await first.pay()  # a message in flight: to the first order's phone, in its language
    await first.reached("payment.succeeded")

    async def sent_to(gateway: str) -> list[dict[str, Any]]:
        messages = (await dev_stack.sim.get(f"/{gateway}/v1/messages")).json()
        return [m for m in messages if m["key"].startswith(f"{first.order_id}:")]

    async def received() -> list[dict[str, Any]]:
        sms = await sent_to("sms")
        return sms if any(":payment_received:" in m["key"] for m in sms) else []

    assert {m["to"] for m in await eventually(received, what="the SMS")} == {phones[0]}
    assert await sent_to("push") == []
    support = dev_stack.as_role[Role.SUPPORT]

    async def found(q: str) -> set[str]:
        page = (await support.get("/v1/orders", params={"q": q})).json()
        return {item["order_id"] for item in page["items"]}

    assert await found(phones[0]) == {first.order_id}
    assert await found(phones[1]) == {second.order_id}
    assert await found(email) == {first.order_id, second.order_id}


async def test_workflow_history_holds_no_personal_data(dev_stack: Stack) -> None:
    """Every operator action, with a person's data in every free-text field: none of it
    reaches Temporal's history (the texts stay in Postgres, where erasure finds them)."""
    tag = uuid.uuid4().hex[:6]
    said = f"Iryna Koval {tag}, +380501234567, Khreshchatyk 1"  # what a person might type

    reviewed = await Journey.place(dev_stack, note=f"customer note: {said}")
    await reviewed.waiting_for("operator_confirmation")
    confirmed = await reviewed.act("confirm", final_price="450.00", note=f"confirm: {said}")
    assert confirmed.status_code == 200, confirmed.text
    await reviewed.waiting_for("payment")
    delayed = await reviewed.act("delay", reason="weather", new_date="2030-02-01")
    assert delayed.status_code == 200, delayed.text
    cancelled = await reviewed.act("cancel", reason="customer_request", note=f"cancel: {said}")
    assert cancelled.status_code == 200, cancelled.text

    rejected = await Journey.place(
        dev_stack, lines=[{"sku": "MUG-01", "name": "Mug", "quantity": 50, "unit_price": "1.00"}]
    )
    await rejected.waiting_for("operator_confirmation")
    refusal = await rejected.act("reject", reason=f"reject: {said}")
    assert refusal.status_code == 200, refusal.text

    short = await Journey.place(
        dev_stack,
        lines=[
            {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "250.00"},
            {"sku": "GONE-07", "name": "Sold out", "quantity": 1, "unit_price": "10.00"},
        ],
    )
    await short.waiting_for("stock_decision")
    decided = await short.act("stock-decision", choice="ship_available", note=f"stock: {said}")
    assert decided.status_code == 200, decided.text
    await short.waiting_for("payment")

    customer, address = reviewed.body["customer"], reviewed.body["delivery"]["address"]
    for order in (reviewed, rejected, short):
        history = await order_handle(dev_stack.client, order.order_id).fetch_history()
        text = decoded_history(history.to_json())
        assert order.body["number"] in text  # the search sees decoded payloads
        assert "key:operator" in text  # the updates' payloads (their actor), decoded
        for personal in (
            tag,
            customer["name"],
            "Iryna",
            "Koval",
            order.body["customer"]["email"],
            customer["phone"],
            "501234567",
            address["line1"],
            "Khreshchatyk",
        ):
            assert personal not in text, f"{personal!r} found in the workflow history"
    view = (await dev_stack.api.get(f"/v1/orders/{reviewed.order_id}")).json()
    assert {(n["action"], n["text"]) for n in view["notes"]} == {
        ("confirm", f"confirm: {said}"),
        ("cancel", f"cancel: {said}"),
    }  # the operator's words, kept beside the order
    refused = await short.act("confirm", note=f"too late: {said}")
    assert refused.status_code == 409, refused.text
    view = (await dev_stack.api.get(f"/v1/orders/{short.order_id}")).json()
    assert [n["action"] for n in view["notes"]] == ["decide_stock"]  # none for a refused action


async def test_health_reports_each_component(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200, response.text
    components = response.json()["components"]
    assert set(components) == {"database", "temporal", "smtp"}
    assert all(c["status"] == "ok" for c in components.values())
    assert components["temporal"]["workers"] >= 1


async def test_outbox_and_timeline_rows_exist(
    api: httpx.AsyncClient, client: Client, engine: AsyncEngine
) -> None:
    response = await api.post("/v1/orders", json=sample_order())
    order_id = uuid.UUID(response.json()["order_id"])
    await _confirmed(api, client, str(order_id))
    async with open_session(engine) as session:
        notes = (
            await session.exec(select(Notification).where(Notification.order_id == order_id))
        ).all()
        events = (
            await session.exec(select(OrderEvent).where(OrderEvent.order_id == order_id))
        ).all()
    confirmation = [n for n in notes if n.kind == "confirmation"]
    assert [(n.idempotency_key, n.status, n.attempts) for n in confirmation] == [
        (f"{order_id}:confirmation:email", "sent", 1)
    ]
    assert {"intake", "validation", "confirmation"} <= {e.stage for e in events}
    assert all(e.actor == "system" for e in events)
