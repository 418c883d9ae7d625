"""The Stripe adapter against Stripe's documented shapes (devstack/fixtures/stripe): a Checkout
Session asked with the documented fields in minor units, its answer read; events verified
by `Stripe-Signature` (a changed byte, a stale `t`, another secret fail; any of several v1
may match) and read in our words; a refund sent with its Idempotency-Key. HTTP answers come
from the fixtures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from activities.payment_gateways import (
    BadSignature,
    InvalidCallback,
    Notice,
    PaymentNotice,
    PaymentRequest,
)
from activities.payment_gateways.stripe import API_VERSION, StripeGateway, form
from activities.providers import Provider
from devstack.fixtures import fixture
from schema.webhooks import sign

ASKED = fixture("stripe", "checkout_session_request")
SECRET = fixture("stripe", "event_checkout_session_completed")["signing_secret"]
SENT: list[httpx.Request] = []


def _gateway(*answers: dict[str, object]) -> StripeGateway:
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return httpx.Response(200, json=queue.pop(0))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return StripeGateway(
        Provider("stripe", http, "https://api.stripe.com"), ASKED["secret_key"], SECRET
    )


def _sent_form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


def _event(name: str) -> bytes:
    """The fixture's event as Stripe sends it."""
    return json.dumps(fixture("stripe", name)["event"]).encode()


async def _read(
    name: str, *, secret: str = SECRET, header: str | None = None, body: bytes | None = None
) -> PaymentNotice:
    raw = _event(name)
    signed = header or sign(secret, raw, int(datetime.now(UTC).timestamp()))
    return await _gateway().read_callback({"stripe-signature": signed}, body or raw)


async def test_a_checkout_session_is_asked_with_the_documented_fields_in_minor_units() -> None:
    asked = ASKED["form"]
    expires_at = datetime.fromtimestamp(int(asked["expires_at"]), UTC)
    now = expires_at - timedelta(hours=12)
    request = PaymentRequest(
        order_id=asked["client_reference_id"],
        number="SHOP-1001",
        amount=Decimal("500.00"),
        currency="UAH",
        expires_at=expires_at,
        callback_url="https://shop.example/v1/webhooks/stripe",
        return_url=asked["success_url"],
        idempotency_key=f"{asked['client_reference_id']}:payment",
    )
    answer = fixture("stripe", "checkout_session")["body"]
    gateway = _gateway(answer)
    assert form(gateway.session(request, now)) == asked
    # The order waits 3 days, or 5 minutes: Stripe's own 24 hours (the order's timer ends the
    # wait first). What is sent never depends on the moment of the attempt (a retry's
    # Idempotency-Key must come with the same fields).
    for waits in (timedelta(days=3), timedelta(minutes=5)):
        later = replace(request, expires_at=now + waits)
        first, retried = (
            gateway.session(later, now + d) for d in (timedelta(0), timedelta(minutes=6))
        )
        assert first == retried and "expires_at" not in form(first)

    created = await gateway.create_payment(
        replace(request, expires_at=expires_at + timedelta(days=2))
    )
    assert (created.payment_id, created.url) == (answer["id"], answer["url"])
    assert created.expires_at == datetime.fromtimestamp(answer["expires_at"], UTC)
    sent = SENT[-1]
    assert (sent.method, sent.url.path) == (ASKED["method"], ASKED["path"])
    assert sent.headers["authorization"] == f"Bearer {ASKED['secret_key']}"
    assert sent.headers["stripe-version"] == API_VERSION
    assert sent.headers["idempotency-key"] == request.idempotency_key
    assert set(_sent_form(sent)) == set(asked) - {"expires_at"}

    # JPY has no minor unit: 1500 yen is 1500.
    yen = form(gateway.session(replace(request, amount=Decimal("1500"), currency="JPY"), now))
    assert yen["line_items[0][price_data][unit_amount]"] == "1500"
    assert yen["line_items[0][price_data][currency]"] == "jpy"


