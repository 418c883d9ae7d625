"""The WayForPay adapter against WayForPay's documented shapes (devstack/fixtures/wayforpay):
signed requests with the documented fields, callbacks verified and read, the signed
`accept` answer, a changed byte refused. HTTP answers come from the fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from activities.payment_gateways import BadSignature, Notice, PaymentRequest
from activities.payment_gateways.wayforpay import WayForPayGateway
from activities.providers import Provider
from devstack.fixtures import fixture

KEY = fixture("wayforpay", "callback_approved")["secret_key"]
SENT: list[httpx.Request] = []


def _gateway(answer: dict[str, object]) -> WayForPayGateway:
    def handle(request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return httpx.Response(200, json=answer)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return WayForPayGateway(
        Provider("wayforpay", http, "https://api.wayforpay.com"),
        "test_merch_n1",
        KEY,
        "shop.example",
    )


async def test_invoice_is_signed_over_the_documented_fields() -> None:
    asked = fixture("wayforpay", "create_invoice_request")["body"]
    gateway = _gateway(fixture("wayforpay", "create_invoice_response")["body"])
    request = PaymentRequest(
        order_id=asked["orderReference"],
        number="SHOP-1001",
        amount=Decimal("500.00"),
        currency="UAH",
        expires_at=datetime.now(UTC) + timedelta(seconds=asked["orderTimeout"], milliseconds=500),
        callback_url=asked["serviceUrl"],
        return_url=asked["returnUrl"],
        idempotency_key="k",
    )
    assert gateway.invoice(request, asked["orderDate"]) == asked  # the documented signature too
    created = await gateway.create_payment(request)
    assert created.url == fixture("wayforpay", "create_invoice_response")["body"]["invoiceUrl"]
    assert set(json.loads(SENT[-1].content)) == set(asked)


async def test_callbacks_are_verified_read_and_accepted() -> None:
    gateway = _gateway({})
    paid = await gateway.read_callback(
        {}, fixture("wayforpay", "callback_approved")["body"].encode()
    )
    assert (paid.outcome, paid.amount, paid.order_ref) == (
        Notice.SUCCEEDED,
        Decimal("500"),
        paid.payment_id,
    )
    declined = await gateway.read_callback(
        {}, fixture("wayforpay", "callback_declined")["body"].encode()
    )
    assert (declined.outcome, declined.reason) == (Notice.FAILED, "insufficient_funds")
    refunded = await gateway.read_callback(
        {}, fixture("wayforpay", "callback_refunded")["body"].encode()
    )
    assert (refunded.outcome, refunded.amount) == (Notice.REFUNDED, Decimal("100"))
    accept = fixture("wayforpay", "accept_answer")["body"]
    assert gateway.accept(accept["orderReference"], accept["time"]) == accept


async def test_a_changed_byte_fails_the_signature() -> None:
    body = fixture("wayforpay", "callback_approved")["body"]
    with pytest.raises(BadSignature):
        await _gateway({}).read_callback({}, body.replace('"amount": 500', '"amount": 5').encode())
    with pytest.raises(BadSignature):
        await _gateway({}).read_callback({}, b"not json")


async def test_refund_is_signed_and_confirmed_by_its_answer() -> None:
    asked = fixture("wayforpay", "refund_request")["body"]
    gateway = _gateway(fixture("wayforpay", "refund_response")["body"])
    receipt = await gateway.refund(asked["orderReference"], Decimal("100.00"), "UAH", "k")
    assert json.loads(SENT[-1].content) == asked and receipt.confirmed
    state = await _gateway(fixture("wayforpay", "check_status_response")["body"]).status(
        asked["orderReference"]
    )
    assert (state.outcome, state.refunded) == (Notice.SUCCEEDED, Decimal("100"))
