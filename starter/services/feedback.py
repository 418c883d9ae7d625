"""The customer's answer to the feedback request: kept in Postgres (the comment may hold
personal data), the scores signalled to the order's workflow. Answering twice changes nothing."""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api import FeedbackIn, FeedbackOut
from schema.contracts import FeedbackReceived
from schema.tables import Feedback, Order
from starter.services import metrics
from starter.services.errors import ActionRefused, OrderNotFound
from starter.services.temporal import OrderWorkflows
from workflows.order import OrderWorkflow


async def order_number(session: AsyncSession, *, order_id: uuid.UUID) -> str:
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order.number


async def answer_feedback(
    session: AsyncSession, *, workflows: OrderWorkflows, order_id: uuid.UUID, body: FeedbackIn
) -> FeedbackOut:
    if await session.get(Order, order_id) is None:
        raise OrderNotFound(order_id)
    inserted = await session.execute(
        insert(Feedback)
        .values(
            id=uuid.uuid4(),
            order_id=order_id,
            rating=body.rating,
            nps=body.nps,
            comment=body.comment,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(col(Feedback.id))
    )
    feedback_id = inserted.scalar()
    if feedback_id is None:
        await session.rollback()
        return FeedbackOut(accepted=False, duplicate=True)
    # When the order's workflow has ended, the answer is still kept.
    with contextlib.suppress(ActionRefused):
        await workflows.signal(
            order_id,
            OrderWorkflow.feedback_received,
            FeedbackReceived(str(feedback_id), body.rating, body.nps),
        )
    await session.commit()
    metrics.feedback_answered(body.rating, body.nps)
    return FeedbackOut(accepted=True, duplicate=False, feedback_id=str(feedback_id))
