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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import structlog
from limits import RateLimitItem
from limits.aio.strategies import RateLimiter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.messages import LOCALES, MessageCatalog, delay_reason
from schema.api import (
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
    Document,
    Feedback,
    FeedbackBonus,
    Order,
    OrderContact,
    OrderEvent,
    OrderLine,
    OrderProviderRefs,
    Refund,
    StatusPageVisit,
)
from settings import Settings
from starter.services.errors import OrderNotFound, TemporalUnavailable
from starter.services.temporal import OrderWorkflows

log = structlog.get_logger(__name__)
S = CustomerStatus
CATALOG = MessageCatalog()

# The line of steps a customer follows (seed 002); pickup orders wait at the counter instead
# of travelling. Delayed and cancelled are shown beside the step the order had reached.
SHIPPED_LINE = (
    S.RECEIVED,
    S.PROCESSING,
    S.PICKING,
    S.PACKED,
    S.SHIPPED,
    S.IN_TRANSIT,
    S.DELIVERED,
)
PICKUP_LINE = (S.RECEIVED, S.PROCESSING, S.PICKING, S.PACKED, S.READY_FOR_PICKUP, S.DELIVERED)
REACHED_BY_STAGE = {
    Stage.INTAKE: S.RECEIVED,
    Stage.VALIDATION: S.RECEIVED,
    Stage.CONFIRMATION: S.RECEIVED,
    Stage.STOCK: S.PROCESSING,
    Stage.PAYMENT: S.PROCESSING,
    Stage.PICKING: S.PICKING,
    Stage.DOCUMENTS: S.PACKED,
    Stage.HANDOVER: S.PACKED,
    Stage.TRANSIT: S.IN_TRANSIT,
    Stage.FEEDBACK: S.DELIVERED,
    Stage.COMPLETED: S.DELIVERED,
}
REACHED_BY_FULFILMENT = {
    FulfilmentStatus.PENDING: S.PROCESSING,
    FulfilmentStatus.RESERVED: S.PROCESSING,
    FulfilmentStatus.PICKING: S.PICKING,
    FulfilmentStatus.PACKED: S.PACKED,
    FulfilmentStatus.SHIPPED: S.SHIPPED,
    FulfilmentStatus.DELIVERED: S.DELIVERED,
}

# The steps of the timeline a customer is shown (each has its words in every locale's
# `event` phrases); repeated carrier scans show once.
HISTORY = (
    "order.received",
    "order.confirmed",
    "payment.succeeded",
    "payment.failed",
    "stock.partial",
    "stock.backordered",
    "order.packed",
    "order.shipped",
    "carrier.InTransit",
    "carrier.OutForDelivery",
    "carrier.AttemptFail",
    "carrier.AvailableForPickup",
    "pickup.ready",
    "order.delivered",
    "order.collected",
    "order.delayed",
    "transit.no_news",
    "order.cancelled",
    "feedback.received",
)
# What made an order delayed, as the reason it is told.
DELAYS = ("order.delayed", "transit.no_news", "carrier.Exception", "carrier.Expired")
ENDINGS = ("order.cancelled", "order.invalid")


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


async def status_view(
    session: AsyncSession,
    *,
    order: Order,
    contact: OrderContact,
    locale: str,
    settings: Settings,
    receipt_url: str,
) -> CustomerOrderOut:
    """The order as its customer sees it (personal data masked; texts in `locale`)."""
    words = CATALOG.words(locale)
    order_id = order.id
    lines = (
        await session.exec(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by("position")
        )
    ).all()
    events = (
        await session.exec(
            select(OrderEvent)
            .where(
                OrderEvent.order_id == order_id,
                col(OrderEvent.type).in_((*HISTORY, *DELAYS, *ENDINGS)),
            )
            .order_by(col(OrderEvent.id))
        )
    ).all()
    refs = await session.get(OrderProviderRefs, order_id)
    has_receipt = (
        await session.exec(
            select(Document.id).where(Document.order_id == order_id, Document.kind == "receipt")
        )
    ).first() is not None
    status, stage = CustomerStatus(order.status), Stage(order.stage)
    waiting = WaitingFor(order.waiting_for) if order.waiting_for else None
    cancelled = stage == Stage.CANCELLED
    allowed = set(order.allowed_actions)
    payment_status = PaymentStatus(order.payment_status) if order.payment_status else None
    pay_url = (
        refs.payment_url
        if refs is not None and payment_status == PaymentStatus.AWAITING_PAYMENT and not cancelled
        else None
    )
    answerable = status == S.DELIVERED and not cancelled
    feedback, bonus = await _feedback(session, order_id) if answerable else (None, None)
    return CustomerOrderOut(
        number=order.number,
        locale=locale,  # type: ignore[arg-type]  # one of LOCALES
        created_at=order.created_at or datetime.now(UTC),
        stage=stage,
        status=status,
        status_text=words.customer_status[status.value],
        delivery_method=DeliveryMethod(order.delivery_method),
        payment_method=PaymentMethod(order.payment_method),
        steps=_steps(order),
        waiting_for=None if cancelled else waiting,
        waiting_text=words.waiting_for[waiting.value] if waiting and not cancelled else None,
        waiting_until=None if cancelled else order.next_deadline,
        expected_date=None if cancelled or status == S.DELIVERED else order.expected_date,
        lines=[
            CustomerLineOut(
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.unit_price * line.quantity,
            )
            for line in lines
        ],
        total=order.total,
        currency=order.currency,
        delay=_delay(events) if status == S.DELAYED else None,
        cancellation=await _cancellation(session, order_id, events) if cancelled else None,
        tracking=(
            TrackingOut(
                carrier=refs.carrier,
                tracking_number=refs.tracking_number,
                tracking_url=refs.tracking_url,
            )
            if refs is not None and refs.tracking_number
            else None
        ),
        pickup=_pickup(order, events, settings),
        payment=PaymentOut(status=payment_status, url=pay_url),
        receipt_url=receipt_url if has_receipt else None,
        contact=_contact(contact),
        support=SupportOut(email=settings.support_email, phone=settings.support_phone),
        actions=CustomerActionsOut(
            pay=pay_url is not None,
            stock_choices=_stock_choices(order) if "decide_stock" in allowed else [],
            cancel="cancel" in allowed and not cancelled,
            feedback=answerable,
            feedback_bonus=answerable and (bonus is not None or settings.feedback_bonus != "none"),
            cancel_reasons=list(CustomerCancelReason),
        ),
        history=_history(events, words.event),
        feedback=feedback,
    )


