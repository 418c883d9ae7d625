"""Partial refunds of an order (operators): an amount or lines, at any point after payment.
The refunds of an order never exceed what was paid: a refund that would is 409 with the
reason. Each needs an `Idempotency-Key`: the same key again answers with the same refund."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from schema.api.returns import IDEMPOTENCY_KEY, RefundIn, RefundOut, RefundsOut
from starter.api.deps import AppSettings, Operator, Searcher, Session, Workflows
from starter.api.errors import responses
from starter.services import refunds

router = APIRouter(prefix="/v1/orders/{order_id}/refunds", tags=["refunds"])
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY,
        description="Yours, one per refund (8-64 letters, digits, _ . : -): a retried request "
        "with it refunds nothing more",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=RefundOut,
    responses=responses(404, 409, 422, 503),
    summary="Refund an amount or lines of a paid order (never more than was paid in all)",
)
async def refund(
    order_id: uuid.UUID,
    body: RefundIn,
    key: IdempotencyKey,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    caller: Operator,
) -> RefundOut:
    return await refunds.refund(
        db,
        workflows=workflows,
        settings=settings,
        caller=caller,
        order_id=order_id,
        key=key,
        body=body,
    )


@router.get(
    "",
    response_model=RefundsOut,
    responses=responses(404),
    summary="The order's refund ledger: what was paid, every refund, what is left",
)
async def ledger(order_id: uuid.UUID, db: Session, caller: Searcher) -> RefundsOut:
    return await refunds.refunds_of(db, order_id=order_id)
