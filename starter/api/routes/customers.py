"""The customer's answers as JSON, opened by the signed link from a message (public,
rate-limited): the feedback, the choice about missing items, and a return (opened by the
status link). The HTML pages of the same links are in starter/customer/."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response

from schema.api import (
    ActionOut,
    CustomerReturnIn,
    CustomerStockChoiceIn,
    FeedbackIn,
    FeedbackOut,
    ReturnableOut,
    ReturnOut,
)
from schema.links import LinkPurpose
from settings import get_settings
from starter.api.deps import AppSettings, Session, Workflows, client_ip, linked_order
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.api.routes.refunds import IdempotencyKey
from starter.services import actions, returns
from starter.services.access import Principal
from starter.services.feedback import answer_feedback

router = APIRouter(prefix="/v1/customer/orders/{token}", tags=["customers"])
FeedbackLink = Annotated[uuid.UUID, linked_order(LinkPurpose.FEEDBACK)]
StockChoiceLink = Annotated[uuid.UUID, linked_order(LinkPurpose.STOCK_CHOICE)]
StatusLink = Annotated[uuid.UUID, linked_order(LinkPurpose.STATUS)]


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


@router.get(
    "/returns",
    response_model=ReturnableOut,
    responses=responses(404, 410, 422),
    summary="What the customer may send back, and their returns so far (the status link)",
)
async def returnable(order_id: StatusLink, db: Session) -> ReturnableOut:
    return await returns.returnable(db, order_id=order_id)


@router.post(
    "/returns",
    status_code=201,
    response_model=ReturnOut,
    responses={
        200: {"model": ReturnOut, "description": "Asked before under this key"},
        **responses(404, 409, 410, 422, 429, 503),
    },
    summary="The customer asks for a return: lines, quantities, reason, comment (the status link)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def ask_for_a_return(
    request: Request,
    response: Response,
    order_id: StatusLink,
    body: CustomerReturnIn,
    key: IdempotencyKey,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> ReturnOut:
    opened, created = await returns.open_return(
        db,
        workflows=workflows,
        settings=settings,
        caller=Principal.customer(client_ip(request)),
        order_id=order_id,
        key=key,
        body=body,
    )
    response.status_code = 201 if created else 200
    return opened