def _line(order: Order) -> tuple[CustomerStatus, ...]:
    return PICKUP_LINE if order.delivery_method == DeliveryMethod.PICKUP else SHIPPED_LINE


def _steps(order: Order) -> list[StepOut]:
    line, status = _line(order), CustomerStatus(order.status)
    if status in line:
        reached = status
    elif order.stage == Stage.CANCELLED:
        fulfilment = order.fulfilment_status
        reached = REACHED_BY_FULFILMENT[FulfilmentStatus(fulfilment)] if fulfilment else S.RECEIVED
    else:  # delayed: where its stage is
        reached = REACHED_BY_STAGE.get(Stage(order.stage), S.RECEIVED)
    if reached not in line:  # in transit on the shipped line is at the counter for pickup
        reached = S.READY_FOR_PICKUP if S.READY_FOR_PICKUP in line else S.SHIPPED
    at = line.index(reached)
    return [
        StepOut(status=step, state="done" if n < at else "current" if n == at else "upcoming")
        for n, step in enumerate(line)
    ]


def _stock_choices(order: Order) -> list[StockChoice]:
    if order.waiting_for != WaitingFor.STOCK_DECISION:
        return []
    if order.stage == Stage.PICKING:  # after failed picking: what was packed, or nothing
        return [StockChoice.SHIP_AVAILABLE, StockChoice.CANCEL]
    return list(CUSTOMER_STOCK_CHOICES)


def _history(events: Sequence[OrderEvent], phrases: dict[str, str]) -> list[HistoryOut]:
    shown: list[HistoryOut] = []
    for event in events:
        if event.type not in HISTORY or (shown and shown[-1].event == event.type):
            continue
        shown.append(HistoryOut(at=event.at, event=event.type, text=phrases[event.type]))
    return shown


def _delay(events: Sequence[OrderEvent]) -> DelayOut:
    for event in reversed(events):
        if event.type == "order.delayed":
            new_date = event.detail.get("new_date")
            return DelayOut(
                reason=delay_reason(event.detail.get("reason", "")),
                new_date=datetime.fromisoformat(new_date).date() if new_date else None,
            )
        if event.type == "transit.no_news":
            return DelayOut(reason=delay_reason("carrier_silent"), new_date=None)
        if event.type in DELAYS:
            return DelayOut(reason=delay_reason("carrier_delay"), new_date=None)
    return DelayOut(reason=delay_reason("other"), new_date=None)


async def _cancellation(
    session: AsyncSession, order_id: uuid.UUID, events: Sequence[OrderEvent]
) -> CancellationOut:
    ending = next((e for e in reversed(events) if e.type in ENDINGS), None)
    reason = CancelReason.OTHER
    if ending is not None and ending.type == "order.cancelled":
        reason = CancelReason(ending.detail.get("reason", "other"))
    refunds = (await session.exec(select(Refund).where(Refund.order_id == order_id))).all()
    amount = sum((refund.amount for refund in refunds), Decimal("0"))
    return CancellationOut(
        reason=reason,
        refund=amount if refunds else None,
        refund_returned=bool(refunds) and all(r.status == "confirmed" for r in refunds),
    )


def _pickup(order: Order, events: Sequence[OrderEvent], settings: Settings) -> PickupOut | None:
    if order.delivery_method != DeliveryMethod.PICKUP:
        return None
    ready = next((e.at for e in events if e.type == "pickup.ready"), None)
    return PickupOut(
        point=order.pickup_point,
        hold_until=ready + settings.policy_pickup_hold if ready is not None else None,
    )


def _contact(contact: OrderContact) -> ContactOut:
    if contact.erased or contact.name is None:
        return ContactOut(name=ERASED, email=ERASED, phone=ERASED, city=None)
    return ContactOut(
        name=mask_name(contact.name),
        email=mask_email(contact.email) if contact.email else ERASED,
        phone=mask_phone(contact.phone) if contact.phone else ERASED,
        city=contact.city,
    )


async def _feedback(
    session: AsyncSession, order_id: uuid.UUID
) -> tuple[CustomerFeedbackOut | None, FeedbackBonus | None]:
    """The stored answer (None before one), and the order's bonus (promised or given)."""
    answer = (await session.exec(select(Feedback).where(Feedback.order_id == order_id))).first()
    bonus = await session.get(FeedbackBonus, order_id)
    if answer is None:
        return None, bonus
    stored = CustomerFeedbackOut(
        rating=answer.rating,
        nps=answer.nps,
        comment=answer.comment,
        line_ratings=answer.line_ratings,
        bonus_code=bonus.code if bonus else None,
    )
    return stored, bonus


async def record_visit(session: AsyncSession, *, order_id: uuid.UUID, source: str) -> None:
    """One view of the status page: `link` (opened from a message), `page`, or `json`."""
    session.add(StatusPageVisit(order_id=order_id, source=source))
    await session.commit()


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
