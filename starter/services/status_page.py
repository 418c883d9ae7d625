"""The customer's side of an order: its status page (HTML and JSON twin), the views counted,
and "my orders" by e-mailed link — for the customer pages and the customer API alike.

Served from the read model only, never a workflow query per view: the order row (with the
progress the workflow keeps there: what it waits for and until when, the actions allowed,
the payment and fulfilment status), its lines, its timeline, the providers' references
(tracking, payment link), the documents, the refund ledger, the feedback, and the order's
contact snapshot, masked. What the customer may do is offered when the kept progress
allows it; the workflow's validators still decide when the customer acts.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import structlog
from limits import RateLimitItem
from limits.aio.strategies import RateLimiter
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.messages import LOCALES, MessageCatalog, delay_reason
from activities.orders import timezone_of
from schema.api.customers import (
    CUSTOMER_STOCK_CHOICES,
    CancellationOut,
    ContactOut,
    CustomerActionsOut,
    CustomerCancelReason,
    CustomerFeedbackOut,
    CustomerLineOut,
    CustomerOrderOut,
    DelayOut,
    HistoryOut,
    PaymentOut,
    PickupOut,
    StepOut,
    SupportOut,
    TrackingOut,
)
from schema.contracts import (
    CancelReason,
    CustomerMessageInput,
    CustomerStatus,
    DeliveryMethod,
    FulfilmentStatus,
    MessageKind,
    OrderListInput,
    PaymentMethod,
    PaymentStatus,
    Stage,
    StockChoice,
    WaitingFor,
    message_workflow_id,
)
from schema.database import open_session
from schema.pii import ERASED, mask_email, mask_name, mask_phone
from schema.tables import (
    Customer,
    Order,
    OrderContact,
)
from schema.vocabulary import DELIVERY_STEPS, Action, EventType
from settings import Settings
from starter.services.errors import OrderNotFound, TemporalUnavailable
from starter.services.temporal import OrderWorkflows

log = structlog.get_logger(__name__)
CATALOG = MessageCatalog()

# The line of steps a customer follows (seed 002); pickup orders wait at the counter instead
# of travelling. Delayed and cancelled are shown beside the step the order had reached.
SHIPPED_LINE = (
    CustomerStatus.RECEIVED,
    CustomerStatus.PROCESSING,
    CustomerStatus.PICKING,
    CustomerStatus.PACKED,
    CustomerStatus.SHIPPED,
    CustomerStatus.IN_TRANSIT,
    CustomerStatus.DELIVERED,
)
PICKUP_LINE = (
    CustomerStatus.RECEIVED,
    CustomerStatus.PROCESSING,
    CustomerStatus.PICKING,
    CustomerStatus.PACKED,
    CustomerStatus.READY_FOR_PICKUP,
    CustomerStatus.DELIVERED,
)
REACHED_BY_STAGE = {
    Stage.INTAKE: CustomerStatus.RECEIVED,
    Stage.VALIDATION: CustomerStatus.RECEIVED,
    Stage.CONFIRMATION: CustomerStatus.RECEIVED,
    Stage.STOCK: CustomerStatus.PROCESSING,
    Stage.PAYMENT: CustomerStatus.PROCESSING,
    Stage.PICKING: CustomerStatus.PICKING,
    Stage.DOCUMENTS: CustomerStatus.PACKED,
    Stage.HANDOVER: CustomerStatus.PACKED,
    Stage.TRANSIT: CustomerStatus.IN_TRANSIT,
    Stage.FEEDBACK: CustomerStatus.DELIVERED,
    Stage.COMPLETED: CustomerStatus.DELIVERED,
}
REACHED_BY_FULFILMENT = {
    FulfilmentStatus.PENDING: CustomerStatus.PROCESSING,
    FulfilmentStatus.RESERVED: CustomerStatus.PROCESSING,
    FulfilmentStatus.PICKING: CustomerStatus.PICKING,
    FulfilmentStatus.PACKED: CustomerStatus.PACKED,
    FulfilmentStatus.SHIPPED: CustomerStatus.SHIPPED,
    FulfilmentStatus.DELIVERED: CustomerStatus.DELIVERED,
}

# The steps of the timeline a customer is shown (each has its words in every locale's
# `event` phrases); repeated carrier scans show once.
HISTORY = (
    EventType.ORDER_RECEIVED,
    EventType.ORDER_CONFIRMED,
    EventType.PAYMENT_SUCCEEDED,
    EventType.PAYMENT_FAILED,
    EventType.STOCK_PARTIAL,
    EventType.STOCK_BACKORDERED,
    EventType.ORDER_PACKED,
    EventType.ORDER_SHIPPED,
    EventType.CARRIER_IN_TRANSIT,
    EventType.CARRIER_OUT_FOR_DELIVERY,
    EventType.CARRIER_ATTEMPT_FAIL,
    EventType.CARRIER_AVAILABLE_FOR_PICKUP,
    EventType.PICKUP_READY,
    EventType.ORDER_DELIVERED,
    EventType.ORDER_COLLECTED,
    EventType.ORDER_DELAYED,
    EventType.TRANSIT_NO_NEWS,
    EventType.ORDER_CANCELLED,
    EventType.FEEDBACK_RECEIVED,
)
# What made an order delayed, as the reason it is told.
DELAYS = (
    EventType.ORDER_DELAYED,
    EventType.TRANSIT_NO_NEWS,
    EventType.CARRIER_EXCEPTION,
    EventType.CARRIER_EXPIRED,
)
ENDINGS = (EventType.ORDER_CANCELLED, EventType.ORDER_INVALID)


def resolve_locale(requested: str | None, order_locale: str) -> str:
    """The page's language: the one asked for (uk, ru, en), else the order's."""
    if requested in LOCALES:
        return str(requested)
    return order_locale if order_locale in LOCALES else "en"


async def load_order(session: AsyncSession, *, order_id: uuid.UUID) -> tuple[Order, OrderContact]:
    order = await session.get(Order, order_id)
    contact = await session.get(OrderContact, order_id)
    if order is None or contact is None:
        raise OrderNotFound(order_id)
    return order, contact


# One view, in one round trip: the visit counted (a data-modifying CTE runs whether or not
# the query reads it) and everything the page shows, the order's lines, timeline steps and
# refunds folded in as JSON. `SELECT ... FOR` nothing: a read, and one insert.
VIEW = text(
    """
    WITH visit AS (
        INSERT INTO status_page_visits (order_id, source)
        SELECT id, :source FROM orders WHERE id = :order_id
    )
    SELECT o.number, o.status, o.stage, o.created_at, o.delivery_method, o.payment_method,
           o.currency, o.total, o.expected_date, o.waiting_for, o.next_deadline,
           o.allowed_actions, o.payment_status, o.fulfilment_status, o.pickup_point,
           c.name, c.email, c.phone, c.city, c.country, c.locale, c.erased_at,
           r.payment_url, r.carrier, r.tracking_number, r.tracking_url,
           EXISTS (SELECT 1 FROM documents d WHERE d.order_id = o.id AND d.kind = 'receipt')
               AS has_receipt,
           (SELECT coalesce(json_agg(json_build_object('sku', l.sku, 'name', l.name,
                       'quantity', l.quantity, 'unit_price', l.unit_price::text)
                       ORDER BY l.position), '[]')
            FROM order_lines l WHERE l.order_id = o.id) AS lines,
           (SELECT coalesce(json_agg(json_build_object('type', e.type, 'at', e.at,
                       'detail', e.detail) ORDER BY e.id), '[]')
            FROM order_events e WHERE e.order_id = o.id AND e.type = ANY(:types)) AS events,
           (SELECT json_build_object('amount', sum(f.amount)::text,
                       'returned', bool_and(f.status = 'confirmed'))
            FROM refunds f WHERE f.order_id = o.id HAVING count(*) > 0) AS refund,
           fb.id IS NOT NULL AS answered, fb.rating, fb.nps, fb.comment, fb.line_ratings,
           b.code AS bonus_code
    FROM orders o
    JOIN order_contacts c ON c.order_id = o.id
    LEFT JOIN order_provider_refs r ON r.order_id = o.id
    LEFT JOIN feedback fb ON fb.order_id = o.id
    LEFT JOIN feedback_bonuses b ON b.order_id = o.id
    WHERE o.id = :order_id
    """
)
SHOWN = [*HISTORY, *DELAYS, *ENDINGS]


@dataclass(frozen=True)
class Step:
    """One row of the order's timeline, as the page reads it."""

    type: str
    at: datetime
    detail: dict[str, str]


