"""Order activities: the timeline and the read model in Postgres, and the data checks."""

from __future__ import annotations

import uuid
from decimal import Decimal

import structlog
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.contracts import (
    DeliveryMethod,
    PaymentMethod,
    RecordEventInput,
    RecordEventResult,
    ValidateOrderInput,
    ValidateOrderResult,
)
from schema.database import open_session
from schema.tables import Customer, CustomerAddress, Order, OrderEvent, OrderLine

log = structlog.get_logger(__name__)


async def load_order(session: AsyncSession, order_id: str) -> Order:
    order = await session.get(Order, uuid.UUID(order_id))
    if order is None:
        raise ApplicationError(
            f"order {order_id} does not exist", type="OrderNotFound", non_retryable=True
        )
    return order


class OrderActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn
    async def record_event(self, input: RecordEventInput) -> RecordEventResult:
        """Append one timeline row and move the read model's stage; a retry writes nothing."""
        entry = input.entry
        async with open_session(self._engine) as session:
            inserted = await session.execute(
                insert(OrderEvent)
                .values(
                    order_id=uuid.UUID(input.order_id),
                    key=input.key,
                    at=entry.at,
                    type=entry.type,
                    stage=entry.stage.value,
                    actor=entry.actor,
                    detail=entry.detail,
                )
                .on_conflict_do_nothing(index_elements=["order_id", "key"])
                .returning(col(OrderEvent.id))
            )
            recorded = inserted.first() is not None
            values: dict[str, object] = {
                "stage": entry.stage.value,
                "status": input.status.value,
                "updated_at": entry.at,
            }
            if input.expected_date is not None:
                values["expected_date"] = input.expected_date
            await session.execute(
                update(Order).where(col(Order.id) == uuid.UUID(input.order_id)).values(**values)
            )
            await session.commit()
        log.info("timeline", event_type=entry.type, stage=entry.stage.value, recorded=recorded)
        return RecordEventResult(recorded=recorded)

    @activity.defn
    async def validate_order(self, input: ValidateOrderInput) -> ValidateOrderResult:
        """Check the stored order is whole and consistent before anyone is told it is accepted."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            lines = (
                await session.exec(select(OrderLine).where(OrderLine.order_id == order.id))
            ).all()
            customer = await session.get(Customer, order.customer_id)
            address = (
                await session.get(CustomerAddress, order.address_id) if order.address_id else None
            )
        problems: list[str] = []
        if customer is None or not customer.email or not customer.phone:
            problems.append("customer contact is missing")
        if order.delivery_method != DeliveryMethod.PICKUP and address is None:
            problems.append("delivery address is missing")
        if not lines:
            problems.append("order has no lines")
        if any(line.quantity <= 0 or line.unit_price < 0 for line in lines):
            problems.append("a line has a non-positive quantity or a negative price")
        computed = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
        if computed != order.total:
            problems.append(f"total {order.total} does not match the lines ({computed})")
        return ValidateOrderResult(
            delivery_method=DeliveryMethod(order.delivery_method),
            payment_method=PaymentMethod(order.payment_method),
            currency=order.currency,
            total=order.total,
            line_count=len(lines),
            problems=problems,
        )
