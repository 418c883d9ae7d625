"""The refund ledger's one rule: the refunds of an order never add up to more than was paid.

Every refund — the order's own compensation, a return's, an operator's — is a row of
`refunds`, written by `PaymentActivities.refund_payment` before the provider is called.
The row is written in a transaction that first locks the order's row (`SELECT … FOR
UPDATE`), so two refunds of one order are written one after the other, each seeing the
other's row: the sum of the rows the provider did not reject, this one included, is
checked against `orders.paid_amount` there. The API checks the same way before it starts a
refund (an answer 409 at once), and the activity checks again (two requests may pass the
first check together; only one passes the second).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.tables import Order, Refund

REQUESTED = "requested"  # written, the provider asked (or about to be)
CONFIRMED = "confirmed"  # the provider says the money went back
REJECTED = "rejected"  # the provider refused it: it refunded nothing and counts for nothing


class RefundExceedsPayment(Exception):
    """A refund would take the order's refunds beyond what was paid (or nothing was paid)."""


@dataclass(frozen=True)
class Balance:
    paid: Decimal
    refunded: Decimal  # every refund asked for, less those the provider rejected

    @property
    def left(self) -> Decimal:
        return self.paid - self.refunded


async def locked_balance(
    session: AsyncSession, order_id: uuid.UUID, *, paid: Decimal | None = None
) -> Balance:
    """What was paid and refunded, with the order's row locked until the transaction ends.
    `paid`: what the workflow verified the payment brought in, recorded when the order has no
    amount yet (a payment taken as the order was cancelled)."""
    order = (
        await session.exec(select(Order).where(Order.id == order_id).with_for_update())
    ).first()
    if order is None:
        raise RefundExceedsPayment(f"order {order_id} does not exist")
    if order.paid_amount is None and paid is not None:
        order.paid_amount = paid
        session.add(order)
    refunded = (
        await session.exec(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.order_id == order_id, col(Refund.status) != REJECTED
            )
        )
    ).one()
    return Balance(order.paid_amount or Decimal(0), Decimal(refunded))


async def enter_refund(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    key: str,
    payment_id: str,
    amount: Decimal,
    paid: Decimal | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> Refund:
    """The ledger row of a refund (the caller commits): the one already there under `key`
    (a retry), or a new one if it fits in what is left. Raises RefundExceedsPayment."""
    balance = await locked_balance(session, order_id, paid=paid)
    row = (await session.exec(select(Refund).where(Refund.idempotency_key == key))).first()
    if row is not None and row.status != REJECTED:
        return row  # asked before: the provider gets the same key again
    if amount <= 0:
        raise RefundExceedsPayment(f"a refund must be more than 0, not {amount}")
    if amount > balance.left:
        raise RefundExceedsPayment(
            f"refund of {amount} exceeds what is left to refund ({balance.left} of "
            f"{balance.paid} paid, {balance.refunded} refunded)"
        )
    if row is None:
        row = Refund(
            order_id=order_id,
            idempotency_key=key,
            payment_id=payment_id,
            amount=amount,
            reason=reason,
            actor=actor,
        )
    row.status = REQUESTED  # a rejected one, asked again, is a new try within the limit
    session.add(row)
    return row
