"""Providers over real protocols: every channel, fallback, retries that send once, signed
webhooks, documents with a scannable barcode, and masking (dev server, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.carrier_rules import choose_carrier
from activities.messages import fit_sms, sms_segments
from activities.providers import Provider, SharedRate, make_http_client
from schema.database import open_session
from schema.tables import Incident, Notification, Refund, WebhookEvent
from schema.webhooks import HEADER, sign
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import body_text, eventually, mail_to, scan_barcode


async def _gateway_messages(stack: Stack, gateway: str, needle: str) -> list[dict[str, object]]:
    messages = (await stack.sim.get(f"/{gateway}/v1/messages")).json()
    return [m for m in messages if needle in json.dumps(m, ensure_ascii=False)]


async def test_sms_channel_delivers_the_confirmation(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack, customer={**_customer(), "channels": ["sms"]})

    async def sent() -> list[dict[str, object]]:
        return await _gateway_messages(dev_stack, "sms", order.body["number"])

    [sms] = await eventually(sent, what="an SMS")
    assert sms["to"] == "+380501234567"
    assert order.body["number"] in str(sms["text"])
    # The order's status page, as the message links it (the name made way for it).
    assert f"{dev_stack.settings.public_url}/order/" in str(sms["text"])
    assert str(sms["text"]).endswith("/m")
    assert sms["segments"] == sms_segments(str(sms["text"])) <= 3
    assert mail_to(dev_stack.maildir, order.body["customer"]["email"]) == []  # not by e-mail too
    [row] = await _settled(order, "confirmation")
    assert (row.channel, row.status, row.recipient_masked) == ("sms", "sent", "+38050***4567")


async def test_push_channel_delivers(dev_stack: Stack) -> None:
    customer = {**_customer(), "channels": ["push"], "push_token": f"device-{uuid.uuid4().hex[:8]}"}
    order = await Journey.place(dev_stack, customer=customer)

    async def sent() -> list[dict[str, object]]:
        return await _gateway_messages(dev_stack, "push", customer["push_token"])

    [push] = await eventually(sent, what="a push message")
    assert order.body["number"] in str(push["title"])
    assert str(push["url"]).startswith(f"{dev_stack.settings.public_url}/order/")  # a tap opens it


async def test_a_channel_that_fails_permanently_falls_back_to_the_next(dev_stack: Stack) -> None:
    customer = {**_customer(), "channels": ["push", "email"], "push_token": "expired-token-1"}
    order = await Journey.place(dev_stack, customer=customer)

    await eventually(
        lambda: _async(mail_to(dev_stack.maildir, customer["email"])), what="the fallback e-mail"
    )
    rows = await _settled(order, "confirmation")
    assert [(n.channel, n.status) for n in rows] == [("push", "undeliverable"), ("email", "sent")]
    assert "expired" in (rows[0].last_error or "")


async def test_gateway_down_for_a_while_still_sends_exactly_once(dev_stack: Stack) -> None:
    before = (await dev_stack.sim.get("/sms/sim/attempts")).json()["attempts"]
    await dev_stack.sim.post("/sms/sim/fail", params={"count": 3})
    order = await Journey.place(dev_stack, customer={**_customer(), "channels": ["sms"]})

    async def sent() -> list[dict[str, object]]:
        return await _gateway_messages(dev_stack, "sms", order.body["number"])

    await eventually(sent, timeout=30, what="the SMS after the outage")
    await order.until(lambda s: "order.confirmed" in Journey.types(s))
    assert len(await sent()) == 1
    attempts = (await dev_stack.sim.get("/sms/sim/attempts")).json()["attempts"] - before
    assert attempts >= 4  # three refused, then delivered
    [row] = [n for n in await order.outbox() if n.kind == "confirmation"]
    assert row.status == "sent" and row.attempts >= 4


def test_sms_segments_count_gsm_and_cyrillic() -> None:
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2
    assert (
        sms_segments("я" * 70) == 1 and sms_segments("я" * 71) == 2 and sms_segments("я" * 135) == 3
    )
    long = fit_sms("я" * 500)
    assert sms_segments(long) == 3 and long.endswith("…")


async def _post_webhook(
    stack: Stack, provider: str, payload: dict[str, object], secret: str, **sig: int
) -> int:
    body = json.dumps(payload).encode()
    response = await stack.api.post(
        f"/v1/webhooks/{provider}",
        content=body,
        headers={HEADER: sign(secret, body, **sig), "content-type": "application/json"},
    )
    return response.status_code


async def _webhook_rows(stack: Stack, order_id: str) -> int:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(WebhookEvent).where(WebhookEvent.order_id == uuid.UUID(order_id))
        )
        return len(rows.all())


async def test_bad_or_stale_signatures_are_refused_and_change_nothing(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    refs = await order.refs()
    payload = {
        "event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "type": "payment.succeeded",
        "payment_id": refs.payment_id,
        "order_ref": order.order_id,
        "amount": "500.00",
        "currency": "UAH",
    }
    secret = dev_stack.settings.payment_webhook_secret

    assert await _post_webhook(dev_stack, "payment", payload, "wrong-secret") == 401
    assert (
        await _post_webhook(
            dev_stack, "payment", payload, secret, timestamp=int(time.time()) - 3600
        )
        == 401
    )
    unsigned = await dev_stack.api.post("/v1/webhooks/payment", json=payload)
    assert unsigned.status_code == 401 and HEADER in unsigned.json()["detail"]

    assert await _webhook_rows(dev_stack, order.order_id) == 0
    status = await order.status()
    assert status.waiting_for == "payment" and status.payment_status == "awaiting_payment"

    assert await _post_webhook(dev_stack, "payment", payload, secret) == 202  # the genuine one
    await order.reached("payment.succeeded")


async def test_a_replayed_webhook_changes_nothing(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    refs = await order.refs()
    payload = {
        "event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "type": "payment.failed",
        "payment_id": refs.payment_id,
        "order_ref": order.order_id,
        "amount": "500.00",
        "currency": "UAH",
        "reason": "card declined",
    }
    secret = dev_stack.settings.payment_webhook_secret
    assert await _post_webhook(dev_stack, "payment", payload, secret) == 202
    body = json.dumps(payload).encode()
    replay = await dev_stack.api.post(
        "/v1/webhooks/payment",
        content=body,
        headers={HEADER: sign(secret, body), "content-type": "application/json"},
    )
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    await order.reached("payment.failed")
    await order.waiting_for("payment")
    status = await order.status()
    assert Journey.types(status).count("payment.failed") == 1
    assert (await order.sent()).count("manager_payment_failed") == 1
    assert await _webhook_rows(dev_stack, order.order_id) == 1


async def test_a_forged_or_mismatched_payment_does_not_pay_the_order(dev_stack: Stack) -> None:
    """Validly signed events that do not match what the order asked for: an incident for a
    manager, and the order stays where it was."""
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    refs = await order.refs()
    secret = dev_stack.settings.payment_webhook_secret

    def event(**fields: str) -> dict[str, object]:
        return {
            "event_id": f"evt-{uuid.uuid4().hex[:8]}",
            "type": "payment.succeeded",
            "payment_id": refs.payment_id,
            "order_ref": order.order_id,
            "amount": "500.00",
            "currency": "UAH",
            **fields,
        }

    forged = [
        event(payment_id="pay_forged", amount="0.01"),  # a payment this order never created
        event(amount="0.01"),  # the right payment, the wrong amount
        event(currency="USD"),  # the right amount in another currency
    ]
    for payload in forged:
        assert await _post_webhook(dev_stack, "payment", payload, secret) == 202

    async def three_incidents() -> list[Incident] | None:
        found = await order.incidents()
        return found if len(found) == 3 else None

    incidents = await eventually(three_incidents, what="an incident per forged event")
    assert all(i.cause == "external" and i.stage == "payment" for i in incidents)
    assert any("pay_forged" in i.summary for i in incidents)
    await eventually(lambda: _sent_count(order, "manager_incident", 3), what="managers told")
    status = await order.waiting_for("payment")  # back to waiting, as before
    assert status.payment_status == "awaiting_payment"
    assert "payment.succeeded" not in Journey.types(status)

    assert await _post_webhook(dev_stack, "payment", event(), secret) == 202  # the genuine one
    await order.reached("payment.succeeded")


async def _sent_count(order: Journey, kind: str, count: int) -> bool:
    return (await order.sent()).count(kind) == count


async def test_a_carrier_event_for_another_parcel_changes_nothing(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    payload = {
        "event_id": f"trk-{uuid.uuid4().hex[:8]}",
        "type": "tracking",
        "tracking_number": "SIM-NOT-THIS-ONE",
        "order_ref": order.order_id,
        "status": "Delivered",
        "at": "2026-11-26T10:00:00+00:00",
    }
    secret = dev_stack.settings.carrier_webhook_secret
    assert await _post_webhook(dev_stack, "carrier", payload, secret) == 202
    await order.reached("incident.opened")
    await eventually(lambda: _sent_count(order, "manager_incident", 1), what="managers told")
    status = await order.waiting_for("carrier")  # still waiting for its own parcel
    assert "order.delivered" not in Journey.types(status)
    [incident] = await order.incidents()
    assert "SIM-NOT-THIS-ONE" in incident.summary


async def test_a_refund_event_must_match_a_refund_the_order_asked_for(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.until_paid()
    refs = await order.refs()
    payload = {
        "event_id": f"pay-{uuid.uuid4().hex[:8]}",
        "type": "payment.refunded",
        "payment_id": refs.payment_id,
        "order_ref": order.order_id,
        "amount": "500.00",
        "currency": "UAH",
    }
    secret = dev_stack.settings.payment_webhook_secret
    assert await _post_webhook(dev_stack, "payment", payload, secret) == 409  # nobody asked
    [incident] = await order.incidents()
    assert incident.cause == "external" and "no refund" in incident.summary
    assert await _webhook_rows(dev_stack, order.order_id) == 1  # the payment, not the refund

    cancelled = await order.act("cancel", reason="customer_request")  # now one is asked for
    assert cancelled.status_code == 200, cancelled.text
    async with open_session(dev_stack.engine) as session:
        [refund] = (
            await session.exec(select(Refund).where(Refund.order_id == uuid.UUID(order.order_id)))
        ).all()
    assert refund.status == "confirmed" and refund.amount == Decimal("500.00")
    assert refund.provider_refund_id and refund.provider_refund_id.startswith("ref_")


async def test_invalid_webhook_is_422_and_unknown_order_404(dev_stack: Stack) -> None:
    secret = dev_stack.settings.carrier_webhook_secret
    assert await _post_webhook(dev_stack, "carrier", {"event_id": "x"}, secret) == 422
    ghost = {
        "event_id": "e1",
        "type": "tracking",
        "order_ref": str(uuid.uuid4()),
        "tracking_number": "SIM1",
        "status": "InTransit",
        "at": "2026-01-01T00:00:00Z",
    }
    assert await _post_webhook(dev_stack, "carrier", ghost, secret) == 404


async def test_label_barcode_decodes_to_the_tracking_number(
    ts_stack: Stack, tmp_path: Path
) -> None:
    order = await Journey.place(ts_stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    status = await order.waiting_for("carrier")
    label = await ts_stack.api.get(f"/v1/orders/{order.order_id}/documents/label.pdf")
    assert label.status_code == 200 and label.headers["content-type"] == "application/pdf"
    assert await scan_barcode(label.content, tmp_path) == status.tracking_number


async def test_masking_holds_in_manager_messages_and_logs(dev_stack: Stack) -> None:
    with structlog.testing.capture_logs() as logs:
        order = await Journey.place(dev_stack)
        await order.waiting_for("payment")
        await order.pay("fail", reason="card declined")
        await order.until(lambda s: "payment.failed" in Journey.types(s))

        async def manager_mail() -> list[object]:
            return [
                m
                for m in mail_to(dev_stack.maildir, dev_stack.settings.manager_email)
                if order.body["number"] in str(m["Subject"])
            ]

        [alert] = await eventually(manager_mail, what="the manager's alert")
    email, phone = order.body["customer"]["email"], order.body["customer"]["phone"]
    text = body_text(alert, "plain")  # type: ignore[arg-type]
    assert email not in text and phone not in text
    assert f"{email[:2]}***@example.com" in text and "+38050***4567" in text
    logged = json.dumps(logs, default=str)
    assert email not in logged and phone not in logged and "Iryna Koval" not in logged
    assert f"{email[:2]}***@example.com" in logged


def _customer() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "name": "Iryna Koval",
        "email": f"iryna.{tag}@example.com",
        "phone": "+380501234567",
        "locale": "uk",
    }


async def _async(value: object) -> object:
    return value


async def _settled(order: Journey, kind: str) -> list[Notification]:
    """The outbox rows of a message once its last channel has recorded what it did (the
    provider has the message a moment before the row says `sent`)."""

    async def rows() -> list[Notification] | None:
        found = [n for n in await order.outbox() if n.kind == kind]
        return found if found and found[-1].status not in ("pending", "sending") else None

    return await eventually(rows, what=f"the {kind} recorded")


@pytest.mark.parametrize(
    ("country", "method", "skus", "speed", "expected"),
    [
        ("UA", "courier", [("MUG-01", 2)], "standard", ("NovaSim", "courier-next-day")),
        (
            "UA",
            "courier",
            [("MUG-01", 1), ("KETTLE-01", 1)],
            "standard",
            ("NovaSim", "courier-fragile"),
        ),
        ("UA", "courier", [("KETTLE-01", 1)], "express", ("NovaSim", "courier-same-day")),
        ("UA", "post", [("MUG-01", 2)], "standard", ("UkrSim", "post-standard")),
        ("UA", "courier", [("MUG-01", 100)], "standard", ("NovaSim", "freight")),  # 50 kg
        ("PL", "courier", [("MUG-01", 2)], "express", ("WorldSim", "international-express")),
        ("PL", "post", [("MUG-01", 2)], "standard", ("WorldSim", "international")),
    ],
)
def test_carrier_is_chosen_by_the_rules_in_data(
    country: str, method: str, skus: list[tuple[str, int]], speed: str, expected: tuple[str, str]
) -> None:
    choice = choose_carrier(country=country, method=method, skus=skus, speed=speed)
    assert (choice.carrier, choice.service) == expected


def test_no_rule_is_a_named_error() -> None:
    with pytest.raises(ApplicationError, match="no carrier rule") as raised:
        choose_carrier(country="PL", method="post", skus=[("MUG-01", 1000)])
    assert raised.value.type == "NoCarrier" and raised.value.non_retryable


async def test_provider_calls_respect_the_rate_limit_across_workers(dev_stack: Stack) -> None:
    """Two workers' gateways to one provider at 5 calls a second share one limit: 12 calls
    at once are spaced a fifth of a second apart (and a margin more), never 6 in one second."""
    provider = f"sms-{uuid.uuid4().hex[:6]}"  # a limit of its own, not the stack's
    async with make_http_client(5) as first, make_http_client(5) as second:
        gateways = [
            Provider(
                "sms", http, dev_stack.settings.sms_url, SharedRate(dev_stack.engine, provider, 5)
            )
            for http in (first, second)
        ]
        sent: list[float] = []

        async def call(gateway: Provider, n: int) -> None:
            await gateway.call(
                "POST", "/v1/messages", json={"to": "+380501234567", "text": f"rate {n}"}
            )
            sent.append(time.monotonic())

        started = time.monotonic()
        await asyncio.gather(*(call(gateways[n % 2], n) for n in range(12)))
    assert time.monotonic() - started >= 11 * 0.2, "12 calls took less than 11 intervals"
    sent.sort()
    assert all(sent[n + 5] - sent[n] >= 1.0 for n in range(len(sent) - 5)), sent


async def test_a_provider_busy_longer_than_the_wait_is_refused_retryably(dev_stack: Stack) -> None:
    limit = SharedRate(dev_stack.engine, f"sms-{uuid.uuid4().hex[:6]}", 2, max_wait=1.0)
    # Turns 0.6 s apart: now, in 0.6 s, and the third not within the second it may wait.
    taken = await asyncio.gather(*(limit.take_turn() for _ in range(3)), return_exceptions=True)
    refused = [outcome for outcome in taken if isinstance(outcome, ApplicationError)]
    assert len(refused) == 1 and taken.count(None) == 2, taken
    assert "at its rate limit" in str(refused[0])
    assert refused[0].type == "ProviderUnavailable" and not refused[0].non_retryable


async def test_payment_page_buttons_pay_and_fail(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    refs = await order.refs()
    assert refs.payment_url is not None
    page = await dev_stack.sim.get(
        refs.payment_url.split(str(dev_stack.sim.base_url).rstrip("/"))[-1]
    )
    assert page.status_code == 200 and 'id="pay"' in page.text and 'id="fail"' in page.text
    failed = await dev_stack.sim.post(
        f"/payment/pay/{refs.payment_id}/fail", data={"reason": "expired_card"}
    )
    assert failed.json()["webhook_status"] == 202
    status = await order.reached("payment.failed")
    assert (
        next(e for e in status.timeline if e.type == "payment.failed").detail["reason"]
        == "expired_card"
    )
    paid = await dev_stack.sim.post(f"/payment/pay/{refs.payment_id}/succeed")
    assert paid.json()["webhook_status"] == 202
    await order.reached("payment.succeeded")