async def status_view(
    engine: AsyncEngine,
    *,
    order_id: uuid.UUID,
    requested_locale: str | None,
    settings: Settings,
    receipt_url: str,
    source: str,
) -> CustomerOrderOut:
    """The order as its customer sees it (personal data masked; texts in the language asked
    for, else the order's), and the view counted: `source` is `link` (opened from a
    message's link), `page` or `json`. One statement, committed on its own (autocommit):
    the status page is the most frequent read, and its p99 is held under 50 ms
    (bench/status_page.py)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        row = (
            await autocommit.execute(VIEW, {"order_id": order_id, "source": source, "types": SHOWN})
        ).first()
    if row is None:
        raise OrderNotFound(order_id)
    locale = resolve_locale(requested_locale, row.locale)
    words = CATALOG.words(locale)
    events = [Step(e["type"], datetime.fromisoformat(e["at"]), e["detail"]) for e in row.events]
    status, stage = CustomerStatus(row.status), Stage(row.stage)
    waiting = WaitingFor(row.waiting_for) if row.waiting_for else None
    cancelled = stage == Stage.CANCELLED
    allowed = set(row.allowed_actions)
    payment_status = PaymentStatus(row.payment_status) if row.payment_status else None
    due = payment_status == PaymentStatus.AWAITING_PAYMENT and not cancelled
    pay_url = row.payment_url if due else None
    answerable = status == CustomerStatus.DELIVERED and not cancelled
    # The return window runs from delivery (the return's workflow checks it again).
    delivered = min((e.at for e in events if e.type in DELIVERY_STEPS), default=None)
    return_until = (
        delivered + settings.policy_return_window if delivered and not cancelled else None
    )
    return CustomerOrderOut(
        number=row.number,
        locale=locale,  # type: ignore[arg-type]  # one of LOCALES
        created_at=row.created_at,
        stage=stage,
        status=status,
        status_text=words.customer_status[status.value],
        delivery_method=DeliveryMethod(row.delivery_method),
        payment_method=PaymentMethod(row.payment_method),
        steps=_steps(row),
        waiting_for=None if cancelled else waiting,
        waiting_text=words.waiting_for[waiting.value] if waiting and not cancelled else None,
        waiting_until=None if cancelled else row.next_deadline,
        expected_date=None
        if cancelled or status == CustomerStatus.DELIVERED
        else row.expected_date,
        lines=[
            CustomerLineOut(
                sku=line["sku"],
                name=line["name"],
                quantity=line["quantity"],
                unit_price=Decimal(line["unit_price"]),
                amount=Decimal(line["unit_price"]) * line["quantity"],
            )
            for line in row.lines
        ],
        total=row.total,
        currency=row.currency,
        delay=_delay(events) if status == CustomerStatus.DELAYED else None,
        cancellation=_cancellation(events, row.refund) if cancelled else None,
        tracking=(
            TrackingOut(
                carrier=row.carrier,
                tracking_number=row.tracking_number,
                tracking_url=row.tracking_url,
            )
            if row.tracking_number
            else None
        ),
        pickup=_pickup(row, events, settings),
        payment=PaymentOut(status=payment_status, url=pay_url),
        receipt_url=receipt_url if row.has_receipt else None,
        contact=_contact(row),
        timezone=timezone_of(row.country, settings.default_timezone),
        support=SupportOut(email=settings.support_email, phone=settings.support_phone),
        actions=CustomerActionsOut(
            pay=pay_url is not None,
            stock_choices=_stock_choices(row) if Action.DECIDE_STOCK in allowed else [],
            cancel=Action.CANCEL in allowed and not cancelled,
            feedback=answerable,
            feedback_bonus=answerable
            and (row.bonus_code is not None or settings.feedback_bonus != "none"),
            cancel_reasons=list(CustomerCancelReason),
            return_items=return_until is not None and datetime.now(UTC) < return_until,
            return_until=return_until,
        ),
        history=_history(events, words.event),
        feedback=(
            CustomerFeedbackOut(
                rating=row.rating,
                nps=row.nps,
                comment=row.comment,
                line_ratings=row.line_ratings,
                bonus_code=row.bonus_code,
            )
            if answerable and row.answered
            else None
        ),
    )


def _line(row: Row[Any]) -> tuple[CustomerStatus, ...]:
    return PICKUP_LINE if row.delivery_method == DeliveryMethod.PICKUP else SHIPPED_LINE


def _steps(row: Row[Any]) -> list[StepOut]:
    line, status = _line(row), CustomerStatus(row.status)
    if status in line:
        reached = status
    elif row.stage == Stage.CANCELLED:
        fulfilment = row.fulfilment_status
        reached = (
            REACHED_BY_FULFILMENT[FulfilmentStatus(fulfilment)]
            if fulfilment
            else CustomerStatus.RECEIVED
        )
    else:  # delayed: where its stage is
        reached = REACHED_BY_STAGE.get(Stage(row.stage), CustomerStatus.RECEIVED)
    if reached not in line:  # in transit on the shipped line is at the counter for pickup
        reached = (
            CustomerStatus.READY_FOR_PICKUP
            if CustomerStatus.READY_FOR_PICKUP in line
            else CustomerStatus.SHIPPED
        )
    at = line.index(reached)
    return [
        StepOut(status=step, state="done" if n < at else "current" if n == at else "upcoming")
        for n, step in enumerate(line)
    ]


def _stock_choices(row: Row[Any]) -> list[StockChoice]:
    if row.waiting_for != WaitingFor.STOCK_DECISION:
        return []
    if row.stage == Stage.PICKING:  # after failed picking: what was packed, or nothing
        return [StockChoice.SHIP_AVAILABLE, StockChoice.CANCEL]
    return list(CUSTOMER_STOCK_CHOICES)


def _history(events: list[Step], phrases: dict[str, str]) -> list[HistoryOut]:
    shown: list[HistoryOut] = []
    for event in events:
        if event.type not in HISTORY or (shown and shown[-1].event == event.type):
            continue
        shown.append(HistoryOut(at=event.at, event=event.type, text=phrases[event.type]))
    return shown


def _delay(events: list[Step]) -> DelayOut:
    for event in reversed(events):
        if event.type == EventType.ORDER_DELAYED:
            new_date = event.detail.get("new_date")
            return DelayOut(
                reason=delay_reason(event.detail.get("reason", "")),
                new_date=date.fromisoformat(new_date) if new_date else None,
            )
        if event.type == EventType.TRANSIT_NO_NEWS:
            return DelayOut(reason=delay_reason("carrier_silent"), new_date=None)
        if event.type in DELAYS:
            return DelayOut(reason=delay_reason("carrier_delay"), new_date=None)
    return DelayOut(reason=delay_reason("other"), new_date=None)


def _cancellation(events: list[Step], refund: dict[str, Any] | None) -> CancellationOut:
    ending = next((e for e in reversed(events) if e.type in ENDINGS), None)
    reason = CancelReason.OTHER
    if ending is not None and ending.type == EventType.ORDER_CANCELLED:
        reason = CancelReason(ending.detail.get("reason", "other"))
    return CancellationOut(
        reason=reason,
        refund=Decimal(refund["amount"]) if refund else None,
        refund_returned=bool(refund and refund["returned"]),
    )


def _pickup(row: Row[Any], events: list[Step], settings: Settings) -> PickupOut | None:
    if row.delivery_method != DeliveryMethod.PICKUP:
        return None
    ready = next((e.at for e in events if e.type == EventType.PICKUP_READY), None)
    return PickupOut(
        point=row.pickup_point,
        hold_until=ready + settings.policy_pickup_hold if ready is not None else None,
    )


def _contact(row: Row[Any]) -> ContactOut:
    if row.erased_at is not None or row.name is None:
        return ContactOut(name=ERASED, email=ERASED, phone=ERASED, city=None)
    return ContactOut(
        name=mask_name(row.name),
        email=mask_email(row.email) if row.email else ERASED,
        phone=mask_phone(row.phone) if row.phone else ERASED,
        city=row.city,
    )


# --- "my orders" -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderListLimits:
    """How many "my orders" e-mails one address gets in a window (the counters in Postgres,
    keyed by a hash of the address: no address is stored for it)."""

    limiter: RateLimiter
    per_address: RateLimitItem

    async def allow(self, email: str) -> bool:
        who = hashlib.sha256(email.encode()).hexdigest()[:32]
        return await self.limiter.hit(self.per_address, "order-list", who)


async def send_order_list(
    engine: AsyncEngine,
    *,
    workflows: OrderWorkflows,
    limits: OrderListLimits,
    email: str,
    locale: str | None,
) -> None:
    """After the answer to POST /v1/customer-links (a background task, so that a known and
    an unknown address are answered alike): when the address has orders and has not had too
    many links lately, a worker e-mails it the link (CustomerMessageWorkflow). Problems are
    logged, never told: the answer said only that a link is on its way if there are orders."""
    async with open_session(engine) as session:
        customer = (await session.exec(select(Customer).where(Customer.email == email))).first()
        if customer is None:
            return
        latest = (
            await session.exec(
                select(OrderContact.locale)
                .join(Order, col(Order.id) == col(OrderContact.order_id))
                .where(Order.customer_id == customer.id)
                .order_by(col(Order.created_at).desc())
                .limit(1)
            )
        ).first()
    if latest is None:
        return
    if not await limits.allow(email):
        log.info("order list not sent: too many for this address lately")
        return
    request = uuid.uuid4().hex
    message = OrderListInput(str(customer.id), locale or resolve_locale(None, latest), request)
    try:
        await workflows.send_message(
            message_workflow_id(MessageKind.ORDER_LIST, request),
            CustomerMessageInput(order_list=message),
        )
    except TemporalUnavailable as exc:
        log.warning("order list not queued", error=str(exc))


async def orders_of(
    session: AsyncSession, *, customer_id: uuid.UUID
) -> tuple[Customer, list[Order], str]:
    """Every order of one customer identity, newest first, and the latest one's language."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise OrderNotFound(customer_id)
    rows = (
        await session.exec(
            select(Order, OrderContact.locale)
            .join(OrderContact, col(OrderContact.order_id) == col(Order.id))
            .where(Order.customer_id == customer_id)
            .order_by(col(Order.created_at).desc())
            .limit(500)
        )
    ).all()
    return customer, [order for order, _ in rows], rows[0][1] if rows else "en"
