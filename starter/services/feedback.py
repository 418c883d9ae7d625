"""The customer's answer to the feedback request (the form of the link in the message, the
status page's form, or the JSON twin).

Only a delivered order (delivered or collected, and not cancelled since) is rated: any
other is refused with 409 (FeedbackNotOpen), so no bonus is ever earned without buying.

The answer is kept in Postgres (the comment may hold personal data); answering again
replaces the stored answer, one row per order. The first answer is signalled to the order's
workflow (its scores only), which keeps acting on it, as on any first answer. Every answer
gets the bonus the policy gives (activities/feedback.py: for any answer, never by its
score), shown on the thank-you page, sent in the thank-you message (once, after the first
answer) and carried, with the scores, in the shop's `feedback.received` event — written in
the same transaction as the answer (the outbox), whether or not the workflow still runs.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities import shop_events
from activities.feedback import bonus_of
from schema.api.customers import FeedbackIn, FeedbackOut
from schema.contracts import (
    CustomerMessageInput,
    FeedbackReceived,
    MessageKind,
    NotifyInput,
    Stage,
    message_workflow_id,
)
from schema.shop_events import ShopEventType
from schema.tables import Feedback, Order, OrderLine
from settings import Settings
from starter.services import metrics
from starter.services.errors import ActionRefused, InputRefused, OrderNotFound
from starter.services.returns import delivered_at
from starter.services.temporal import OrderWorkflows
from workflows.order import OrderWorkflow


class FeedbackNotOpen(ActionRefused):  # 409
    def __init__(self) -> None:
        super().__init__("feedback is taken once the order has been delivered")


async def feedback_open(session: AsyncSession, *, order: Order) -> bool:
    """Whether the order may be rated: it reached the customer and was not cancelled."""
    return order.stage != Stage.CANCELLED and await delivered_at(session, order.id) is not None


async def order_number(session: AsyncSession, *, order_id: uuid.UUID) -> str:
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order.number


async def answer_feedback(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    settings: Settings,
    order_id: uuid.UUID,
    body: FeedbackIn,
) -> FeedbackOut:
    # The order's row, locked: its shop events are numbered in the order they commit.
    order = (
        await session.exec(select(Order).where(Order.id == order_id).with_for_update())
    ).first()
    if order is None:
        raise OrderNotFound(order_id)
    skus = set(
        (await session.exec(select(OrderLine.sku).where(OrderLine.order_id == order_id))).all()
    )
    for position, line in enumerate(body.line_ratings):
        if line.sku not in skus:
            raise InputRefused(f"line_ratings.{position}.sku", f"order has no line {line.sku}")
    if not await feedback_open(session, order=order):
        raise FeedbackNotOpen
    answer = {
        "rating": body.rating,
        "nps": body.nps,
        "comment": body.comment,
        "line_ratings": {line.sku: line.rating for line in body.line_ratings},
    }
    stored = (
        await session.execute(
            insert(Feedback)
            .values(id=uuid.uuid4(), order_id=order_id, **answer)
            .on_conflict_do_update(
                index_elements=["order_id"], set_={**answer, "updated_at": func.now()}
            )
            # xmax is 0 for a row this statement inserted, not for one it updated.
            .returning(col(Feedback.id), literal_column("xmax = 0"))
        )
    ).one()
    feedback_id, first = stored
    bonus = await bonus_of(session, order_id=order_id, settings=settings)
    code = bonus.code if bonus is not None else None
    await shop_events.record(
        session,
        order_id=order_id,
        type=ShopEventType.FEEDBACK_RECEIVED,
        at=datetime.now(UTC),
        data={
            "feedback_id": str(feedback_id),
            "rating": body.rating,
            "nps": body.nps,
            "line_ratings": answer["line_ratings"],
            "bonus_code": code,
            "updated": not first,
        },
    )
    if first:
        # Before the commit: if Temporal cannot be told, nothing is stored and the customer's
        # retry is a first answer again (the workflow takes one answer, the thanks go once).
        with contextlib.suppress(ActionRefused):  # the order's workflow has ended: kept anyway
            await workflows.signal(
                order_id,
                OrderWorkflow.feedback_received,
                FeedbackReceived(str(feedback_id), body.rating, body.nps),
            )
        thanks = NotifyInput(
            str(order_id),
            MessageKind.FEEDBACK_THANKS,
            f"{MessageKind.FEEDBACK_THANKS.value}:1",
            {"bonus_code": code} if code else {},
        )
        await workflows.send_message(
            message_workflow_id(MessageKind.FEEDBACK_THANKS, str(order_id)),
            CustomerMessageInput(notify=thanks),
        )
    await session.commit()
    if first:
        metrics.feedback_answered(body.rating, body.nps)
    return FeedbackOut(
        accepted=True, duplicate=not first, feedback_id=str(feedback_id), bonus_code=code
    )


async def stored_answer(session: AsyncSession, *, order_id: uuid.UUID) -> Feedback | None:
    return (await session.exec(select(Feedback).where(Feedback.order_id == order_id))).first()
