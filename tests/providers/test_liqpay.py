"""The LiqPay adapter against LiqPay's documented shapes (devstack/fixtures/liqpay): what it
sends carries the documented fields, what LiqPay sends back it reads, and a callback with
one byte changed is refused. HTTP answers come from the fixtures, not a server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.payment_gateways import BadSignature, Notice, PaymentRequest
from activities.payment_gateways.liqpay import LiqPayGateway, decode, signature
from activities.providers import Provider
from devstack.fixtures import fixture

KEY = fixture("liqpay", "callback_success")["private_key"]
SENT: list[httpx.Request] = []


def _gateway(answer: httpx.Response, sandbox: bool = False) -> LiqPayGateway:
    def handle(request: httpx.Request) -> httpx.Response:
        SENT.append(request)
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return LiqPayGateway(
        Provider("liqpay", http, "https://www.liqpay.ua"), "sandbox_i00000000", KEY, sandbox
    )


def _sent_data() -> dict[str, object]:
    form = parse_qs(SENT[-1].content.decode())
    [data], [signed] = form["data"], form["signature"]
    assert signed == signature(KEY, data)  # the documented signature over the data
    return decode(data)


def _request() -> PaymentRequest:
    asked = fixture("liqpay", "checkout_request")["data"]
    return PaymentRequest(
        order_id=asked["order_id"],
        number="SHOP-1001",
        amount=Decimal("500.00"),
        currency="UAH",
        expires_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
        callback_url=asked["server_url"],
        return_url=asked["result_url"],
        idempotency_key="k",
    )


async def test_checkout_carries_the_documented_fields_and_takes_the_redirect() -> None:
    redirect = fixture("liqpay", "checkout_response")
    gateway = _gateway(httpx.Response(redirect["status"], headers=redirect["headers"]))
    created = await gateway.create_payment(_request())

    assert SENT[-1].url.path == fixture("liqpay", "checkout_request")["path"]
    assert _sent_data() == fixture("liqpay", "checkout_request")["data"]
    assert created.url == redirect["headers"]["Location"]
    assert created.payment_id == _request().order_id


async def test_sandbox_mode_asks_for_a_test_payment() -> None:
    gateway = _gateway(httpx.Response(200, text="<html>checkout</html>"), sandbox=True)
    created = await gateway.create_payment(_request())
    assert _sent_data()["sandbox"] == "1"
    # No redirect: the checkout link itself, as a GET of the same signed form.
    assert created.url.startswith("https://www.liqpay.ua/api/3/checkout?data=")


async def test_callbacks_are_read_in_orderflows_words() -> None:
    gateway = _gateway(httpx.Response(200))

    def form(name: str) -> bytes:
        signed = fixture("liqpay", name)
        return urlencode({"data": signed["data"], "signature": signed["signature"]}).encode()

    paid = await gateway.read_callback({}, form("callback_success"))
    assert (paid.outcome, paid.amount, paid.currency) == (Notice.SUCCEEDED, Decimal("500"), "UAH")
    assert paid.order_ref == paid.payment_id == _request().order_id
    assert paid.at == datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)  # end_date, ms
    failed = await gateway.read_callback({}, form("callback_failure"))
    assert (failed.outcome, failed.reason) == (Notice.FAILED, "card_declined")  # err_code limit
    assert failed.event_id != paid.event_id
    reversed_ = await gateway.read_callback({}, form("callback_reversed"))
    assert (reversed_.outcome, reversed_.amount) == (Notice.REFUNDED, Decimal("100"))


async def test_a_changed_byte_or_another_key_fails_the_signature() -> None:
    gateway = _gateway(httpx.Response(200))
    signed = fixture("liqpay", "callback_success")
    data = signed["data"]
    tampered = data[:40] + ("A" if data[40] != "A" else "B") + data[41:]
    for body in (
        {"data": tampered, "signature": signed["signature"]},
        {"data": data, "signature": signature("another-key", data)},
        {"data": data},
    ):
        with pytest.raises(BadSignature):
            await gateway.read_callback({}, urlencode(body).encode())


async def test_a_sandbox_payment_pays_nothing_outside_sandbox_mode() -> None:
    decoded = {**fixture("liqpay", "callback_success")["decoded"], "status": "sandbox"}
    from activities.payment_gateways.liqpay import signed_form

    body = urlencode(signed_form(KEY, decoded)).encode()
    assert (await _gateway(httpx.Response(200)).read_callback({}, body)).outcome == Notice.PENDING
    live = await _gateway(httpx.Response(200), sandbox=True).read_callback({}, body)
    assert live.outcome == Notice.SUCCEEDED


async def test_refund_and_status_speak_the_request_api() -> None:
    refund = fixture("liqpay", "refund_response")["body"]
    gateway = _gateway(httpx.Response(200, json=refund))
    receipt = await gateway.refund(_request().order_id, Decimal("100.00"), "UAH", "key")
    assert _sent_data() == fixture("liqpay", "refund_request")["data"]
    assert receipt.confirmed and receipt.refund_id == str(refund["payment_id"])

    status = fixture("liqpay", "status_response")["body"]
    state = await _gateway(httpx.Response(200, json=status)).status(_request().order_id)
    assert _sent_data() == fixture("liqpay", "status_request")["data"]
    assert (state.outcome, state.refunded) == (Notice.SUCCEEDED, Decimal("100.00"))

    error = fixture("liqpay", "error_response")["body"]
    with pytest.raises(ApplicationError) as refused:
        await _gateway(httpx.Response(200, json=error)).refund("x", Decimal(1), "UAH", "k")
    assert refused.value.type == "ProviderRejected" and refused.value.non_retryable
