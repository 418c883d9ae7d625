"""Order intake and the read model: keyword-only data functions under the HTTP routes."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api import (
    CustomerOut,
    EventOut,
    LineOut,
    NotificationOut,
    OrderCreate,
    OrderLinks,
    OrderOut,
)
from schema.contracts import CustomerStatus, OrderStatus, Stage
from schema.pii import mask_email, mask_name, mask_phone
from schema.tables import Customer, CustomerAddress, Notification, Order, OrderEvent, OrderLine


class OrderNumberConflict(Exception):
    """The number is taken by an order with a different body."""

    def __init__(self, number: str) -> None:
        super().__init__(f"order number {number} is already used by a different order")


async def find_by_number(session: AsyncSession, *, number: str) -> Order | None:
    return (await session.exec(select(Order).where(Order.number == number))).first()


def _same_or_conflict(existing: Order, body: OrderCreate) -> Order:
    if existing.request_hash != body.fingerprint():
        raise OrderNumberConflict(body.number)
    return existing


async def record_order(session: AsyncSession, *, body: OrderCreate) -> tuple[Order, bool]:
    """Store customer, address, order and lines in one transaction.

    Returns the order and whether it was created now. The same body under the same
    number returns the stored order; another body raises `OrderNumberConflict`.
    """
    existing = await find_by_number(session, number=body.number)
    if existing is not None:
        return _same_or_conflict(existing, body), False

    customer_in = body.customer
    customer_id = (
        await session.execute(
            insert(Customer)
            .values(
                id=uuid.uuid4(),
                email=customer_in.email,
                name=customer_in.name,
                phone=customer_in.phone,
                locale=customer_in.locale,
                channels=customer_in.channels,
                push_token=customer_in.push_token,
            )
            .on_conflict_do_update(
                index_elements=["email"],
                set_={
                    "name": customer_in.name,
                    "phone": customer_in.phone,
                    "locale": customer_in.locale,
                    "channels": customer_in.channels,
                    "push_token": customer_in.push_token,
                },
            )
            .returning(col(Customer.id))
        )
    ).scalar_one()

    address_id = None
    if body.delivery.address is not None:
        address = CustomerAddress(customer_id=customer_id, **body.delivery.address.model_dump())
        session.add(address)
        address_id = address.id

    order = Order(
        number=body.number,
        customer_id=customer_id,
        address_id=address_id,
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
    )
    session.add(order)
    for position, line in enumerate(body.lines, start=1):
        session.add(OrderLine(order_id=order.id, position=position, **line.model_dump()))
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
    session: AsyncSession, *, order_id: uuid.UUID, live: OrderStatus | None, links: OrderLinks
) -> OrderOut | None:
    """The read model of one order, personal data masked, with the workflow's live status."""
    order = await session.get(Order, order_id)
    if order is None:
        return None
    customer = await session.get(Customer, order.customer_id)
    assert customer is not None
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
    assert order.created_at is not None
    return OrderOut(
        order_id=str(order.id),
        number=order.number,
        stage=Stage(order.stage),
        status=CustomerStatus(order.status),
        delivery_method=order.delivery_method,  # type: ignore[arg-type]
        payment_method=order.payment_method,  # type: ignore[arg-type]
        currency=order.currency,
        total=order.total,
        expected_date=order.expected_date,
        created_at=order.created_at,
        customer=CustomerOut(
            name=mask_name(customer.name),
            email=mask_email(customer.email),
            phone=mask_phone(customer.phone),
            locale=customer.locale,
        ),
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
            )
            for n in notifications
        ],
        workflow=workflow,
        links=links,
    )
