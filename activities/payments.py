"""Payment: a link for prepaid orders, refunds (whole or partial) through the ledger."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders import load_order, load_refs, save_refs
from activities.providers import Provider
from schema.contracts import CreatePaymentInput, OrderRef, PaymentLink, RefundInput
from schema.database import open_session
from schema.ledger import REJECTED, RefundExceedsPayment, enter_refund
from schema.tables import Refund
from schema.vocabulary import ErrorType


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
        it), then the provider, who gets the same key on every retry. A refund beyond what is
        left of the payment is refused for good (`RefundRefused`): no retry makes it fit."""
        key = f"{input.order_id}:{input.step}"
        async with open_session(self._engine) as session:
            try:
                await enter_refund(
                    session,
                    order_id=uuid.UUID(input.order_id),
                    key=key,
                    payment_id=input.payment_id,
                    amount=input.amount,
                    paid=input.paid,
                    reason=input.reason,
                    actor=input.actor,
                )
            except RefundExceedsPayment as exc:
                raise ApplicationError(
                    str(exc), type=ErrorType.REFUND_REFUSED, non_retryable=True
                ) from exc
            await session.commit()
        try:
            answer = await self._payments.call(
                "POST",
                f"/v1/payments/{input.payment_id}/refunds",
                json={"amount": str(input.amount)},
                idempotency_key=key,
            )
        except ApplicationError as exc:
            # Refused: nothing was refunded, the row counts for nothing.
            if exc.type == ErrorType.PROVIDER_REJECTED:
                await self._mark(key, status=REJECTED)
            raise
        await self._mark(key, provider_refund_id=str(answer.get("refund_id") or "") or None)

    async def _mark(self, key: str, **values: object) -> None:
        async with open_session(self._engine) as session:
            await session.execute(
                update(Refund).where(col(Refund.idempotency_key) == key).values(**values)
            )
            await session.commit()

    @activity.defn
    async def cancel_payment_link(self, input: OrderRef) -> None:
        refs = await load_refs(self._engine, input.order_id)
        if refs is not None and refs.payment_id:
            await self._payments.call("POST", f"/v1/payments/{refs.payment_id}/cancel")
