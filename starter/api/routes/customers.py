"""The customer's side as JSON, without credentials: the status page's twin for chat-bots and
messenger integrations, and the customer's own actions (cancel, feedback, the choice about
missing items, a return), each opened by the signed link of a message (public,
rate-limited); and "my orders" by e-mailed link. The HTML pages of the same links are in
starter/customer/."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response

from schema.api.actions import ActionOut
from schema.api.customers import (
    CustomerCancelIn,
    CustomerLinkAccepted,
    CustomerLinkIn,
    CustomerOrderOut,
    CustomerStockChoiceIn,
    FeedbackIn,
    FeedbackOut,
)
from schema.api.fields import Locale
from schema.api.returns import CustomerReturnIn, ReturnableOut, ReturnOut
from schema.links import LinkPurpose
from settings import get_settings
from starter.api.deps import (
    AppSettings,
    OrderListGuard,
    Session,
    Workflows,
    client_ip,
    linked_order,
)
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.api.routes.refunds import IdempotencyKey
from starter.services import actions, returns, status_page
from starter.services.access import Principal
from starter.services.feedback import answer_feedback

router = APIRouter(prefix="/v1/customer/orders/{token}", tags=["customers"])
links_router = APIRouter(prefix="/v1/customer-links", tags=["customers"])
StatusLink = Annotated[uuid.UUID, linked_order(LinkPurpose.STATUS)]
FeedbackLink = Annotated[uuid.UUID, linked_order(LinkPurpose.FEEDBACK, LinkPurpose.STATUS)]
StockChoiceLink = Annotated[uuid.UUID, linked_order(LinkPurpose.STOCK_CHOICE, LinkPurpose.STATUS)]


@router.get(
    "",
    response_model=CustomerOrderOut,
    responses=responses(404, 410, 422, 429),
    summary="The order as its customer sees it (the status page's link; no credentials)",
)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def customer_order(
    request: Request,
    token: Annotated[str, Path(max_length=200)],
    order_id: StatusLink,
    settings: AppSettings,
    lang: Annotated[
        Locale | None, Query(description="uk, ru or en; the order's by default")
    ] = None,
) -> CustomerOrderOut:
    return await status_page.status_view(
        request.app.state.engine,
        order_id=order_id,
        requested_locale=lang,
        settings=settings,
        receipt_url=f"{settings.public_url}/order/{token}/receipt.pdf",
        source="json",
    )


@router.post(
    "/cancel",
    response_model=ActionOut,
    responses=responses(404, 409, 410, 422, 429, 503),
    summary="The customer cancels before handover, with a reason from the list (status link)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def customer_cancel(
    request: Request,
    order_id: StatusLink,
    body: CustomerCancelIn,
    db: Session,
    workflows: Workflows,
) -> ActionOut:
    result = await actions.cancel_as_customer(
        db, workflows=workflows, order_id=order_id, body=body, ip=client_ip(request)
    )
    return ActionOut.model_validate(result, from_attributes=True)


@router.post(
    "/stock-choice",
    response_model=ActionOut,
    responses=responses(404, 409, 410, 422, 429, 503),
    summary="The customer's own choice about missing items (the message's or status link)",
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
    responses=responses(404, 409, 410, 422, 429, 503),
    summary="The customer's answer: rating 1-5 and/or NPS 0-10, comment, per-line ratings; "
    "answering again replaces the answer. Only for a delivered order (409 before delivery "
    "or once cancelled); one bonus per order, whatever is answered how often",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback(
    request: Request,
    order_id: FeedbackLink,
    body: FeedbackIn,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> FeedbackOut:
    return await answer_feedback(
        db, workflows=workflows, settings=settings, order_id=order_id, body=body
    )


@links_router.post(
    "",
    status_code=202,
    response_model=CustomerLinkAccepted,
    responses=responses(422, 429),
    summary='"My orders": e-mail a short-lived link to every order of this address',
)
@limiter.limit(lambda: get_settings().customer_link_rate_limit)
async def customer_link(
    request: Request,
    body: CustomerLinkIn,
    background: BackgroundTasks,
    workflows: Workflows,
    limits: OrderListGuard,
) -> CustomerLinkAccepted:
    """Always 202 with the same answer, whether the address has orders or not (nothing tells
    who is a customer); the look-up and the e-mail happen after the answer. Limited per
    client address (429) and, silently, per e-mail address."""
    background.add_task(
        status_page.send_order_list,
        request.app.state.engine,
        workflows=workflows,
        limits=limits,
        email=body.email,
        locale=body.locale,
    )
    return CustomerLinkAccepted(
        detail="If this address has orders, a link to them is on its way; it works for a while."
    )


@router.get(
    "/returns",
    response_model=ReturnableOut,
    responses=responses(404, 410, 422, 429),
    summary="What the customer may send back, and their returns so far (the status link)",
)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def returnable(request: Request, order_id: StatusLink, db: Session) -> ReturnableOut:
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
    description=(
        "Answered with policy's assessment in the same call (the return's workflow starts "
        "with an update that answers once policy has spoken): `approved` with its label's "
        "tracking number, `awaiting_approval`, or 409 outside the window. A step that fails "
        "meanwhile, or no answer within 10 s, answers with the return as it stands."
    ),
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
    return returns.as_customer_sees(opened)
