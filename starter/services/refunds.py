"""Partial refunds by an operator, at any point after payment (also after the order's
workflow ended): an amount, or lines at their price. Each runs as a `RefundWorkflow` under
the caller's idempotency key; the ledger (schema/ledger.py) guarantees the refunds of an
order never exceed what was paid: checked here under the order's row lock for a fast 409,
and again in the activity, where two requests that passed here together are told apart.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.returns import RefundIn, RefundOut, RefundRow, RefundsOut
from schema.contracts import RefundWorkflowInput, StockLine
from schema.ledger import REJECTED, RefundExceedsPayment, locked_balance
from schema.tables import Order, OrderLine, OrderNote, OrderProviderRefs, Refund
from settings import Settings
from starter.services import metrics
from starter.services.access import Principal, audit
from starter.services.errors import OrderNotFound, RefundRefused
from starter.services.temporal import OrderWorkflows


def ledger_key(order_id: uuid.UUID, key: str) -> str:
    """The ledger's (and the provider's) idempotency key of an operator's refund."""
    return f"{order_id}:refund:{key}"


async def refund(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    settings: Settings,
    caller: Principal,
    order_id: uuid.UUID,
    key: str,
    body: RefundIn,
) -> RefundOut:
    """Refund part of a paid order; the same key again answers with the same refund."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    refs = await session.get(OrderProviderRefs, order_id)
    if order.paid_amount is None or refs is None or refs.payment_id is None:
        raise RefundRefused(
            "refund refused: nothing was paid through the payment provider (an order paid "
            "on delivery is refunded by hand)"
        )
    payment_id, paid = refs.payment_id, order.paid_amount  # read before the commits below
    amount, lines = await _amount(session, order_id, body)
    row = (
        await session.exec(
            select(Refund).where(Refund.idempotency_key == ledger_key(order_id, key))
        )
    ).first()
    if row is not None and row.status != REJECTED and row.amount != amount:
        raise RefundRefused(
            f"refund refused: this Idempotency-Key was used for a refund of {row.amount}"
        )
    if row is None:
        try:
            balance = await locked_balance(session, order_id)
        except RefundExceedsPayment as exc:
            raise RefundRefused(f"refund refused: {exc}") from exc
        await session.rollback()  # the lock is the activity's to take, again
        if amount > balance.left:
            metrics.ACTION_OUTCOMES.labels(action="refund", outcome="refused").inc()
            raise RefundRefused(
                f"refund refused: {amount} exceeds what is left to refund ({balance.left} of "
                f"{balance.paid} paid, {balance.refunded} refunded)"
            )
    note = None
    if body.note:  # the operator's words stay in Postgres
        note = OrderNote(order_id=order_id, author=caller.actor, text=body.note, action="refund")
        session.add(note)
    await audit(session, caller, "order.refund.requested", str(order_id), amount=str(amount))
    await session.commit()
    try:
        made = await workflows.refund(
            RefundWorkflowInput(
                order_id=str(order_id),
                key=key,
                payment_id=payment_id,
                amount=amount,
                reason=body.reason,
                actor=caller.actor,
                policy=settings.order_policy(),
                lines=lines,
            )
        )
    except RefundRefused as refused:
        if note is not None:
            await session.delete(note)  # it would explain a refund that did not happen
        await audit(session, caller, "order.refund.refused", str(order_id), reason=str(refused))
        await session.commit()
        metrics.ACTION_OUTCOMES.labels(action="refund", outcome="refused").inc()
        raise
    await audit(session, caller, "order.refund", str(order_id), amount=str(amount))
    await session.commit()
    metrics.ACTION_OUTCOMES.labels(action="refund", outcome="accepted").inc()
    ledger = await refunds_of(session, order_id=order_id)
    return RefundOut(
        key=key,
        amount=amount,
        reason=body.reason,
        status="refunded" if made is not None else "in_progress",
        paid=paid,
        refunded=ledger.refunded,
    )


async def _amount(
    session: AsyncSession, order_id: uuid.UUID, body: RefundIn
) -> tuple[Decimal, list[StockLine]]:
    """The amount asked for, or the price of the lines (never more items than ordered)."""
    if body.amount is not None:
        return body.amount, []
    assert body.lines is not None
    ordered = {
        line.sku: line
        for line in (
            await session.exec(select(OrderLine).where(OrderLine.order_id == order_id))
        ).all()
    }
    total, lines = Decimal("0.00"), []
    for position, wanted in enumerate(body.lines):
        line = ordered.get(wanted.sku)
        if line is None:
            raise RefundRefused(f"lines.{position}.sku: {wanted.sku} is not a line of this order")
        if wanted.quantity > line.quantity:
            raise RefundRefused(
                f"lines.{position}.quantity: the order has {line.quantity} of {wanted.sku}"
            )
        total += line.unit_price * wanted.quantity
        lines.append(StockLine(wanted.sku, wanted.quantity))
    return total, lines


async def refunds_of(session: AsyncSession, *, order_id: uuid.UUID) -> RefundsOut:
    """The order's ledger: what was paid, every refund asked for, what is left."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    rows = (
        await session.exec(
            select(Refund).where(Refund.order_id == order_id).order_by(col(Refund.id))
        )
    ).all()
    refunded = sum((row.amount for row in rows if row.status != REJECTED), Decimal("0.00"))
    paid = order.paid_amount
    return RefundsOut(
        paid=paid,
        refunded=refunded,
        left=(paid or Decimal("0.00")) - refunded,
        refunds=[
            RefundRow(
                key=row.idempotency_key.removeprefix(f"{order_id}:"),
                amount=row.amount,
                status=row.status,
                reason=row.reason,
                actor=row.actor,
                requested_at=row.requested_at,
            )
            for row in rows
        ],
    )
