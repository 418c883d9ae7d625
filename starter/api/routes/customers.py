"""The customer's answers as JSON, opened by the signed link from a message (public,
rate-limited): the feedback and the choice about missing items. The HTML pages of the same
links are in starter/customer/."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request

from schema.api import ActionOut, CustomerStockChoiceIn, FeedbackIn, FeedbackOut
from schema.links import LinkPurpose
from settings import get_settings
from starter.api.deps import Session, Workflows, client_ip, linked_order
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services import actions
from starter.services.feedback import answer_feedback

router = APIRouter(prefix="/v1/customer/orders/{token}", tags=["customers"])
FeedbackLink = Annotated[uuid.UUID, linked_order(LinkPurpose.FEEDBACK)]
StockChoiceLink = Annotated[uuid.UUID, linked_order(LinkPurpose.STOCK_CHOICE)]


@router.post(
    "/stock-choice",
    response_model=ActionOut,
    responses=responses(404, 409, 410, 422, 429, 503),
    summary="The customer's own choice about missing items (the link from the message)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def customer_stock_choice(
    request: Request,
    order_id: StockChoiceLink,
    body: CustomerStockChoiceIn,
    db: Session,
    workflows: Workflows,
) -> ActionOut:
    result = await actions.choose_stock_as_customer(
        db, workflows=workflows, order_id=order_id, body=body, ip=client_ip(request)
    )
    return ActionOut.model_validate(result, from_attributes=True)


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    responses=responses(404, 410, 422, 429, 503),
    summary="The customer's answer: rating 1-5 or NPS 0-10, comment (the link from the message)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback(
    request: Request, order_id: FeedbackLink, body: FeedbackIn, db: Session, workflows: Workflows
) -> FeedbackOut:
    return await answer_feedback(db, workflows=workflows, order_id=order_id, body=body)
