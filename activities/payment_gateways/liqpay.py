"""LiqPay (API 3, https://www.liqpay.ua/documentation): every request and callback is
`data` = base64(JSON) with `signature` = base64(sha1(private_key + data + private_key)).

A payment is a checkout: the signed form is posted to `/api/3/checkout`, whose redirect is
the short page the customer pays on (an answer without one: the checkout link itself).
Our order id is LiqPay's `order_id` and so the payment's id here; LiqPay reports to
`server_url` (final statuses success, failure, error, reversed; `sandbox` for a test
payment, which pays an order only while `sandbox` is on). Status and refunds go to
`/api/request` (`action` status, refund); LiqPay takes no idempotency key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

from temporalio.exceptions import ApplicationError

from activities.payment_gateways import (
    BadSignature,
    CreatedPayment,
    InvalidCallback,
    Notice,
    PaymentNotice,
    PaymentRequest,
    ProviderPayment,
    RefundReceipt,
    from_epoch_ms,
    major,
)
from activities.providers import Provider
from schema.contracts import PaymentFailure
from schema.vocabulary import ErrorType

CHECKOUT = "/api/3/checkout"
REQUEST = "/api/request"
FINAL = {
    "success": Notice.SUCCEEDED,
    "failure": Notice.FAILED,
    "error": Notice.FAILED,
    "reversed": Notice.REFUNDED,
}
# LiqPay's err_code (https://www.liqpay.ua/en/doc/api/errors) as the customer's reason.
FAILURES = {
    "limit": PaymentFailure.CARD_DECLINED,
    "frod": PaymentFailure.CARD_DECLINED,
    "decline": PaymentFailure.CARD_DECLINED,
    "err_card_type": PaymentFailure.CARD_DECLINED,
    "err_card_country": PaymentFailure.CARD_DECLINED,
    "err_card_liqpay_def": PaymentFailure.CARD_DECLINED,
    "payment_err_sender_card": PaymentFailure.CARD_DECLINED,
    "amount_limit": PaymentFailure.CARD_DECLINED,
    "err_verify_code": PaymentFailure.AUTHENTICATION_FAILED,
    "err_sms_otp": PaymentFailure.AUTHENTICATION_FAILED,
    "err_get_verify_code": PaymentFailure.AUTHENTICATION_FAILED,
}


def signature(private_key: str, data: str) -> str:
    digest = hashlib.sha1(f"{private_key}{data}{private_key}".encode()).digest()
    return base64.b64encode(digest).decode()


def encode(params: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(params, ensure_ascii=False).encode()).decode()


def decode(data: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(base64.b64decode(data, validate=True), parse_float=Decimal)
    return body


def signed_form(private_key: str, params: Mapping[str, Any]) -> dict[str, str]:
    data = encode(params)
    return {"data": data, "signature": signature(private_key, data)}


def read_signed(private_key: str, body: bytes) -> dict[str, Any]:
    """The `data` of a form `data=…&signature=…`, once its signature holds."""
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
        [data], [given] = form["data"], form["signature"]
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise BadSignature("a LiqPay callback is a form of data and signature") from exc
    if not hmac.compare_digest(signature(private_key, data), given):
        raise BadSignature("the signature does not match the data")
    try:
        return decode(data)
    except ValueError as exc:
        raise InvalidCallback(f"the data is not base64 JSON: {exc}") from exc


class LiqPayGateway:
    name = "liqpay"
    takes_refund_key = False

    def __init__(self, api: Provider, public_key: str, private_key: str, sandbox: bool) -> None:
        self._api = api
        self._public_key = public_key
        self._private_key = private_key
        self._sandbox = sandbox

    def _params(self, action: str, **params: Any) -> dict[str, Any]:
        return {"version": 3, "public_key": self._public_key, "action": action, **params}

    def checkout(self, request: PaymentRequest) -> dict[str, Any]:
        """The checkout's parameters (LiqPay's field names)."""
        params = self._params(
            "pay",
            amount=str(request.amount),
            currency=request.currency,
            description=f"Order {request.number}",
            order_id=request.order_id,
            server_url=request.callback_url,
            result_url=request.return_url,
            expired_date=request.expires_at.strftime("%Y-%m-%d %H:%M:%S"),  # UTC
            language="uk",
        )
        return {**params, "sandbox": "1"} if self._sandbox else params

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        form = signed_form(self._private_key, self.checkout(request))
        answer = await self._api.send("POST", CHECKOUT, form=form)
        url = answer.headers.get("location") or f"{self._api.url(CHECKOUT)}?{urlencode(form)}"
        return CreatedPayment(request.order_id, url, request.expires_at)

    async def _request(self, params: dict[str, Any]) -> dict[str, Any]:
        answer = await self._api.call("POST", REQUEST, form=signed_form(self._private_key, params))
        if answer.get("result") == "error" or answer.get("status") == "error":
            raise ApplicationError(
                f"liqpay refused {params['action']}: {answer.get('err_code')} "
                f"{answer.get('err_description', '')}",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        return answer

    async def status(self, payment_id: str) -> ProviderPayment:
        answer = await self._request(self._params("status", order_id=payment_id))
        return ProviderPayment(
            self._outcome(str(answer.get("status"))),
            major(answer["amount"]),
            str(answer["currency"]),
            major(answer.get("refund_amount") or 0),
        )

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt:
        answer = await self._request(
            self._params("refund", order_id=payment_id, amount=str(amount))
        )
        refund_id = str(answer.get("payment_id") or "") or None
        return RefundReceipt(refund_id, confirmed=answer.get("status") == "reversed")

    async def cancel(self, payment_id: str) -> None:
        """LiqPay cannot withdraw a checkout: it stays payable until its `expired_date`."""

    def _outcome(self, status: str) -> Notice:
        if status == "sandbox":  # a test payment pays an order only in sandbox mode
            return Notice.SUCCEEDED if self._sandbox else Notice.PENDING
        return FINAL.get(status, Notice.PENDING)

    async def read_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        data = read_signed(self._private_key, body)
        try:
            status, order_id = str(data["status"]), str(data["order_id"])
            outcome = self._outcome(status)
            refunded = outcome == Notice.REFUNDED and data.get("refund_amount")
            at = from_epoch_ms(data.get("end_date") or data.get("create_date"))
            return PaymentNotice(
                event_id=f"{data.get('payment_id') or order_id}:{status}:{at.timestamp() if at else ''}",
                outcome=outcome,
                order_ref=order_id,
                payment_id=order_id,
                amount=major(refunded or data["amount"]),
                currency=str(data["currency"]),
                at=at,
                reason=FAILURES.get(str(data.get("err_code") or ""), PaymentFailure.OTHER).value
                if outcome == Notice.FAILED
                else "",
                status=status,
            )
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise InvalidCallback(f"not a LiqPay callback: {exc!r}") from exc
