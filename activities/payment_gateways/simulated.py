"""orderflow's own invented payment API (the devstack's /payment simulator): the stored
histories and the existing tests speak it. It takes an Idempotency-Key on every call and
reports through the generic signed webhooks (`/v1/webhooks/payment`)."""

from __future__ import annotations

from decimal import Decimal

from activities.payment_gateways import (
    CreatedPayment,
    Notice,
    PaymentRequest,
    ProviderPayment,
    RefundReceipt,
)
from activities.providers import Provider

_OUTCOME = {"succeeded": Notice.SUCCEEDED, "failed": Notice.FAILED}


class SimulatedGateway:
    name = "sim"
    takes_refund_key = True

    def __init__(self, api: Provider) -> None:
        self._api = api

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        answer = await self._api.call(
            "POST",
            "/v1/payments",
            json={
                "order_ref": request.order_id,
                "order_number": request.number,
                "amount": str(request.amount),
                "currency": request.currency,
                "expires_at": request.expires_at.isoformat(),
                "callback_url": request.callback_url,
            },
            idempotency_key=request.idempotency_key,
        )
        return CreatedPayment(str(answer["payment_id"]), str(answer["url"]), request.expires_at)

    async def status(self, payment_id: str) -> ProviderPayment:
        answer = await self._api.call("GET", f"/v1/payments/{payment_id}")
        return ProviderPayment(
            _OUTCOME.get(str(answer["status"]), Notice.PENDING),
            Decimal(str(answer["amount"])),
            str(answer["currency"]),
            Decimal(str(answer["refunded"])),
        )

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt:
        answer = await self._api.call(
            "POST",
            f"/v1/payments/{payment_id}/refunds",
            json={"amount": str(amount)},
            idempotency_key=key,
        )
        # Confirmed by the `payment.refunded` webhook that follows.
        return RefundReceipt(str(answer.get("refund_id") or "") or None, confirmed=False)

    async def cancel(self, payment_id: str) -> None:
        await self._api.call("POST", f"/v1/payments/{payment_id}/cancel")
