"""Erasure of a customer's personal data (GDPR art. 17, 152-FZ): anonymized in Postgres,
their orders keep their history. Workflows hold no personal data (architecture rule 1),
so nothing in Temporal changes; documents holding the address are deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.tables import Customer, CustomerAddress, Document, Feedback, Notification, Order
from starter.services.access import Principal, audit

ERASED = "erased"


class CustomerNotFound(Exception):
    pass


async def erase_customer(session: AsyncSession, *, caller: Principal, email: str) -> dict[str, Any]:
    customer = (await session.exec(select(Customer).where(Customer.email == email.lower()))).first()
    if customer is None:
        raise CustomerNotFound("no customer with that e-mail")
    cid = customer.id
    order_ids = (await session.exec(select(Order.id).where(Order.customer_id == cid))).all()
    customer.name, customer.email = ERASED, f"erased-{cid}@erased.invalid"
    customer.phone, customer.push_token, customer.channels = ERASED, None, ["email"]
    session.add(customer)
    await session.execute(
        update(CustomerAddress)
        .where(col(CustomerAddress.customer_id) == cid)
        .values(city=ERASED, line1=ERASED, line2=None, postal_code=ERASED)
    )
    await session.execute(
        update(Notification)
        .where(col(Notification.order_id).in_(order_ids))
        .values(recipient_masked=ERASED)
    )
    await session.execute(
        update(Feedback).where(col(Feedback.order_id).in_(order_ids)).values(comment=None)
    )
    await session.execute(
        update(Order).where(col(Order.id).in_(order_ids)).values(customer_note=None)
    )
    await session.execute(delete(Document).where(col(Document.order_id).in_(order_ids)))
    await audit(session, caller, "customer.erase", str(cid), orders=len(order_ids))
    await session.commit()
    return {"customer_id": str(cid), "orders": [str(o) for o in order_ids], "erased": True}
