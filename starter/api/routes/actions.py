"""The operator's actions on an order (workflow updates; 409 with the reason when the order's
stage refuses) and notes. Every place an action needs: the README, **Where a change goes**."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from schema.api.actions import (
    ActionOut,
    CancelIn,
    ConfirmIn,
    DelayIn,
    NoteIn,
    ParcelDecisionIn,
    RejectIn,
    ResolveIn,
    StockDecisionIn,
)
from schema.api.orders import NoteOut
from starter.api.deps import NoteTaker, Operator, Session, Workflows
from starter.api.errors import responses
from starter.services import actions

router = APIRouter(prefix="/v1/orders/{order_id}", tags=["operators"])
REFUSED = responses(404, 409, 422, 503)


def _out(result: object) -> ActionOut:
    return ActionOut.model_validate(result, from_attributes=True)


@router.post(
    "/confirm",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Confirm an order awaiting review (optionally edited)",
)
async def confirm(
    order_id: uuid.UUID, body: ConfirmIn, db: Session, workflows: Workflows, caller: Operator
) -> ActionOut:
    return _out(
        await actions.confirm(db, workflows=workflows, caller=caller, order_id=order_id, body=body)
    )


@router.post(
    "/reject",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Reject an order awaiting review",
)
async def reject(
    order_id: uuid.UUID, body: RejectIn, db: Session, workflows: Workflows, caller: Operator
) -> ActionOut:
    return _out(
        await actions.reject(db, workflows=workflows, caller=caller, order_id=order_id, body=body)
    )


@router.post(
    "/stock-decision",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Record the decision about missing stock",
)
async def decide_stock(
    order_id: uuid.UUID,
    body: StockDecisionIn,
    db: Session,
    workflows: Workflows,
    caller: Operator,
) -> ActionOut:
    return _out(
        await actions.decide_stock(
            db, workflows=workflows, caller=caller, order_id=order_id, body=body
        )
    )


@router.post(
    "/delay",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Mark the order delayed; the customer is told the reason and the new date",
)
async def delay(
    order_id: uuid.UUID, body: DelayIn, db: Session, workflows: Workflows, caller: Operator
) -> ActionOut:
    return _out(
        await actions.mark_delayed(
            db, workflows=workflows, caller=caller, order_id=order_id, body=body
        )
    )


@router.post(
    "/cancel",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Cancel (until handover); compensation runs before the answer",
)
async def cancel(
    order_id: uuid.UUID, body: CancelIn, db: Session, workflows: Workflows, caller: Operator
) -> ActionOut:
    return _out(
        await actions.cancel(db, workflows=workflows, caller=caller, order_id=order_id, body=body)
    )


@router.post(
    "/resolve",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Decide about a step that failed for good: retry it, or go on without it",
)
async def resolve_step(
    order_id: uuid.UUID, body: ResolveIn, db: Session, workflows: Workflows, caller: Operator
) -> ActionOut:
    return _out(
        await actions.resolve_step(
            db, workflows=workflows, caller=caller, order_id=order_id, body=body
        )
    )


@router.post(
    "/parcel-decision",
    response_model=ActionOut,
    responses=REFUSED,
    summary="Decide about a lost or damaged parcel: re-ship it, refund, or cancel",
)
async def decide_parcel(
    order_id: uuid.UUID,
    body: ParcelDecisionIn,
    db: Session,
    workflows: Workflows,
    caller: Operator,
) -> ActionOut:
    return _out(
        await actions.decide_parcel(
            db, workflows=workflows, caller=caller, order_id=order_id, body=body
        )
    )


@router.post(
    "/notes",
    status_code=201,
    response_model=NoteOut,
    responses=responses(404, 422),
    summary="Add a note to the order (operators, support)",
)
async def add_note(order_id: uuid.UUID, body: NoteIn, db: Session, caller: NoteTaker) -> NoteOut:
    return await actions.add_note(db, caller=caller, order_id=order_id, body=body)
