"""Payment: a link for prepaid orders, refunds (whole or partial) through the ledger, over
the payment port (activities/payment_gateways: the provider chosen in settings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders import load_order, load_refs, save_refs
from activities.payment_gateways import PaymentGateway, PaymentRequest
from schema.contracts import CreatePaymentInput, OrderRef, PaymentLink, RefundInput
from schema.database import open_session
from schema.ledger import CONFIRMED, REJECTED, RefundExceedsPayment, enter_refund
from schema.links import CustomerLinks, LinkPurpose
from schema.tables import Refund
from schema.vocabulary import ErrorType


class PaymentActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        gateway: PaymentGateway,
        callback_url: str,
        public_url: str,
        links: CustomerLinks,
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._callback_url = callback_url  # the chosen provider's webhook route
        self._public_url = public_url
        self._links = links

    @activity.defn
    async def create_payment_link(self, input: CreatePaymentInput) -> PaymentLink:
        """The provider's link (once per order: the same key, or the same order id where the
        provider keys payments by it). A provider whose links live shorter than the order's
        policy (Stripe: 24 h) gives its own expiry: the order waits that long."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
        created = await self._gateway.create_payment(
            PaymentRequest(
                order_id=input.order_id,
                number=order.number,
                amount=order.total,
                currency=order.currency,
                expires_at=input.expires_at,
                callback_url=self._callback_url,
                return_url=f"{self._public_url}/order/"
                f"{self._links.token(LinkPurpose.STATUS, order.id)}",
                idempotency_key=f"{input.order_id}:payment",
            )
        )
        await save_refs(
            self._engine, input.order_id, payment_id=created.payment_id, payment_url=created.url
        )
        return PaymentLink(
            payment_id=created.payment_id,
            url=created.url,
            expires_at=min(created.expires_at, input.expires_at),
        )

    @activity.defn
    async def refund_payment(self, input: RefundInput) -> None:
        """Refund once per step: the ledger row first (so the provider's confirmation finds
        it), then the provider, who gets the same key on every retry. A refund beyond what is
        left of the payment is refused for good (`RefundRefused`): no retry makes it fit."""
        key = f"{input.order_id}:{input.step}"
        async with open_session(self._engine) as session:
            try:
                row = await enter_refund(
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
            done = row.status == CONFIRMED  # a retry after the provider confirmed it
            await session.commit()
            currency = (await load_order(session, input.order_id)).currency
        if done or await self._refunded_before(input, key):
            return
        try:
            receipt = await self._gateway.refund(input.payment_id, input.amount, currency, key)
        except ApplicationError as exc:
            # Refused: nothing was refunded, the row counts for nothing.
            if exc.type == ErrorType.PROVIDER_REJECTED:
                await self._mark(key, status=REJECTED)
            raise
        if receipt.confirmed:
            await self._mark(
                key,
                provider_refund_id=receipt.refund_id,
                status=CONFIRMED,
                confirmed_at=datetime.now(UTC),
            )
        else:  # the provider's callback confirms it
            await self._mark(key, provider_refund_id=receipt.refund_id)

    async def _refunded_before(self, input: RefundInput, key: str) -> bool:
        """A provider without an idempotency key, on a retry: did the attempt whose answer was
        lost refund already? It did when the provider has given back more than the ledger's
        other confirmed refunds. Then the row is confirmed and nothing is sent again."""
        if self._gateway.takes_refund_key or activity.info().attempt == 1:
            return False
        provider = await self._gateway.status(input.payment_id)
        async with open_session(self._engine) as session:
            confirmed = (
                await session.exec(
                    select(func.coalesce(func.sum(Refund.amount), 0)).where(
                        Refund.payment_id == input.payment_id,
                        Refund.status == CONFIRMED,
                        Refund.idempotency_key != key,
                    )
                )
            ).one()
        if provider.refunded < Decimal(confirmed) + input.amount:
            return False
        await self._mark(key, status=CONFIRMED, confirmed_at=datetime.now(UTC))
        return True

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
            await self._gateway.cancel(refs.payment_id)
