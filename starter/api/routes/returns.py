"""Customer returns of an order, as operators see and steer them: open one (for a customer
who called), list them, approve or refuse one that policy sent to a person, decide about a
failed step, print the return label. The customer's own request is in customers.py."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from schema.api.actions import ResolveIn
from schema.api.returns import ReturnDecisionIn, ReturnIn, ReturnOut
from starter.api.deps import AppSettings, Operator, PersonalData, Searcher, Session, Workflows
from starter.api.errors import responses
from starter.api.routes.refunds import IdempotencyKey
from starter.services import returns
from starter.services.access import audit

router = APIRouter(prefix="/v1/orders/{order_id}/returns", tags=["returns"])


@router.post(
    "",
    status_code=201,
    response_model=ReturnOut,
    responses={
        200: {"model": ReturnOut, "description": "Asked before under this key"},
        **responses(404, 409, 422, 503),
    },
    summary="Open a return of a delivered order (policy decides the window and approval)",
    description=(
        "Answered with policy's assessment in the same call (the return's workflow starts "
        "with an update that answers once policy has spoken): `approved` with its label's "
        "tracking number, `awaiting_approval`, or 409 outside the window. A step that fails "
        "meanwhile, or no answer within 10 s, answers with the return as it stands."
    ),
)
async def open_return(
    order_id: uuid.UUID,
    body: ReturnIn,
    key: IdempotencyKey,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    caller: Operator,
) -> ReturnOut:
    opened, created = await returns.open_return(
        db,
        workflows=workflows,
        settings=settings,
        caller=caller,
        order_id=order_id,
        key=key,
        body=body,
    )
    response.status_code = 201 if created else 200
    return opened


@router.get(
    "",
    response_model=list[ReturnOut],
    responses=responses(404),
    summary="The order's returns",
)
async def list_returns(order_id: uuid.UUID, db: Session, caller: Searcher) -> list[ReturnOut]:
    return await returns.returns_of(db, order_id=order_id)


@router.post(
    "/{return_id}/decision",
    response_model=ReturnOut,
    responses=responses(404, 409, 422, 503),
    summary="Approve, or refuse, a return awaiting approval",
)
async def decide(
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    body: ReturnDecisionIn,
    db: Session,
    workflows: Workflows,
    caller: Operator,
) -> ReturnOut:
    return await returns.decide_return(
        db, workflows=workflows, caller=caller, order_id=order_id, return_id=return_id, body=body
    )


@router.post(
    "/{return_id}/resolve",
    response_model=ReturnOut,
    responses=responses(404, 409, 422, 503),
    summary="Decide about a return's step that failed for good: retry it, or go on without it",
)
async def resolve(
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    body: ResolveIn,
    db: Session,
    workflows: Workflows,
    caller: Operator,
) -> ReturnOut:
    return await returns.resolve_return_step(
        db,
        workflows=workflows,
        caller=caller,
        order_id=order_id,
        return_id=return_id,
        choice=body.choice,
    )


@router.get(
    "/{return_id}/label.pdf",
    responses={200: {"content": {"application/pdf": {}}}, **responses(404)},
    response_class=Response,
    summary="The return label as PDF (holds personal data; each read is audited)",
)
async def label(
    order_id: uuid.UUID, return_id: uuid.UUID, db: Session, caller: PersonalData
) -> Response:
    await audit(db, caller, "order.read_document", str(order_id), kind="return_label")
    await db.commit()
    number, content = await returns.return_label(db, order_id=order_id, return_id=return_id)
    return pdf(number, content)


def pdf(number: str, content: bytes) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="return-{number}.pdf"'},
    )