async def test_events_are_verified_and_read_in_our_words() -> None:
    order = ASKED["form"]["client_reference_id"]
    completed = await _read("event_checkout_session_completed")
    session = fixture("stripe", "event_checkout_session_completed")["event"]["data"]["object"]
    assert completed == PaymentNotice(
        event_id="evt_1CsCompleted0000000000001",
        outcome=Notice.SUCCEEDED,
        order_ref=order,
        payment_id=session["id"],
        amount=Decimal("500.00"),
        currency="UAH",
        at=datetime.fromtimestamp(1795860300, UTC),
        status="checkout.session.completed: complete/paid",
    )
    assert "Jenny" not in repr(completed) and "client@" not in repr(completed)
    paid = await _read("event_payment_intent_succeeded")
    assert (paid.outcome, paid.order_ref, paid.payment_id, paid.amount) == (
        Notice.SUCCEEDED,
        order,
        None,
        Decimal("500.00"),
    )
    failed = await _read("event_payment_intent_payment_failed")
    assert (failed.outcome, failed.reason) == (Notice.FAILED, "insufficient_funds")
    expired = await _read("event_checkout_session_expired")
    assert expired.outcome == Notice.EXPIRED
    refund = fixture("stripe", "refund")["body"]
    for name in ("event_refund_updated", "event_charge_refunded"):
        refunded = await _read(name)
        assert (refunded.outcome, refunded.amount, refunded.refund_id, refunded.order_ref) == (
            Notice.REFUNDED,
            Decimal("100.00"),
            refund["id"],
            order,
        )


async def test_a_charge_that_does_not_list_its_refunds_is_recorded_only() -> None:
    raw = _event("event_charge_refunded")
    event = json.loads(raw)
    del event["data"]["object"]["refunds"]  # API versions since 2022-11-15
    body = json.dumps(event).encode()
    notice = await _gateway().read_callback({"stripe-signature": sign(SECRET, body)}, body)
    assert (notice.outcome, notice.refund_id) == (Notice.PENDING, None)


async def test_a_changed_byte_a_stale_time_or_another_secret_fails_the_signature() -> None:
    raw = _event("event_checkout_session_completed")
    now = int(datetime.now(UTC).timestamp())
    with pytest.raises(BadSignature, match="does not match"):
        await _read("event_checkout_session_completed", body=raw.replace(b"50000", b"50001"))
    with pytest.raises(BadSignature, match="tolerance"):
        await _read("event_checkout_session_completed", header=sign(SECRET, raw, now - 301))
    with pytest.raises(BadSignature, match="does not match"):
        await _read("event_checkout_session_completed", secret="whsec_another")
    with pytest.raises(BadSignature, match="missing Stripe-Signature"):
        await _gateway().read_callback({}, raw)
    with pytest.raises(BadSignature, match="malformed"):
        await _read("event_checkout_session_completed", header="v1=abc")
    # Within the tolerance, early or late, it holds.
    assert await _read("event_checkout_session_completed", header=sign(SECRET, raw, now - 290))


async def test_any_of_several_v1_signatures_may_match() -> None:
    """While the endpoint's secret is rolled, Stripe signs with each: one v1 per secret."""
    raw = _event("event_payment_intent_succeeded")
    now = int(datetime.now(UTC).timestamp())
    ours = sign(SECRET, raw, now).split("v1=")[1]
    theirs = sign("whsec_the_old_one", raw, now).split("v1=")[1]
    header = f"t={now},v1={ours},v1={theirs},v0=ignored"
    assert await _read("event_payment_intent_succeeded", header=header)
    with pytest.raises(BadSignature):
        await _read("event_payment_intent_succeeded", header=f"t={now},v1={theirs},v0={ours}")


async def test_an_event_this_shop_does_not_read_is_refused_as_invalid() -> None:
    raw = _event("event_payment_intent_succeeded")
    event = {**json.loads(raw), "type": "customer.created"}
    body = json.dumps(event).encode()
    with pytest.raises(InvalidCallback):
        await _gateway().read_callback({"stripe-signature": sign(SECRET, body)}, body)


async def test_a_refund_is_sent_once_with_its_key_for_the_sessions_payment_intent() -> None:
    asked = fixture("stripe", "refund_request")
    paid = fixture("stripe", "checkout_session_paid")["body"]
    gateway = _gateway(paid, fixture("stripe", "refund")["body"])
    receipt = await gateway.refund(paid["id"], Decimal("100.00"), "UAH", asked["idempotency_key"])
    looked, sent = SENT[-2], SENT[-1]
    assert looked.url.params["expand[]"] == "payment_intent.latest_charge"
    assert (sent.method, sent.url.path) == (asked["method"], asked["path"])
    assert sent.headers["idempotency-key"] == asked["idempotency_key"]
    assert _sent_form(sent) == asked["form"]
    assert (receipt.refund_id, receipt.confirmed) == (
        fixture("stripe", "refund")["body"]["id"],
        False,
    )

    state = await _gateway(paid).status(paid["id"])
    assert (state.outcome, state.amount, state.currency, state.refunded) == (
        Notice.SUCCEEDED,
        Decimal("500.00"),
        "UAH",
        Decimal("100.00"),
    )
