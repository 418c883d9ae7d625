"""Orders: accept one (idempotent on its number), read one, find many."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Response, status

from schema.api.fields import OneLine
from schema.api.orders import OrderAccepted, OrderCreate, OrderOut, OrderPage, PageCursor
from schema.contracts import CustomerStatus, Stage
from starter.api.deps import AppSettings, Creator, Reader, Searcher, Session, Workflows
from starter.api.errors import responses
from starter.services.orders import accept_order, find_orders, links_for, view_order

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderAccepted,
    responses={
        200: {"model": OrderAccepted, "description": "The same order again"},
        **responses(409, 422, 503),
    },
    summary="Accept an order and start its workflow (idempotent on `number`)",
)
async def create_order(
    body: OrderCreate,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    response: Response,
    caller: Creator,
) -> OrderAccepted:
    started = time.perf_counter()
    order, created = await accept_order(db, workflows=workflows, body=body, creator=caller)
    if not created:
        response.status_code = status.HTTP_200_OK
    log.info(
        "order accepted" if created else "order request repeated",
        number=order.number,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return OrderAccepted(
        order_id=str(order.id),
        number=order.number,
        status=CustomerStatus(order.status),
        links=links_for(order.id, settings),
    )


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    responses=responses(404),
    summary="The order's read model; with `live=true` the workflow's live `status` too",
)
async def get_order(
    order_id: uuid.UUID,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    caller: Reader,
    live: Annotated[
        bool,
        Query(
            description="Also ask the workflow for its live `status` (within 2 s); the read "
            "model alone already holds the stage, what the order waits for, the next deadline "
            "and the allowed actions"
        ),
    ] = False,
) -> OrderOut:
    """Personal data is shown to operators and admins (and each such read is audited), masked for others."""
    return await view_order(
        db, caller=caller, order_id=order_id, workflows=workflows, settings=settings, live=live
    )


@router.get(
    "",
    response_model=OrderPage,
    summary="Find orders by number, phone, e-mail or tracking number, with filters (newest first)",
)
async def list_orders(
    db: Session,
    caller: Searcher,
    q: Annotated[
        OneLine | None,
        Query(description="number, phone, e-mail or tracking number", max_length=200),
    ] = None,
    stage: Stage | None = None,
    needs_action: bool | None = None,
    sla_breached: bool | None = None,
    payment_failed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: PageCursor | None = None,
) -> OrderPage:
    return await find_orders(
        db,
        caller=caller,
        q=q,
        stage=stage,
        needs_action=needs_action,
        sla_breached=sla_breached,
        payment_failed=payment_failed,
        limit=limit,
        cursor=cursor,
    )
