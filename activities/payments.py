"""Payment: a link for prepaid orders, refunds when an order is cancelled after payment."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from temporalio import activity

from activities.orders import load_order, load_refs, save_refs
from activities.providers import Provider
from schema.contracts import CreatePaymentInput, OrderRef, PaymentLink, RefundInput
from schema.database import open_session
from schema.tables import Refund


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
        """Refund once per step: the ledger row first (so the provider's confirmation finds
        it), then the provider, who gets the same key on every retry."""
        key = f"{input.order_id}:{input.step}"
        async with open_session(self._engine) as session:
            await session.execute(
                insert(Refund)
                .values(
                    order_id=uuid.UUID(input.order_id),
                    idempotency_key=key,
                    payment_id=input.payment_id,
                    amount=input.amount,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            await session.commit()
        answer = await self._payments.call(
            "POST",
            f"/v1/payments/{input.payment_id}/refunds",
            json={"amount": str(input.amount)},
            idempotency_key=key,
        )
        async with open_session(self._engine) as session:
            await session.execute(
                update(Refund)
                .where(col(Refund.idempotency_key) == key)
                .values(provider_refund_id=str(answer.get("refund_id") or "") or None)
            )
            await session.commit()

    @activity.defn
    async def cancel_payment_link(self, input: OrderRef) -> None:
        refs = await load_refs(self._engine, input.order_id)
        if refs is not None and refs.payment_id:
            await self._payments.call("POST", f"/v1/payments/{refs.payment_id}/cancel")
