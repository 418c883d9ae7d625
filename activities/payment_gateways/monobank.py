"""Monobank acquiring (https://api.monobank.ua/docs/acquiring.html): `X-Token` on every call,
amounts in minor units (kopecks) with the currency's ISO 4217 number (`ccy`, 980 UAH).

A payment is an invoice (`/api/merchant/invoice/create`, our order id as its `reference`);
Monobank reports every status change to `webHookUrl` (created, processing, hold, success,
failure, reversed, expired), signed with ECDSA P-256 over the body (`X-Sign`, base64 DER)
by the key `GET /api/merchant/pubkey` gives: cached, fetched again once when a signature
fails. Webhooks may come out of order: `modifiedDate` says which is newer. Refunds are
`/api/merchant/invoice/cancel` with our reference (`extRef`), found again in the invoice's
`cancelList` before a retry sends one twice; `/invoice/remove` withdraws an unpaid invoice.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
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
    from_minor_units,
    minor_units,
)
from activities.providers import Provider
from schema.contracts import PaymentFailure
from schema.vocabulary import ErrorType

CURRENCY_NUMBERS = {"UAH": 980, "USD": 840, "EUR": 978}  # what Monobank acquiring takes
CURRENCIES = {number: code for code, number in CURRENCY_NUMBERS.items()}
STATUSES = {
    "success": Notice.SUCCEEDED,
    "failure": Notice.FAILED,
    "reversed": Notice.REFUNDED,
    "expired": Notice.EXPIRED,
}


def verify(public_key_b64: str, body: bytes, x_sign: str) -> None:
    """X-Sign: base64 of an ECDSA (P-256, SHA-256) signature over the raw body."""
    try:
        key = load_pem_public_key(base64.b64decode(public_key_b64))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(base64.b64decode(x_sign, validate=True), body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, AssertionError) as exc:
        raise BadSignature("X-Sign does not match the body") from exc


def refund_reference(key: str) -> str:
    """The refund's `extRef`: ours, short and the same on every retry."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class MonobankGateway:
    name = "monobank"
    takes_refund_key = True  # a retry finds its extRef in the invoice's cancelList

    def __init__(self, api: Provider, token: str) -> None:
        self._api = api
        self._headers = {"X-Token": token}
        self._public_key: str | None = None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self._api.call(method, path, json=body, headers=self._headers)

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        ccy = CURRENCY_NUMBERS.get(request.currency)
        if ccy is None:
            raise ApplicationError(
                f"Monobank acquiring takes {', '.join(CURRENCY_NUMBERS)}, not {request.currency}",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        validity = request.expires_at - datetime.now(request.expires_at.tzinfo)
        answer = await self._call(
            "POST",
            "/api/merchant/invoice/create",
            {
                "amount": minor_units(request.amount, request.currency),
                "ccy": ccy,
                "merchantPaymInfo": {
                    "reference": request.order_id,
                    "destination": f"Order {request.number}",
                },
                "redirectUrl": request.return_url,
                "webHookUrl": request.callback_url,
                "validity": max(int(validity.total_seconds()), 60),
                "paymentType": "debit",
            },
        )
        return CreatedPayment(str(answer["invoiceId"]), str(answer["pageUrl"]), request.expires_at)

    async def _invoice(self, invoice_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(
            "GET", f"/api/merchant/invoice/status?invoiceId={invoice_id}"
        )
        return answer

    async def status(self, payment_id: str) -> ProviderPayment:
        invoice = await self._invoice(payment_id)
        currency = CURRENCIES[int(invoice["ccy"])]
        refunded = sum(
            int(item.get("amount") or 0)
            for item in invoice.get("cancelList") or []
            if item.get("status") == "success"
        )
        return ProviderPayment(
            STATUSES.get(str(invoice["status"]), Notice.PENDING),
            from_minor_units(int(invoice["amount"]), currency),
            currency,
            from_minor_units(refunded, currency),
        )

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt:
        ext_ref = refund_reference(key)
        asked = [
            item
            for item in (await self._invoice(payment_id)).get("cancelList") or []
            if item.get("extRef") == ext_ref and item.get("status") != "failure"
        ]
        if not asked:  # not sent before (or refused before): send it
            asked = [
                await self._call(
                    "POST",
                    "/api/merchant/invoice/cancel",
                    {
                        "invoiceId": payment_id,
                        "extRef": ext_ref,
                        "amount": minor_units(amount, currency),
                    },
                )
            ]
        if asked[-1].get("status") == "failure":
            raise ApplicationError(
                "monobank refused the refund", type=ErrorType.PROVIDER_REJECTED, non_retryable=True
            )
        return RefundReceipt(ext_ref, confirmed=asked[-1].get("status") == "success")

    async def cancel(self, payment_id: str) -> None:
        await self._call("POST", "/api/merchant/invoice/remove", {"invoiceId": payment_id})

    async def _key(self, fresh: bool) -> str:
        if self._public_key is None or fresh:
            self._public_key = str((await self._call("GET", "/api/merchant/pubkey"))["key"])
        return self._public_key

    async def read_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        x_sign = headers.get("x-sign") or ""
        if not x_sign:
            raise BadSignature("missing X-Sign header")
        try:
            verify(await self._key(fresh=False), body, x_sign)
        except BadSignature:  # Monobank may have changed its key: fetch it once more
            verify(await self._key(fresh=True), body, x_sign)
        try:
            invoice = json.loads(body)
            status = str(invoice["status"])
            currency = CURRENCIES[int(invoice["ccy"])]
            modified = str(invoice["modifiedDate"])
            at = datetime.fromisoformat(modified.replace("Z", "+00:00"))
            outcome = STATUSES.get(status, Notice.PENDING)
            amount, refund_id = int(invoice["amount"]), None
            done = [c for c in invoice.get("cancelList") or [] if c.get("status") == "success"]
            if done and status in ("success", "reversed"):  # news of a refund
                latest = max(done, key=lambda c: str(c.get("modifiedDate")))
                outcome, amount = Notice.REFUNDED, int(latest.get("amount") or amount)
                refund_id = latest.get("extRef")
            return PaymentNotice(
                event_id=f"{invoice['invoiceId']}:{status}:{modified}",
                outcome=outcome,
                order_ref=invoice.get("reference"),
                payment_id=str(invoice["invoiceId"]),
                amount=from_minor_units(amount, currency),
                currency=currency,
                at=at,
                reason=PaymentFailure.OTHER.value if outcome == Notice.FAILED else "",
                refund_id=refund_id,
                status=status,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidCallback(f"not a Monobank webhook: {exc!r}") from exc
