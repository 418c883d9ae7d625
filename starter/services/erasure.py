"""Erasure of a customer's personal data (GDPR art. 17, 152-FZ): every copy in Postgres is
cleared, their orders keep their history, and orders in flight go on without it (nobody is
told anything, nothing is printed from it). Temporal's histories hold none of it (README,
"What Temporal keeps"), so nothing there changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.pii import ERASED, erased_email
from schema.tables import (
    Customer,
    Document,
    EmailSuppression,
    Feedback,
    Incident,
    IntakeFailure,
    Notification,
    Order,
    OrderContact,
    OrderEvent,
    OrderNote,
    Return,
)
from starter.services.access import Principal, audit

# Timeline details that quote what people or providers wrote (an operator's note, an
# incident's summary, a carrier's words): cleared whole, since a person may be named in any form.
FREE_TEXT_DETAILS = ("note", "summary", "detail")


class CustomerNotFound(Exception):
    pass


async def erase_customer(session: AsyncSession, *, caller: Principal, email: str) -> dict[str, Any]:
    # A shop's order that could not be taken keeps its payload until it is resolved: it goes
    # now, also when no order of that e-mail was ever taken.
    failures = (
        await session.execute(
            delete(IntakeFailure)
            .where(col(IntakeFailure.email) == email.lower())
            .returning(col(IntakeFailure.id))
        )
    ).all()
    customer = (await session.exec(select(Customer).where(Customer.email == email.lower()))).first()
    if customer is None:
        if failures:
            await audit(session, caller, "customer.erase", "intake", intake_failures=len(failures))
            await session.commit()
            return {"customer_id": None, "orders": [], "erased": True}
        raise CustomerNotFound("no customer with that e-mail")
    cid = customer.id
    order_ids = (await session.exec(select(Order.id).where(Order.customer_id == cid))).all()
    customer.email = erased_email(cid)
    session.add(customer)
    await session.execute(
        update(OrderContact)
        .where(col(OrderContact.order_id).in_(order_ids))
        .values(
            name=None,
            email=None,
            phone=None,
            push_token=None,
            city=None,
            line1=None,
            line2=None,
            postal_code=None,
            branch_ref=None,
            branch_number=None,
            erased_at=func.now(),
        )
    )
    await session.execute(
        update(Order).where(col(Order.id).in_(order_ids)).values(customer_note=None)
    )
    await session.execute(
        update(Notification)
        .where(col(Notification.order_id).in_(order_ids))
        .values(recipient_masked=ERASED, last_error=None)
    )
    await session.execute(
        update(Feedback).where(col(Feedback.order_id).in_(order_ids)).values(comment=None)
    )
    await session.execute(
        update(OrderNote).where(col(OrderNote.order_id).in_(order_ids)).values(text=ERASED)
    )
    await session.execute(  # what the customer wrote with a return
        update(Return).where(col(Return.order_id).in_(order_ids)).values(comment=None)
    )
    await session.execute(
        update(Incident).where(col(Incident.order_id).in_(order_ids)).values(summary=ERASED)
    )
    events = await session.exec(select(OrderEvent).where(col(OrderEvent.order_id).in_(order_ids)))
    for event in events.all():
        quoted = {key: ERASED for key in FREE_TEXT_DETAILS if event.detail.get(key)}
        if quoted:
            event.detail = {**event.detail, **quoted}
            session.add(event)
    await session.execute(delete(Document).where(col(Document.order_id).in_(order_ids)))
    # What the ESP said of the address (a bounce, a complaint) goes with it.
    await session.execute(delete(EmailSuppression).where(col(EmailSuppression.customer_id) == cid))
    await audit(
        session,
        caller,
        "customer.erase",
        str(cid),
        orders=len(order_ids),
        intake_failures=len(failures),
    )
    await session.commit()
    return {"customer_id": str(cid), "orders": [str(o) for o in order_ids], "erased": True}
