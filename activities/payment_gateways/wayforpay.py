"""WayForPay (https://wiki.wayforpay.com): every request, answer and callback is signed by
`merchantSignature` = HMAC-MD5(secret key, the documented fields joined by ";").

A payment is an invoice (`transactionType` CREATE_INVOICE at `/api`, our order id as its
`orderReference`; `invoiceUrl` is the link). WayForPay reports to `serviceUrl` and expects
the signed answer `{orderReference, status: "accept", time, signature}` (`accept`), else it
tries again. Status (CHECK_STATUS), refunds (REFUND, whole or part) and withdrawing an
invoice (REMOVE_INVOICE) go to `/api` too; WayForPay takes no idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
    major,
)
from activities.providers import Provider
from schema.contracts import PaymentFailure
from schema.vocabulary import ErrorType

API = "/api"
OK = 1100
# The fields each signature covers, in the documented order.
CALLBACK_FIELDS = (
    "merchantAccount",
    "orderReference",
    "amount",
    "currency",
    "authCode",
    "cardPan",
    "transactionStatus",
    "reasonCode",
)
STATUSES = {
    "Approved": Notice.SUCCEEDED,
    "Declined": Notice.FAILED,
    "Refunded": Notice.REFUNDED,
    "Voided": Notice.REFUNDED,
    "Expired": Notice.EXPIRED,
}
# WayForPay's reasonCode (https://wiki.wayforpay.com/en/view/852131) as the customer's reason.
FAILURES = {
    1101: PaymentFailure.CARD_DECLINED,
    1102: PaymentFailure.CARD_DECLINED,
    1103: PaymentFailure.EXPIRED_CARD,
    1104: PaymentFailure.INSUFFICIENT_FUNDS,
    1105: PaymentFailure.CARD_DECLINED,
    1108: PaymentFailure.AUTHENTICATION_FAILED,
}


def sign(secret: str, *values: object) -> str:
    text = ";".join(str(value) for value in values)
    return hmac.new(secret.encode(), text.encode(), hashlib.md5).hexdigest()


def raw_json(body: bytes) -> dict[str, Any]:
    """The body with numbers kept as written: a signature covers them as they were sent."""
    loaded: dict[str, Any] = json.loads(body, parse_float=str, parse_int=str)
    return loaded


class WayForPayGateway:
    name = "wayforpay"
    takes_refund_key = False

    def __init__(self, api: Provider, account: str, secret: str, domain: str) -> None:
        self._api = api
        self._account = account
        self._secret = secret
        self._domain = domain

    def invoice(self, request: PaymentRequest, order_date: int) -> dict[str, Any]:
        """CREATE_INVOICE's body (WayForPay's field names), signed."""
        amount, product = str(request.amount), f"Order {request.number}"
        timeout = int((request.expires_at - datetime.now(UTC)).total_seconds())
        return {
            "transactionType": "CREATE_INVOICE",
            "merchantAccount": self._account,
            "merchantAuthType": "SimpleSignature",
            "merchantDomainName": self._domain,
            "merchantSignature": sign(
                self._secret,
                self._account,
                self._domain,
                request.order_id,
                order_date,
                amount,
                request.currency,
                product,
                1,
                amount,
            ),
            "apiVersion": 1,
            "language": "UA",
            "serviceUrl": request.callback_url,
            "returnUrl": request.return_url,
            "orderReference": request.order_id,
            "orderDate": order_date,
            "amount": amount,
            "currency": request.currency,
            "orderTimeout": max(timeout, 60),
            "productName": [product],
            "productPrice": [amount],
            "productCount": [1],
        }

    async def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self._api.call("POST", API, json=body)
        code = int(answer.get("reasonCode") or OK)
        if code != OK and "transactionStatus" not in answer:
            raise ApplicationError(
                f"wayforpay refused {body['transactionType']}: {code} {answer.get('reason')}",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        return answer

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        answer = await self._call(self.invoice(request, int(time.time())))
        return CreatedPayment(request.order_id, str(answer["invoiceUrl"]), request.expires_at)

    def _by_order(self, kind: str, reference: str) -> dict[str, Any]:
        return {
            "transactionType": kind,
            "merchantAccount": self._account,
            "orderReference": reference,
            "merchantSignature": sign(self._secret, self._account, reference),
            "apiVersion": 1,
        }

    async def status(self, payment_id: str) -> ProviderPayment:
        answer = await self._call(self._by_order("CHECK_STATUS", payment_id))
        return ProviderPayment(
            STATUSES.get(str(answer.get("transactionStatus")), Notice.PENDING),
            major(answer["amount"]),
            str(answer["currency"]),
            major(answer.get("refundAmount") or 0),
        )

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt:
        answer = await self._call(
            {
                "transactionType": "REFUND",
                "merchantAccount": self._account,
                "orderReference": payment_id,
                "amount": str(amount),
                "currency": currency,
                "comment": "refund",
                "merchantSignature": sign(
                    self._secret, self._account, payment_id, amount, currency
                ),
                "apiVersion": 1,
            }
        )
        status = str(answer.get("transactionStatus"))
        if status == "Declined":
            raise ApplicationError(
                f"wayforpay declined the refund: {answer.get('reasonCode')} {answer.get('reason')}",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        return RefundReceipt(None, confirmed=status in ("Refunded", "Voided"))

    async def cancel(self, payment_id: str) -> None:
        await self._call(self._by_order("REMOVE_INVOICE", payment_id))

    def accept(self, reference: str, now: int | None = None) -> dict[str, Any]:
        """The answer WayForPay waits for: the callback was taken."""
        at = int(time.time()) if now is None else now
        return {
            "orderReference": reference,
            "status": "accept",
            "time": at,
            "signature": sign(self._secret, reference, "accept", at),
        }

    async def read_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        try:
            raw = raw_json(body)
            given = str(raw["merchantSignature"])
            signed = [raw.get(field, "") for field in CALLBACK_FIELDS]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadSignature("a WayForPay callback is JSON with merchantSignature") from exc
        if not hmac.compare_digest(sign(self._secret, *signed), given):
            raise BadSignature("merchantSignature does not match the callback")
        try:
            status, reference = str(raw["transactionStatus"]), str(raw["orderReference"])
            outcome = STATUSES.get(status, Notice.PENDING)
            processed = raw.get("processingDate") or raw.get("createdDate")
            at = datetime.fromtimestamp(int(processed), UTC) if processed else None
            code = int(raw.get("reasonCode") or 0)
            return PaymentNotice(
                event_id=f"{reference}:{status}:{processed or ''}",
                outcome=outcome,
                order_ref=reference,
                payment_id=reference,
                amount=major(raw["amount"]),
                currency=str(raw["currency"]),
                at=at,
                reason=FAILURES.get(code, PaymentFailure.OTHER).value
                if outcome == Notice.FAILED
                else "",
                status=status,
            )
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise InvalidCallback(f"not a WayForPay callback: {exc!r}") from exc
