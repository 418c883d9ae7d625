"""Payment: a link for prepaid orders, refunds when an order is cancelled after payment."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.orders import load_order, load_refs, save_refs
from activities.providers import Provider
from schema.contracts import CreatePaymentInput, OrderRef, PaymentLink, RefundInput
from schema.database import open_session


class PaymentActivities:
    def __init__(self, engine: AsyncEngine, payments: Provider, callback_url: str) -> None:
        self._engine = engine
        self._payments = payments
        self._callback_url = callback_url

    @activity.defn
    async def create_payment_link(self, input: CreatePaymentInput) -> PaymentLink:
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
        answer = await self._payments.call(
            "POST",
            "/v1/payments",
            json={
                "order_ref": input.order_id,
                "order_number": order.number,
                "amount": str(order.total),
                "currency": order.currency,
                "expires_at": input.expires_at.isoformat(),
                "callback_url": self._callback_url,
            },
            idempotency_key=f"{input.order_id}:payment",
        )
        await save_refs(
            self._engine, input.order_id, payment_id=answer["payment_id"], payment_url=answer["url"]
        )
        return PaymentLink(
            payment_id=answer["payment_id"], url=answer["url"], expires_at=input.expires_at
        )

    @activity.defn
    async def refund_payment(self, input: RefundInput) -> None:
        await self._payments.call(
            "POST",
            f"/v1/payments/{input.payment_id}/refunds",
            json={"amount": str(input.amount)},
            idempotency_key=f"{input.order_id}:refund",
        )

    @activity.defn
    async def cancel_payment_link(self, input: OrderRef) -> None:
        refs = await load_refs(self._engine, input.order_id)
        if refs is not None and refs.payment_id:
            await self._payments.call("POST", f"/v1/payments/{refs.payment_id}/cancel")
