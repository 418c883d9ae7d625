"""A known history of orders, written straight into Postgres with chosen timestamps, for the
report tests to check every figure against numbers worked out by hand.

Every time is relative to `base` (a day at 00:00 UTC), so each test seeds its own window.
Five orders are created on days 0 and 1, one earlier (which makes a customer returning)
and one exactly at day 2 (outside a [day 0, day 2) window); A is returned twice after it
completed (and asked once more, refused as too late), E once. The expected figures are in
tests/test_reports.py beside the arithmetic that gives them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from schema.database import open_session
from schema.tables import (
    Customer,
    Feedback,
    Incident,
    Notification,
    Order,
    OrderEvent,
    OrderNote,
    OrderProviderRefs,
    StatusPageVisit,
)

H, M = timedelta(hours=1), timedelta(minutes=1)


@dataclass
class Seeded:
    base: datetime
    orders: dict[str, uuid.UUID] = field(default_factory=dict)

    def at(
        self, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0
    ) -> datetime:
        return self.base + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _events(
    order_id: uuid.UUID, steps: list[tuple[datetime, str, str, dict[str, str]]]
) -> list[OrderEvent]:
    return [
        OrderEvent(
            order_id=order_id,
            key=f"{position:04d}:{kind}",
            at=at,
            type=kind,
            stage=stage,
            actor="system",
            detail=detail,
        )
        for position, (at, kind, stage, detail) in enumerate(steps)
    ]


async def seed_history(engine: AsyncEngine, base: datetime) -> Seeded:
    seeded = Seeded(base)
    at = seeded.at
    tag = uuid.uuid4().hex[:8]
    customers = {
        name: Customer(
            email=f"{name}.{tag}@example.com", name=name, phone="+380501234567", locale="uk"
        )
        for name in ("c1", "c2", "c3")
    }

    def order(name: str, customer: str, created: datetime, delivery: str, payment: str) -> Order:
        row = Order(
            number=f"R-{tag}-{name}",
            customer_id=customers[customer].id,
            delivery_method=delivery,
            payment_method=payment,
            currency="UAH",
            total=Decimal("100.00"),
            stage="intake",
            status="received",
            request_hash=name,
            created_at=created,
        )
        seeded.orders[name] = row.id
        return row

    orders = [
        order("old", "c1", at(days=-14), "courier", "prepaid"),
        order("A", "c1", at(hours=8), "courier", "prepaid"),
        order("B", "c2", at(hours=12), "courier", "cod"),
        order("C", "c3", at(hours=18), "post", "prepaid"),
        order("D", "c1", at(days=1, hours=9), "pickup", "prepaid"),
        order("E", "c2", at(days=1, hours=15), "courier", "prepaid"),
        order("late", "c3", at(days=2), "courier", "prepaid"),  # just outside [day 0, day 2)
    ]
    ids = seeded.orders
    a, b, c, d, e = (ids[name] for name in "ABCDE")
    promised = {name: {"expected_date": at(days=days).date().isoformat()} for name, days in
                (("A", 2), ("B", 1), ("C", 5), ("E", 2))}  # fmt: skip
    timeline = [
        *_events(a, [
            (at(hours=8), "order.received", "intake", {}),
            (at(hours=8, minutes=1), "order.validation_started", "validation", {}),
            (at(hours=8, minutes=3), "order.confirmation_started", "confirmation", {}),
            (at(hours=8, minutes=3, seconds=30), "order.confirmed", "confirmation", promised["A"]),
            (at(hours=8, minutes=4), "stock.reservation_started", "stock", {}),
            (at(hours=8, minutes=5), "payment.requested", "payment", {}),
            (at(hours=8, minutes=15), "picking.started", "picking", {}),
            (at(hours=8, minutes=45), "transit.started", "transit", {}),
            (at(days=1, hours=8, minutes=45), "order.delivered", "transit", {}),
            (at(days=1, hours=8, minutes=45), "feedback.scheduled", "feedback", {}),
            (at(days=2, hours=8, minutes=45), "feedback.requested", "feedback", {}),
            (at(days=2, hours=9, minutes=45), "order.completed", "completed", {}),
            (at(days=5), "return.requested", "completed", {"reason": "wrong_size", "return": "A-R1"}),
            (at(days=6), "return.requested", "completed", {"reason": "defective", "return": "A-R2"}),
            (at(days=20), "return.refused", "completed", {"decline": "window_closed", "return": "A-R3"}),
        ]),
        *_events(b, [
            (at(hours=12), "order.received", "intake", {}),
            (at(hours=12, minutes=2), "order.validation_started", "validation", {}),
            (at(hours=12, minutes=3), "order.confirmation_started", "confirmation", {}),
            (at(hours=12, minutes=3, seconds=40), "order.confirmed", "confirmation", promised["B"]),
            (at(hours=12, minutes=4), "stock.reservation_started", "stock", {}),
            (at(hours=12, minutes=5), "picking.started", "picking", {}),
            (at(hours=13, minutes=5), "transit.started", "transit", {}),
            (at(days=1, hours=13, minutes=5), "sla.silence_breached", "transit",
             {"waiting_for": "carrier", "notice": "1"}),
            (at(days=3, hours=10), "order.delivered", "transit", {}),
            (at(days=3, hours=10), "feedback.scheduled", "feedback", {}),
            (at(days=4, hours=10), "feedback.requested", "feedback", {}),
        ]),
        *_events(c, [
            (at(hours=18), "order.received", "intake", {}),
            (at(hours=18, seconds=30), "order.validation_started", "validation", {}),
            (at(hours=18, minutes=1, seconds=30), "order.confirmation_started", "confirmation", {}),
            (at(hours=18, minutes=2), "order.confirmed", "confirmation", promised["C"]),
            (at(hours=18, minutes=2, seconds=30), "stock.reservation_started", "stock", {}),
            (at(hours=18, minutes=3, seconds=30), "payment.requested", "payment", {}),
            (at(days=1, hours=18, minutes=3, seconds=30), "sla.silence_breached", "payment",
             {"waiting_for": "payment", "notice": "1"}),
            (at(days=2, hours=18, minutes=3, seconds=30), "sla.silence_breached", "payment",
             {"waiting_for": "payment", "notice": "2"}),
            (at(days=3, hours=18, minutes=3, seconds=30), "order.cancelled", "cancelled",
             {"reason": "payment_expired", "note": "", "undone": "stock released"}),
        ]),
        *_events(d, [
            (at(days=1, hours=9), "order.received", "intake", {}),
            (at(days=1, hours=9, seconds=10), "order.validation_started", "validation", {}),
            (at(days=1, hours=9, seconds=15), "order.invalid", "cancelled",
             {"problems": "order has no lines"}),
        ]),
        *_events(e, [
            (at(days=1, hours=15), "order.received", "intake", {}),
            (at(days=1, hours=15, minutes=1, seconds=30), "order.validation_started", "validation", {}),
            (at(days=1, hours=15, minutes=2, seconds=30), "order.confirmation_started", "confirmation", {}),
            (at(days=1, hours=15, minutes=3), "order.confirmed", "confirmation", promised["E"]),
            (at(days=1, hours=15, minutes=3, seconds=30), "stock.reservation_started", "stock", {}),
            (at(days=1, hours=15, minutes=4, seconds=30), "payment.requested", "payment", {}),
            (at(days=1, hours=15, minutes=24, seconds=30), "picking.started", "picking", {}),
            (at(days=1, hours=15, minutes=34, seconds=30), "transit.started", "transit", {}),
            (at(days=2, hours=20), "order.delivered", "transit", {}),
            (at(days=2, hours=20), "feedback.scheduled", "feedback", {}),
            (at(days=3, hours=20), "feedback.requested", "feedback", {}),
            (at(days=3, hours=21), "order.completed", "completed", {}),
            (at(days=4), "return.requested", "completed", {"reason": "wrong_size", "return": "E-R1"}),
        ]),
        *_events(ids["late"], [(at(days=2), "order.received", "intake", {})]),
    ]  # fmt: skip

    def sent(
        order_id: uuid.UUID, n: int, channel: str, status: str = "sent", kind: str = "x"
    ) -> list[Notification]:
        return [
            Notification(
                order_id=order_id,
                idempotency_key=f"{order_id}:{kind}:{i}:{channel}:{status}",
                kind=kind,
                channel=channel,
                recipient_masked="c***@example.com",
                status=status,
            )
            for i in range(n)
        ]

    messages = [
        *sent(a, 4, "email"), *sent(a, 1, "sms"), *sent(a, 1, "push", "undeliverable"),
        *sent(a, 1, "email", kind="manager_incident"),  # to the managers: not counted
        *sent(b, 3, "email"), *sent(b, 1, "email", "undeliverable"), *sent(b, 1, "viber"),
        *sent(c, 2, "email"), *sent(c, 1, "email", "pending"),  # still being retried
        *sent(c, 1, "viber", "undeliverable"),
        *sent(e, 2, "email"), *sent(e, 1, "sms"),
    ]  # fmt: skip
    rest: list[Any] = [
        Feedback(order_id=a, rating=5, nps=10),
        Feedback(order_id=b, rating=2, nps=3),
        Feedback(order_id=e, rating=4, nps=9),
        Incident(order_id=a, key="pick-1", stage="picking", cause="human", summary="defect"),
        Incident(order_id=b, key="carrier", stage="transit", cause="external", summary="lost"),
        Incident(order_id=e, key="pick-1", stage="picking", cause="system", summary="scanner"),
        *(StatusPageVisit(order_id=a, at=at(days=1), source=s) for s in ("link", "link", "page")),
        StatusPageVisit(order_id=b, at=at(days=1), source="json"),
        StatusPageVisit(order_id=e, at=at(days=2), source="link"),
        OrderNote(order_id=a, author="staff:s", text="where is my order?", customer_contact=True),
        OrderNote(order_id=a, author="staff:s", text="asked to ring twice"),
        OrderNote(order_id=e, author="staff:s", text="where is it?", customer_contact=True),
        OrderNote(order_id=e, author="staff:s", text="called again", customer_contact=True),
        OrderProviderRefs(order_id=a, carrier="NovaSim", tracking_number=f"T{tag}A"),
        OrderProviderRefs(order_id=b, carrier="NovaSim", tracking_number=f"T{tag}B"),
        OrderProviderRefs(order_id=e, carrier="UkrSim", tracking_number=f"T{tag}E"),
    ]
    # In the order the system writes them: the customer, the order, then what happens to it.
    for batch in (list(customers.values()), orders, timeline, messages, rest):
        async with open_session(engine) as session:
            session.add_all(batch)
            await session.commit()
    return seeded
