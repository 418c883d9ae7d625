"""Order activities: the timeline and the read model in Postgres, and the data checks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from decimal import Decimal

import phonenumbers
import structlog
from babel.core import get_global
from phonenumbers import region_code_for_number
from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics, shop_events
from activities.carrier_rules import choose_carrier
from activities.carriers.base import Carrier
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
    RecordStepsInput,
    ValidateOrderInput,
    ValidateOrderResult,
)
from schema.database import open_session
from schema.tables import (
    Incident,
    Order,
    OrderContact,
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


async def save_refs(engine: AsyncEngine, order_id: str, **refs: str | None) -> None:
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


# A timeline step in one statement: where the order was and since when (this visit: documents
# happen within handover, for the metrics of the stage it leaves), whether a subscription wants
# the step's shop events, the row (once per key), the read model moved, the date promised.
# `alone`: nothing is written if a subscription wants the step (its outbox rows must be
# written in the same transaction). A step beside the order (`moves` false) takes the
# order's stage and locks its row, as a move's update does, for the outbox's order.
STEP = text("""
WITH current AS (
    SELECT o.id, o.stage, o.created_by_key_id,
        CASE WHEN :moves THEN (
            SELECT min(e.at) FROM order_events e
            WHERE e.order_id = o.id AND e.stage = o.stage AND e.id > (
                SELECT coalesce(max(x.id), 0) FROM order_events x
                WHERE x.order_id = o.id AND x.stage <> o.stage)
        ) END AS since
    FROM orders o WHERE o.id = :order_id
    FOR UPDATE
),
wanted AS (
    SELECT EXISTS (
        SELECT 1 FROM webhook_subscriptions s, current c
        WHERE s.active AND s.events ?| CAST(:shop_types AS text[])
            AND (
                (s.connector_id IS NULL AND (s.for_key_id IS NULL OR s.for_key_id = c.created_by_key_id))
                -- a marketplace's write-back: the orders its connector brought
                OR s.connector_id IN (SELECT x.connector_id FROM order_sources x WHERE x.order_id = c.id)
            )
    ) AS wanted
),
inserted AS (
    INSERT INTO order_events (order_id, key, at, type, stage, actor, detail)
    SELECT c.id, :key, :at, :type, CASE WHEN :moves THEN :stage ELSE c.stage END, :actor,
        CAST(:detail AS jsonb)
    FROM current c, wanted w WHERE NOT (:alone AND w.wanted)
    ON CONFLICT (order_id, key) DO NOTHING
    RETURNING id
),
moved AS (
    UPDATE orders o SET
        stage = :stage, status = :status, updated_at = :at,
        expected_date = coalesce(:expected_date, o.expected_date),
        waiting_for = CASE WHEN :progress THEN :waiting_for ELSE o.waiting_for END,
        next_deadline = CASE WHEN :progress THEN :next_deadline ELSE o.next_deadline END,
        allowed_actions = CASE WHEN :progress THEN CAST(:allowed_actions AS jsonb)
            ELSE o.allowed_actions END,
        payment_status = CASE WHEN :progress THEN :payment_status ELSE o.payment_status END,
        fulfilment_status = CASE WHEN :progress THEN :fulfilment_status
            ELSE o.fulfilment_status END,
        needs_action = coalesce(:needs_action, o.needs_action),
        sla_breached = coalesce(:sla_breached, o.sla_breached),
        payment_failed = coalesce(:payment_failed, o.payment_failed),
        paid_amount = coalesce(:paid, o.paid_amount)
    FROM current c, wanted w
    WHERE o.id = c.id AND :moves AND NOT (:alone AND w.wanted)
)
SELECT c.stage, c.since, w.wanted, EXISTS (SELECT FROM inserted) AS recorded,
    (SELECT f.promised_date FROM order_facts f WHERE f.order_id = c.id AND :delivery_step)
        AS promised
FROM current c, wanted w
""")

PROGRESS = text("""
UPDATE orders SET waiting_for = :waiting_for, next_deadline = :next_deadline,
    allowed_actions = CAST(:allowed_actions AS jsonb), payment_status = :payment_status,
    fulfilment_status = :fulfilment_status, needs_action = :needs_action
