"""The Monobank adapter against Monobank acquiring's documented shapes
(devstack/fixtures/monobank): requests carry the documented fields, webhooks verify by
ECDSA against the published key (fetched again once when it fails) and read in orderflow's
words, and a changed byte is refused. HTTP answers come from the fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from activities.payment_gateways import BadSignature, Notice, PaymentRequest
from activities.payment_gateways.monobank import MonobankGateway
from activities.providers import Provider
from devstack.fixtures import fixture

SENT: list[httpx.Request] = []


def _gateway(*answers: dict[str, object]) -> MonobankGateway:
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return httpx.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return MonobankGateway(Provider("monobank", http, "https://api.monobank.ua"), "test-token")


def _signed(name: str) -> tuple[dict[str, str], bytes]:
    hook = fixture("monobank", name)
    return {"x-sign": hook["x_sign"]}, hook["body"].encode()


async def test_invoice_carries_the_documented_fields() -> None:
    asked = fixture("monobank", "invoice_create_request")
    answer = fixture("monobank", "invoice_create_response")["body"]
    gateway = _gateway(answer)
    body = asked["body"]
    created = await gateway.create_payment(
        PaymentRequest(
            order_id=body["merchantPaymInfo"]["reference"],
            number="SHOP-1001",
            amount=Decimal("500.00"),
            currency="UAH",
            expires_at=datetime.now(UTC) + timedelta(seconds=body["validity"], milliseconds=500),
            callback_url=body["webHookUrl"],
            return_url=body["redirectUrl"],
            idempotency_key="k",
        )
    )
    assert SENT[-1].url.path == asked["path"] and SENT[-1].headers["X-Token"] == "test-token"
    assert json.loads(SENT[-1].content) == body  # kopecks, ccy 980, our reference
    assert (created.payment_id, created.url) == (answer["invoiceId"], answer["pageUrl"])


async def test_webhooks_verify_against_the_published_key_and_read_in_our_words() -> None:
    gateway = _gateway(fixture("monobank", "pubkey_response")["body"])
    paid = await gateway.read_callback(*_signed("webhook_success"))
    assert (paid.outcome, paid.amount, paid.currency) == (
        Notice.SUCCEEDED,
        Decimal("500.00"),
        "UAH",
    )
    assert paid.payment_id == "p2_9ZgpZVsl3" and paid.order_ref
    processing = await gateway.read_callback(*_signed("webhook_processing"))
    assert processing.outcome == Notice.PENDING and processing.at and paid.at
    assert processing.at < paid.at  # modifiedDate orders them
    failed = await gateway.read_callback(*_signed("webhook_failure"))
    assert (failed.outcome, failed.reason) == (Notice.FAILED, "other")
    refunded = await gateway.read_callback(*_signed("webhook_refunded"))
    assert (refunded.outcome, refunded.amount) == (Notice.REFUNDED, Decimal("100.00"))
    assert refunded.refund_id == "635ace02599849e981b2cd7a65f417fe"
    assert [r.url.path for r in SENT[-4:]].count("/api/merchant/pubkey") <= 1  # cached


async def test_a_changed_byte_fails_even_after_fetching_the_key_again() -> None:
    headers, body = _signed("webhook_success")
    gateway = _gateway(fixture("monobank", "pubkey_response")["body"])
    before = len(SENT)
    with pytest.raises(BadSignature):
        await gateway.read_callback(headers, body.replace(b"50000", b"50001", 1))
    assert [r.url.path for r in SENT[before:]] == ["/api/merchant/pubkey"] * 2  # fetched once more
    with pytest.raises(BadSignature):
        await gateway.read_callback({}, body)


async def test_refund_sends_our_reference_once() -> None:
    status = fixture("monobank", "invoice_status_response")["body"]
    cancelled = fixture("monobank", "invoice_cancel_response")["body"]
    gateway = _gateway(status, cancelled)
    receipt = await gateway.refund("p2_9ZgpZVsl3", Decimal("100.00"), "UAH", "order:refund")
    sent = json.loads(SENT[-1].content)
    assert SENT[-1].url.path == fixture("monobank", "invoice_cancel_request")["path"]
    assert set(sent) == set(fixture("monobank", "invoice_cancel_request")["body"])
    assert sent["amount"] == 10000 and receipt.confirmed and receipt.refund_id == sent["extRef"]
    # A retry finds its extRef in the cancelList: nothing is sent again.
    again = {
        **status,
        "cancelList": [{"status": "success", "amount": 10000, "extRef": sent["extRef"]}],
    }
    before = len(SENT)
    retried = await _gateway(again).refund("p2_9ZgpZVsl3", Decimal("100.00"), "UAH", "order:refund")
    assert retried.confirmed and [r.url.path for r in SENT[before:]] == [
        "/api/merchant/invoice/status"
    ]
