"""Order intake, the read model of one order, and search: for the API, the console and the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import phonenumbers
import structlog
from sqlalchemy import tuple_, union
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.orders import (
    CustomerOut,
    EventOut,
    FlagsOut,
    LineOut,
    NoteOut,
    NotificationOut,
    OrderCreate,
    OrderLinks,
    OrderOut,
    OrderPage,
    OrderSourceOut,
    OrderSummary,
    ProgressOut,
    page_cursor,
    read_cursor,
)
from schema.contracts import (
    CustomerStatus,
    DeliveryMethod,
    OrderStatus,
    PaymentMethod,
    Stage,
    workflow_id_for,
)
from schema.pii import ERASED, mask_email, mask_name, mask_phone, mask_typed_text
from schema.tables import (
    Customer,
    Document,
    IntakeConnector,
    Notification,
    Order,
    OrderContact,
    OrderEvent,
    OrderLine,
    OrderNote,
    OrderProviderRefs,
    OrderSource,
)
from settings import Settings
from starter.services.access import Permission, Principal, Role, audit
from starter.services.errors import OrderNotFound, OrderNumberConflict, WorkflowUnanswered
from starter.services.temporal import OrderWorkflows


async def find_by_number(session: AsyncSession, *, number: str) -> Order | None:
    return (await session.exec(select(Order).where(Order.number == number))).first()


def _same_or_conflict(existing: Order, body: OrderCreate) -> Order:
    if existing.request_hash != body.fingerprint():
        raise OrderNumberConflict(body.number)
    return existing


async def accept_order(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    body: OrderCreate,
    creator: Principal,
    source: tuple[uuid.UUID, str] | None = None,
) -> tuple[Order, bool]:
    """Intake (stage 1), however the order came (`POST /v1/orders`, a connector's webhook):
    recorded once under its number, audited, its workflow started (again, harmlessly, for a
    repeated request). Returns the order and whether it was created now."""
    order, created = await record_order(session, body=body, creator=creator, source=source)
    if created:
        await audit(session, creator, "order.create", str(order.id))
        await session.commit()
    structlog.contextvars.bind_contextvars(
        order_id=str(order.id), workflow_id=workflow_id_for(str(order.id))
    )
    await workflows.start(order_id=order.id, number=order.number)
    return order, created


async def record_order(
    session: AsyncSession,
    *,
    body: OrderCreate,
    creator: Principal | None = None,
    source: tuple[uuid.UUID, str] | None = None,
) -> tuple[Order, bool]:
    """Store the order, its own contacts and its lines (and its `source` — the connector
    and the source's order id — when a connector brought it) in one transaction.

    Returns the order and whether it was created now. The same body under the same
    number returns the stored order; another body raises `OrderNumberConflict`.
    """
    existing = await find_by_number(session, number=body.number)
    if existing is not None:
        return _same_or_conflict(existing, body), False

    # The identity row: one per e-mail, inserted once and never changed by a later order.
    await session.execute(
        insert(Customer)
        .values(id=uuid.uuid4(), email=body.customer.email)
        .on_conflict_do_nothing(index_elements=["email"])
    )
    customer_id = (
        await session.exec(select(Customer.id).where(Customer.email == body.customer.email))
    ).one()
    order = Order(
        number=body.number,
        customer_id=customer_id,
        delivery_method=body.delivery.method.value,
        delivery_speed=body.delivery.speed,
        pickup_point=body.delivery.pickup_point,
        payment_method=body.payment.method.value,
        currency=body.currency,
        total=body.total,
        customer_note=body.note,
        stage=Stage.INTAKE.value,
        status=CustomerStatus.RECEIVED.value,
        request_hash=body.fingerprint(),
        created_by=creator.actor if creator else None,
        created_by_key_id=creator.key_id if creator else None,
    )
    session.add(order)
    address = body.delivery.address.model_dump() if body.delivery.address else {}
    branch = body.delivery.branch
    if branch is not None:  # the parcel goes to a Nova Poshta branch: in Ukraine
        address = {
            **address,
            "country": "UA",
            "branch_carrier": branch.carrier,
            "branch_ref": branch.ref,
            "branch_number": branch.number,
        }
    session.add(OrderContact(order_id=order.id, **body.customer.model_dump(), **address))
    for position, line in enumerate(body.lines, start=1):
        session.add(OrderLine(order_id=order.id, position=position, **line.model_dump()))
    if source is not None:
        connector_id, source_order_id = source
        session.add(
            OrderSource(
                order_id=order.id, connector_id=connector_id, source_order_id=source_order_id
            )
        )
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request with the same number won the race.
        await session.rollback()
        existing = await find_by_number(session, number=body.number)
        if existing is None:
            raise
        return _same_or_conflict(existing, body), False
    await session.refresh(order)
    return order, True


async def read_order(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    live: OrderStatus | None,
    links: OrderLinks,
    unmasked: bool = False,
    unanswered: str | None = None,
    staff: bool = True,
) -> OrderOut | None:
    """The read model of one order (with the workflow's `live` status when asked); personal
    data masked unless `unmasked`; staff notes for `staff` only (what staff type about a
    customer, a phone or an address, is no service's to read)."""
    order = await session.get(Order, order_id)
    if order is None:
        return None
    contact = await session.get(OrderContact, order_id)
    assert contact is not None  # written with the order
    lines = (
        await session.exec(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by("position")
        )
    ).all()
    events = (
        await session.exec(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(col(OrderEvent.id))
        )
    ).all()
    notifications = (
        await session.exec(
            select(Notification)
            .where(Notification.order_id == order_id)
            .order_by(col(Notification.id))
        )
    ).all()
    workflow: dict[str, Any] | None = asdict(live) if live is not None else None
    notes = (
        (
            await session.exec(
                select(OrderNote).where(OrderNote.order_id == order_id).order_by(col(OrderNote.id))
            )
        ).all()
        if staff
        else []
    )
    kinds = (await session.exec(select(Document.kind).where(Document.order_id == order_id))).all()
    refs = await session.get(OrderProviderRefs, order_id)
    source = (
        await session.exec(
            select(IntakeConnector.name, IntakeConnector.kind, OrderSource.source_order_id)
            .join(OrderSource, col(OrderSource.connector_id) == col(IntakeConnector.id))
            .where(OrderSource.order_id == order_id)
        )
    ).first()
    assert order.created_at is not None
    return OrderOut(
        order_id=str(order.id),
        number=order.number,
        stage=Stage(order.stage),
        status=CustomerStatus(order.status),
        delivery_method=DeliveryMethod(order.delivery_method),
        payment_method=PaymentMethod(order.payment_method),
        currency=order.currency,
        total=order.total,
        expected_date=order.expected_date,
        created_at=order.created_at,
        customer=_customer_view(contact, unmasked),
        customer_note=_note_view(order.customer_note, unmasked),
        lines=[
            LineOut(**line.model_dump(include={"sku", "name", "quantity", "unit_price"}))
            for line in lines
        ],
        timeline=[
            EventOut(at=e.at, type=e.type, stage=e.stage, actor=e.actor, detail=e.detail)
            for e in events
        ],
        notifications=[
            NotificationOut(
                kind=n.kind,
                channel=n.channel,
                recipient=n.recipient_masked,
                status=n.status,
                sent_at=n.sent_at,
                delivery=n.delivery_status,
                delivered_via=n.delivered_via,
            )
            for n in notifications
        ],
        notes=[
            NoteOut(
                at=n.created_at,
                author=n.author,
                text=n.text,
                action=n.action,
                customer_contact=n.customer_contact,
            )
            for n in notes
        ],
        documents=sorted(kinds),
        flags=FlagsOut(
            needs_action=order.needs_action,
            sla_breached=order.sla_breached,
            payment_failed=order.payment_failed,
        ),
        tracking_number=refs.tracking_number if refs else None,
        tracking_url=refs.tracking_url if refs else None,
        payment_url=refs.payment_url if refs else None,
        seconds_in_stage=seconds_in_stage(events, now=datetime.now(UTC)),
        progress=ProgressOut.model_validate(order, from_attributes=True),
        workflow=workflow,
        workflow_unavailable=unanswered,
        links=links,
        source=OrderSourceOut(connector=source[0], kind=source[1], order_id=source[2])
        if source
        else None,
    )


def seconds_in_stage(events: Sequence[OrderEvent], *, now: datetime) -> dict[str, float]:
    """How long the order spent in each stage: from a stage's first event to the next stage's."""
    spent: dict[str, float] = {}
    # Not strict: an order with no events yet (its workflow never ran) has none to pair.
    for current, following in zip(events, [*events[1:], None], strict=False):
        end = following.at if following is not None else now
        if current.stage in ("completed", "cancelled"):
            end = current.at
        spent[current.stage] = spent.get(current.stage, 0.0) + (end - current.at).total_seconds()
    return {stage: round(seconds, 3) for stage, seconds in spent.items()}


def _customer_view(contact: OrderContact, unmasked: bool) -> CustomerOut:
    """The contacts the order was placed with; after erasure, "erased" in their place."""
    if contact.name is None or contact.email is None or contact.phone is None:
        return CustomerOut(name=ERASED, email=ERASED, phone=ERASED, locale=contact.locale)
    if not unmasked:
        return CustomerOut(
            name=mask_name(contact.name),
            email=mask_email(contact.email),
            phone=mask_phone(contact.phone),
            locale=contact.locale,
        )
    return CustomerOut(
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        locale=contact.locale,
        address=", ".join(contact.address_lines) or None,
    )


def _note_view(note: str | None, unmasked: bool) -> str | None:
    """What the customer wrote, as a role that sees personal data masked sees it: the wishes
    read, the contacts in it masked."""
    if note is None or unmasked:
        return note
    return mask_typed_text(note)


def mask_query(q: str) -> str:
    """A search term as the audit log keeps it: contacts masked."""
    if "@" in q:
        return mask_email(q)
    phone = _as_phone(q)
    return mask_phone(phone) if phone else q


async def search_orders(
    session: AsyncSession,
    *,
    q: str | None = None,
    stage: Stage | None = None,
    needs_action: bool | None = None,
    sla_breached: bool | None = None,
    payment_failed: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> OrderPage:
    """Newest first, keyset-paginated; `q` is a number, phone, e-mail or tracking number
    (a contact finds the orders placed with it)."""
    query = select(Order, OrderContact).join(
        OrderContact, col(OrderContact.order_id) == col(Order.id)
    )
    if q:
        q = q.strip()
        if "@" in q:
            query = query.where(OrderContact.email == q.lower())
        elif (phone := _as_phone(q)) is not None:
            query = query.where(OrderContact.phone == phone)
        else:
            # Two index lookups, united: `number = q OR id IN (...)` could use neither index.
            numbered = select(col(Order.id)).where(col(Order.number) == q)
            tracked = select(col(OrderProviderRefs.order_id)).where(
                col(OrderProviderRefs.tracking_number) == q
            )
            query = query.where(col(Order.id).in_(union(numbered, tracked)))
    for column, wanted in (
        (Order.stage, stage.value if stage else None),
        (Order.needs_action, needs_action),
        (Order.sla_breached, sla_breached),
        (Order.payment_failed, payment_failed),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if cursor:
        query = query.where(
            tuple_(col(Order.created_at), col(Order.id)) < tuple_(*read_cursor(cursor))
        )
    rows = (
        await session.exec(
            query.order_by(col(Order.created_at).desc(), col(Order.id).desc()).limit(limit + 1)
        )
    ).all()
    items = [
        OrderSummary(
            order_id=str(order.id),
            number=order.number,
            stage=Stage(order.stage),
            status=CustomerStatus(order.status),
            total=order.total,
            currency=order.currency,
            customer=mask_name(contact.name) if contact.name is not None else ERASED,
            created_at=order.created_at or datetime.now(UTC),  # always set by the database
            flags=FlagsOut(
                needs_action=order.needs_action,
                sla_breached=order.sla_breached,
                payment_failed=order.payment_failed,
            ),
        )
        for order, contact in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        assert last.created_at is not None
        next_cursor = page_cursor(last.created_at, last.id)
    return OrderPage(items=items, next_cursor=next_cursor)


def _as_phone(q: str) -> str | None:
    try:
        parsed = phonenumbers.parse(q, None)
    except phonenumbers.NumberParseException:
        return None
    return (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(parsed)
        else None
    )


def links_for(order_id: uuid.UUID, settings: Settings) -> OrderLinks:
    ui = f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"
    return OrderLinks(
        self=f"/v1/orders/{order_id}", temporal_ui=f"{ui}/{workflow_id_for(str(order_id))}"
    )


def _created_by(order: Order, caller: Principal) -> bool:
    """Whether the caller's API key created the order (keys are told apart by id, not name)."""
    return caller.key_id is not None and order.created_by_key_id == caller.key_id


async def view_order(
    session: AsyncSession,
    *,
    caller: Principal,
    order_id: uuid.UUID,
    workflows: OrderWorkflows,
    settings: Settings,
    live: bool = False,
) -> OrderOut:
    """One order as `caller` may see it: a service only its own; personal data shown (and
    audited) to roles that may read it, masked for the others.

    The read model answers alone: the workflow keeps the order's stage, what it waits for,
    the next deadline and the allowed actions current in Postgres. With `live` the workflow's
    own `status` is asked too, within `STATUS_DEADLINE` (a query costs a worker's attention:
    tens of milliseconds, and a replay of its history when the worker holds it no longer)."""
    order = await session.get(Order, order_id)
    if order is None or (caller.role == Role.SERVICE and not _created_by(order, caller)):
        raise OrderNotFound(order_id)
    unmasked = caller.may(Permission.PERSONAL_DATA)
    status, unanswered = None, None
    if live:
        try:
            status = await workflows.status(order_id)
        except WorkflowUnanswered as exc:
            unanswered = str(exc)
    view = await read_order(
        session,
        order_id=order_id,
        live=status,
        links=links_for(order_id, settings),
        unmasked=unmasked,
        unanswered=unanswered,
        staff=caller.role != Role.SERVICE,
    )
    if view is None:
        raise OrderNotFound(order_id)
    if unmasked:
        await audit(session, caller, "order.read_personal_data", str(order_id))
        await session.commit()
    return view


async def find_orders(session: AsyncSession, *, caller: Principal, **criteria: Any) -> OrderPage:
    """`search_orders` on behalf of `caller`; a search by a person's contact is audited (masked)."""
    page = await search_orders(session, **criteria)
    if criteria.get("q"):
        await audit(
            session,
            caller,
            "orders.search",
            "orders",
            query=mask_query(criteria["q"]),
            found=len(page.items),
        )
        await session.commit()
    return page
