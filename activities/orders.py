"""Order activities: the timeline and the read model in Postgres, and the data checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import phonenumbers
import structlog
from babel.core import get_global
from phonenumbers import region_code_for_number
from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics, shop_events
from schema.contracts import (
    WAITS_FOR_A_PERSON,
    ApplyDecisionInput,
    DeliveryMethod,
    IncidentInput,
    OrderPolicy,
    OrderProgress,
    OrderTotals,
    PaymentMethod,
    RecordEventInput,
    RecordEventResult,
    RecordProgressInput,
    ValidateOrderInput,
    ValidateOrderResult,
)
from schema.database import open_session
from schema.tables import (
    Incident,
    Order,
    OrderContact,
    OrderEvent,
    OrderFacts,
    OrderLine,
    OrderProviderRefs,
    Return,
)
from schema.vocabulary import DELIVERY_STEPS, ErrorType, EventType
from settings import Settings

log = structlog.get_logger(__name__)


async def load_order(session: AsyncSession, order_id: str) -> Order:
    order = await session.get(Order, uuid.UUID(order_id))
    if order is None:
        raise ApplicationError(
            f"order {order_id} does not exist", type=ErrorType.ORDER_NOT_FOUND, non_retryable=True
        )
    return order


async def load_return(session: AsyncSession, return_id: str) -> Return:
    ret = await session.get(Return, uuid.UUID(return_id))
    if ret is None:
        raise ApplicationError(
            f"return {return_id} does not exist",
            type=ErrorType.RETURN_NOT_FOUND,
            non_retryable=True,
        )
    return ret


async def load_contact(session: AsyncSession, order: Order) -> OrderContact:
    """The contacts this order was placed with (never another order's)."""
    contact = await session.get(OrderContact, order.id)
    if contact is None:
        raise ApplicationError(
            f"order {order.id} has no contacts", type=ErrorType.CONTACT_MISSING, non_retryable=True
        )
    return contact


async def order_lines(engine: AsyncEngine, order_id: str) -> list[OrderLine]:
    async with open_session(engine) as session:
        query = (
            select(OrderLine).where(OrderLine.order_id == uuid.UUID(order_id)).order_by("position")
        )
        return list((await session.exec(query)).all())


async def load_refs(engine: AsyncEngine, order_id: str) -> OrderProviderRefs | None:
    async with open_session(engine) as session:
        return await session.get(OrderProviderRefs, uuid.UUID(order_id))


async def save_refs(engine: AsyncEngine, order_id: str, **refs: str) -> None:
    """Remember what a provider calls this order (for webhooks, support and the API)."""
    async with open_session(engine) as session:
        await session.execute(
            insert(OrderProviderRefs)
            .values(order_id=uuid.UUID(order_id), **refs)
            .on_conflict_do_update(index_elements=["order_id"], set_=refs)
        )
        await session.commit()


# How the timeline keeps the read model's flags for queues and filters.
FLAGS: dict[EventType, dict[str, bool]] = {
    EventType.REVIEW_REQUESTED: {"needs_action": True},
    EventType.REVIEW_CONFIRMED: {"needs_action": False},
    EventType.STOCK_PARTIAL: {"needs_action": True},
    EventType.STOCK_DECIDED: {"needs_action": False},
    EventType.PICKING_NEEDS_OPERATOR: {"needs_action": True},
    EventType.ORDER_PACKED: {"needs_action": False},
    EventType.ORDER_CANCELLED: {"needs_action": False},
    EventType.SLA_SILENCE_BREACHED: {"sla_breached": True},
    EventType.PAYMENT_FAILED: {"payment_failed": True},
    EventType.PAYMENT_SUCCEEDED: {"payment_failed": False},
    EventType.STEP_FAILED: {"needs_action": True},
    EventType.STEP_RESOLVED: {"needs_action": False},
}


def _progress_columns(progress: OrderProgress) -> dict[str, object]:
    return {
        "waiting_for": progress.waiting_for.value if progress.waiting_for else None,
        "next_deadline": progress.next_deadline,
        "allowed_actions": list(progress.allowed_actions),
        "payment_status": progress.payment_status.value,
        "fulfilment_status": progress.fulfilment_status.value,
        "needs_action": progress.waiting_for in WAITS_FOR_A_PERSON,
    }


def timezone_of(country: str | None, default: str) -> str:
    """The customer's time zone, from the delivery country (its main zone)."""
    zones = get_global("territory_zones").get(country or "", [])
    return zones[0] if zones else default


class OrderActivities:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @activity.defn
    async def record_event(self, input: RecordEventInput) -> RecordEventResult:
        """Append one timeline row and move the read model's stage, and queue the shop's
        order events for the step (activities/shop_events.py), in one transaction; a retry
        writes nothing. A step beside the order (`moves_order` False: a return's, an outside
        refund's) is written under the order's current stage and moves nothing."""
        entry = input.entry
        order_id = uuid.UUID(input.order_id)
        moves = input.moves_order
        async with open_session(self._engine) as session:
            before = None
            stage: Any = entry.stage.value
            if moves:
                # Where the order was, and since when (this visit: documents happen within
                # handover), for the stage it leaves now if it moves on.
                other = aliased(OrderEvent)
                came_back_after = (
                    select(func.coalesce(func.max(other.id), 0))
                    .where(other.order_id == Order.id, other.stage != Order.stage)
                    .scalar_subquery()
                )
                visit_start = (
                    select(func.min(OrderEvent.at))
                    .where(
                        OrderEvent.order_id == Order.id,
                        OrderEvent.stage == Order.stage,
                        col(OrderEvent.id) > came_back_after,
                    )
                    .scalar_subquery()
                )
                before = (
                    await session.execute(
                        select(col(Order.stage), visit_start).where(col(Order.id) == order_id)
                    )
                ).first()
            else:  # the order's stage as it stands
                stage = select(col(Order.stage)).where(col(Order.id) == order_id).scalar_subquery()
            inserted = await session.execute(
                insert(OrderEvent)
                .values(
                    order_id=order_id,
                    key=input.key,
                    at=entry.at,
                    type=entry.type,
                    stage=stage,
                    actor=entry.actor,
                    detail=entry.detail,
                )
                .on_conflict_do_nothing(index_elements=["order_id", "key"])
                .returning(col(OrderEvent.id))
            )
            recorded = inserted.first() is not None
            facts = None
            if moves:
                values: dict[str, object] = {
                    "stage": entry.stage.value,
                    "status": input.status.value,
                    "updated_at": entry.at,
                }
                if input.expected_date is not None:
                    values["expected_date"] = input.expected_date
                if input.progress is not None:
                    values.update(_progress_columns(input.progress))
                values.update(FLAGS.get(EventType(entry.type), {}))
                if input.paid is not None:  # the refund ledger's limit (schema/ledger.py)
                    values["paid_amount"] = input.paid
                await session.execute(
                    update(Order).where(col(Order.id) == order_id).values(**values)
                )
                if entry.type in DELIVERY_STEPS:  # for the date promised at confirmation
                    facts = await session.get(OrderFacts, order_id)
            if recorded and entry.type in shop_events.TIMELINE:
                # The shop hears of the step once, with the read model (an outbox), in the
                # order the order's row lock gives its events (a move's update took it).
                if not moves:
                    await session.execute(
                        select(col(Order.id)).where(col(Order.id) == order_id).with_for_update()
                    )
                await shop_events.record_timeline_step(session, order_id=order_id, entry=entry)
            await session.commit()
        if recorded and moves:
            if before is not None and before[1] is not None and before[0] != entry.stage.value:
                metrics.stage_left(before[0], (entry.at - before[1]).total_seconds())
            promised = facts.promised_date if facts is not None else None
            metrics.timeline_step(entry.type, entry.stage.value, entry.detail, promised, entry.at)
        stage_now = entry.stage.value if moves else "the order's"
        log.info("timeline", event_type=entry.type, stage=stage_now, recorded=recorded)
        return RecordEventResult(recorded=recorded)

    @activity.defn
    async def record_progress(self, input: RecordProgressInput) -> None:
        """What the order waits for now, and what may be done with it (a wait began)."""
        async with open_session(self._engine) as session:
            await session.execute(
                update(Order)
                .where(col(Order.id) == uuid.UUID(input.order_id))
                .values(**_progress_columns(input.progress))
            )
            await session.commit()

    @activity.defn
    async def validate_order(self, input: ValidateOrderInput) -> ValidateOrderResult:
        """Check the stored order is whole and consistent before anyone is told it is accepted."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            lines = (
                await session.exec(select(OrderLine).where(OrderLine.order_id == order.id))
            ).all()
            contact = await load_contact(session, order)
        problems: list[str] = []
        # An erased customer's order goes on: erasure is not a missing contact.
        if not contact.erased and not (contact.email and contact.phone):
            problems.append("customer contact is missing")
        if order.delivery_method != DeliveryMethod.PICKUP and contact.country is None:
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
            review_reasons=review_reasons(order, lines, contact, input.policy),
            timezone=timezone_of(contact.country, self._settings.default_timezone),
        )

    @activity.defn
    async def apply_decision(self, input: ApplyDecisionInput) -> OrderTotals:
        """Replace lines, keep reserved quantities, or set the final price; the total follows."""
        order_uuid = uuid.UUID(input.order_id)
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            lines = list(
                (
                    await session.exec(select(OrderLine).where(OrderLine.order_id == order_uuid))
                ).all()
            )
            if input.lines is not None:
                await session.execute(
                    delete(OrderLine).where(col(OrderLine.order_id) == order_uuid)
                )
                lines = [
                    OrderLine(
                        order_id=order_uuid,
                        position=position,
                        sku=edit.sku,
                        name=edit.name,
                        quantity=edit.quantity,
                        unit_price=edit.unit_price,
                    )
                    for position, edit in enumerate(input.lines, start=1)
                ]
                session.add_all(lines)
            if input.quantities is not None:
                for line in lines:
                    line.quantity = input.quantities.get(line.sku, line.quantity)
                    if line.quantity <= 0:
                        await session.delete(line)
                    else:
                        session.add(line)
                lines = [line for line in lines if line.quantity > 0]
            computed = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
            order.total = input.final_price if input.final_price is not None else computed
            session.add(order)
            await session.commit()
            return OrderTotals(total=order.total, line_count=len(lines))

    @activity.defn
    async def record_incident(self, input: IncidentInput) -> None:
        """Open an incident once per key; with a resolution, close it."""
        statement = insert(Incident).values(
            order_id=uuid.UUID(input.order_id),
            key=input.key,
            stage=input.stage.value,
            cause=input.cause.value,
            summary=input.summary[:500],
            status="resolved" if input.resolution else "open",
        )
        if input.resolution:
            statement = statement.on_conflict_do_update(
                index_elements=["order_id", "key"], set_={"status": "resolved"}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=["order_id", "key"])
        async with open_session(self._engine) as session:
            await session.execute(statement)
            await session.commit()


def review_reasons(
    order: Order, lines: Sequence[OrderLine], contact: OrderContact, policy: OrderPolicy
) -> list[str]:
    """Seeds 001, 003: what makes an order need a human before anyone promises anything."""
    reasons = []
    if order.total >= policy.review_amount:
        reasons.append(
            f"amount {order.total} {order.currency} is at or over {policy.review_amount}"
        )
    if any(line.quantity >= policy.review_quantity for line in lines):
        reasons.append(f"a line has {policy.review_quantity} or more items (wholesale?)")
    if any(line.unit_price == 0 for line in lines):
        reasons.append("a line has no price: the price must be set by hand")
    if order.customer_note:
        reasons.append("the customer left a note (non-standard wishes)")
    if contact.phone is not None and contact.country is not None:  # neither erased
        phone_country = region_code_for_number(phonenumbers.parse(contact.phone))
        if phone_country and phone_country != contact.country:
            reasons.append(
                f"phone country {phone_country} differs from delivery country {contact.country}"
            )
    return reasons
