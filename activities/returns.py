"""Customer returns in Postgres: the return's row follows its workflow, and an exchange's
replacement order is written as a real order (its own number, the original's contacts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio import activity

from activities.orders import load_contact, load_order, load_return
from schema.contracts import (
    CustomerStatus,
    ExchangeOrder,
    ExchangeOrderInput,
    ExchangeOutcome,
    OrderRef,
    PaymentMethod,
    ReturnStepInput,
    Stage,
)
from schema.database import open_session
from schema.tables import Order, OrderContact, OrderLine, Return, ReturnItem


class ReturnActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn
    async def record_return_step(self, input: ReturnStepInput) -> None:
        """The return's row: its status and what came of it (a retry writes the same)."""
        return_id = uuid.UUID(input.return_id)
        values: dict[str, object] = {
            "status": input.status.value,
            "needs_action": input.needs_action,
            "updated_at": datetime.now(UTC),
        }
        if input.decline is not None:
            values["decline"] = input.decline.value
        if input.refunded is not None:
            values["refunded"] = input.refunded
        if input.exchange_order_id is not None:
            values["exchange_order_id"] = uuid.UUID(input.exchange_order_id)
        async with open_session(self._engine) as session:
            await session.execute(
                update(Return).where(col(Return.id) == return_id).values(**values)
            )
            for line in input.inspected or []:
                await session.execute(
                    update(ReturnItem)
                    .where(col(ReturnItem.return_id) == return_id, col(ReturnItem.sku) == line.sku)
                    .values(
                        accepted=line.accepted,
                        finding=line.finding.value if line.finding else None,
                    )
                )
            await session.commit()

    @activity.defn
    async def create_exchange_order(self, input: ExchangeOrderInput) -> ExchangeOrder:
        """The replacement order: a real order (`<return number>-X`) with the original's
        contacts (a snapshot of its own), delivery and currency, paid for by the return.
        Written once: a retry finds it by its number."""
        async with open_session(self._engine) as session:
            ret = await load_return(session, input.return_id)
            number = f"{ret.number}-X"
            existing = (await session.exec(select(Order).where(Order.number == number))).first()
            if existing is not None:
                return ExchangeOrder(str(existing.id), existing.number)
            original = await load_order(session, str(ret.order_id))
            contact = await load_contact(session, original)
            total = sum((line.unit_price * line.quantity for line in input.lines), Decimal("0.00"))
            order = Order(
                number=number,
                customer_id=original.customer_id,
                delivery_method=original.delivery_method,
                delivery_speed=original.delivery_speed,
                pickup_point=original.pickup_point,
                payment_method=PaymentMethod.EXCHANGE.value,
                currency=original.currency,
                total=total,
                stage=Stage.INTAKE.value,
                status=CustomerStatus.RECEIVED.value,
                request_hash=f"exchange:{ret.id}"[:64],
                created_by=f"return:{ret.number}"[:120],
                # The key that placed the original owns its replacement too: it reads it and
                # hears of its events.
                created_by_key_id=original.created_by_key_id,
            )
            session.add(order)
            await session.flush()
            copied = contact.model_dump(exclude={"order_id"})
            session.add(OrderContact(order_id=order.id, **copied))
            for position, line in enumerate(input.lines, start=1):
                session.add(
                    OrderLine(
                        order_id=order.id,
                        position=position,
                        sku=line.sku,
                        name=line.name,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                    )
                )
            await session.commit()
            return ExchangeOrder(str(order.id), order.number)

    @activity.defn
    async def exchange_outcome(self, input: OrderRef) -> ExchangeOutcome:
        """How the replacement order ended: cancelled, or shipped at its (final) total."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
        return ExchangeOutcome(cancelled=order.stage == Stage.CANCELLED.value, total=order.total)