WHERE id = :order_id
""")


def _order_not_found(order_id: str) -> ApplicationError:
    return ApplicationError(
        f"order {order_id} does not exist", type=ErrorType.ORDER_NOT_FOUND, non_retryable=True
    )


def timezone_of(country: str | None, default: str) -> str:
    """The customer's time zone, from the delivery country (its main zone)."""
    zones = get_global("territory_zones").get(country or "", [])
    return zones[0] if zones else default


class OrderActivities:
    def __init__(self, engine: AsyncEngine, settings: Settings, carrier: Carrier) -> None:
        self._engine = engine
        # One statement needs no transaction: no BEGIN and COMMIT round trips around it.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._subscribed = shop_events.SubscribedTypes()
        self._settings = settings
        # Its rules check the parcel can be shipped, its directory a branch the customer chose.
        self._carrier = carrier

    @activity.defn
    async def record_event(self, input: RecordEventInput) -> RecordEventResult:
        """One timeline step, as `_record_step` writes it (a step beside an order, and the
        steps of orders from before `one-write-per-activation`)."""
        return await self._record_step(input)

    @activity.defn
    async def record_steps(self, input: RecordStepsInput) -> None:
        """The steps of one activation of the order's workflow, in order, each as
        `record_event` writes it (a retry writes none twice); then, with `progress`, what the
        wait that follows them waits for. One local activity instead of one per step and one
        for the wait."""
        for step in input.steps:
            await self._record_step(step)
        if input.progress is not None:
            await self._record_progress(input.order_id, input.progress)

    async def _record_step(self, input: RecordEventInput) -> RecordEventResult:
        """Append one timeline row and move the read model's stage, and queue the shop's
        order events for the step (activities/shop_events.py), atomically; a retry writes
        nothing. A step beside the order (`moves_order` False: a return's, an outside
        refund's) is written under the order's current stage and moves nothing.

        One statement (`STEP`), prepared once per connection, in one round trip: a step no
        subscription wants, on an autocommit connection; a step the shop hears of, in a
        transaction with its outbox rows. Which of the two is chosen from the subscriptions
        known a few seconds ago (`shop_events.SubscribedTypes`), and `STEP` checks the
        subscriptions as they are: a step a new subscription wants writes nothing on the
        first way and is written the second way."""
        entry = input.entry
        shop_types = [t.value for t in shop_events.TIMELINE.get(EventType(entry.type), ())]
        params = self._step_params(input, shop_types)
        row = None
        if not shop_types or not await self._subscribed.wants(self._engine, shop_types):
            async with self._autocommit.connect() as connection:
                row = (await connection.execute(STEP, {**params, "alone": True})).first()
            if row is not None and row.wanted:  # a subscription newer than the cache
                self._subscribed.forget()
                row = None
            elif row is None:
                raise _order_not_found(input.order_id)
        if row is None:
            async with open_session(self._engine) as session:
                row = (await session.execute(STEP, {**params, "alone": False})).first()
                if row is None:
                    raise _order_not_found(input.order_id)
                if row.recorded and row.wanted:
                    # The shop hears of the step once, with the read model (an outbox), in
                    # the order the order's row lock gives its events (STEP took it).
                    await shop_events.record_timeline_step(
                        session, order_id=uuid.UUID(input.order_id), entry=entry
                    )
                await session.commit()
        recorded, moves = bool(row.recorded), input.moves_order
        if recorded and moves:
            if row.since is not None and row.stage != entry.stage.value:
                metrics.stage_left(row.stage, (entry.at - row.since).total_seconds())
            metrics.timeline_step(
                entry.type, entry.stage.value, entry.detail, row.promised, entry.at
            )
        stage_now = entry.stage.value if moves else "the order's"
        log.info("timeline", event_type=entry.type, stage=stage_now, recorded=recorded)
        return RecordEventResult(recorded=recorded)

    @staticmethod
    def _step_params(input: RecordEventInput, shop_types: list[str]) -> dict[str, object]:
        entry, progress = input.entry, input.progress
        flags = FLAGS.get(EventType(entry.type), {}) if input.moves_order else {}
        columns = _progress_columns(progress) if progress is not None else {}
        return {
            "order_id": uuid.UUID(input.order_id),
            "key": input.key,
            "at": entry.at,
            "type": entry.type,
            "stage": entry.stage.value,
            "actor": entry.actor,
            "detail": json.dumps(entry.detail),
            "moves": input.moves_order,
            "status": input.status.value,
            "expected_date": input.expected_date,
            "progress": progress is not None,
            "waiting_for": columns.get("waiting_for"),
            "next_deadline": columns.get("next_deadline"),
            "allowed_actions": json.dumps(columns.get("allowed_actions", [])),
            "payment_status": columns.get("payment_status"),
            "fulfilment_status": columns.get("fulfilment_status"),
            # The step's flag wins over the wait's (a flag is what happened, the wait what is)
            "needs_action": flags.get("needs_action", columns.get("needs_action")),
            "sla_breached": flags.get("sla_breached"),
            "payment_failed": flags.get("payment_failed"),
            "paid": input.paid,  # the refund ledger's limit (schema/ledger.py)
            "shop_types": shop_types,
            "delivery_step": entry.type in DELIVERY_STEPS,  # for the date promised
        }

    @activity.defn
    async def record_progress(self, input: RecordProgressInput) -> None:
        """What the order waits for now, and what may be done with it (a wait began)."""
        await self._record_progress(input.order_id, input.progress)

    async def _record_progress(self, order_id: str, progress: OrderProgress) -> None:
        columns = _progress_columns(progress)
        columns["allowed_actions"] = json.dumps(columns["allowed_actions"])
        async with self._autocommit.connect() as connection:
            await connection.execute(PROGRESS, {"order_id": uuid.UUID(order_id), **columns})

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
        reasons = review_reasons(order, lines, contact, input.policy)
        if order.delivery_method == DeliveryMethod.BRANCH:
            reasons += await self._branch_unknown(contact)
        if order.delivery_method != DeliveryMethod.PICKUP and contact.country is not None:
            reasons += self._not_shippable(order, lines, contact.country)
        return ValidateOrderResult(
            delivery_method=DeliveryMethod(order.delivery_method),
            payment_method=PaymentMethod(order.payment_method),
            currency=order.currency,
            total=order.total,
            line_count=len(lines),
            problems=problems,
            review_reasons=reasons,
            timezone=timezone_of(contact.country, self._settings.default_timezone),
            delivery_speed=order.delivery_speed,
        )

    def _not_shippable(self, order: Order, lines: Sequence[OrderLine], country: str) -> list[str]:
        """A parcel none of the carrier's rules takes (Nova Poshta delivers nothing by
        `post`) would stop at handover, paid and packed: an operator hears of it first."""
        try:
            choose_carrier(
                country=country,
                method=order.delivery_method,
                skus=[(line.sku, line.quantity) for line in lines],
                speed=order.delivery_speed,
                adapter=self._carrier.name,
            )
        except ApplicationError as refused:
            return [f"nothing could ship it: {refused.message}"]
        return []

    async def _branch_unknown(self, contact: OrderContact) -> list[str]:
        """The branch the customer chose, as the carrier's directory knows it now: one it
        does not know as working makes the order wait for an operator (who calls the
        customer, or rejects). The carrier unreachable: retried, as any provider."""
        if contact.branch_ref is None:  # erased: the booking will say so
            return []
        named = f"{contact.branch_carrier} branch {contact.branch_number or contact.branch_ref}"
        if contact.branch_carrier != self._carrier.name:
            return [f"the {named} is not served: parcels go with {self._carrier.name}"]
        branch = await self._carrier.find_branch(contact.branch_ref)
        if branch is None:
            return [f"the {named} is unknown to the carrier"]
        if not branch.working:
            return [f"the {named} is not working"]
        if contact.branch_number and branch.number != contact.branch_number:
            return [f"the {named} is number {branch.number} in the carrier's directory"]
        return []

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
            # The reason explains a difference from the lines' sum: none without a final price.
            order.price_reason = (
                input.price_reason.value
                if input.final_price is not None and input.price_reason is not None
                else None
            )
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
