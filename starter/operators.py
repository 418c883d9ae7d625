"""Operator actions (workflow updates), the customer's feedback form, and order documents."""

from __future__ import annotations

import uuid
from contextlib import suppress
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from schema.contracts import (
    ActionResult,
    CancelOrder,
    CancelReason,
    ConfirmOrder,
    FeedbackReceived,
    LineEdit,
    MarkDelayed,
    RejectOrder,
    StockChoice,
    StockDecision,
    workflow_id_for,
)
from schema.tables import Document, Feedback, Order, OrderNote
from settings import get_settings
from starter.auth import Permission, Principal, Role, audit, require
from starter.deps import Session, TemporalClient
from starter.limits import limiter

router = APIRouter(prefix="/v1/orders/{order_id}", tags=["operators"])
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not allowed in the order's current stage; the reason is given"}
}


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class ConfirmIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"final_price": "450.00", "note": "discount agreed by phone"}]
        }
    )

    lines: list[LineIn] | None = None
    final_price: Decimal | None = Field(default=None, gt=0, decimal_places=2)
    note: str = Field(default="", max_length=500)


class RejectIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "wholesale orders go through the B2B desk"}]}
    )

    reason: str = Field(min_length=1, max_length=500)


class StockDecisionIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"choice": "backorder", "note": "customer will wait"}]}
    )

    choice: StockChoice
    alternative_lines: list[LineIn] | None = None
    note: str = Field(default="", max_length=500)


class DelayIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "the supplier is late", "new_date": "2026-12-10"}]
        }
    )

    reason: str = Field(min_length=1, max_length=500)
    new_date: date


class CancelIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "customer_request", "note": "asked by phone"}]}
    )

    reason: CancelReason
    note: str = Field(default="", max_length=500)


def _lines(lines: list[LineIn] | None) -> list[LineEdit] | None:
    return None if lines is None else [LineEdit(**line.model_dump()) for line in lines]


async def run_action(
    client: TemporalClient,
    db: Session,
    caller: Principal,
    order_id: uuid.UUID,
    name: str,
    argument: Any,
) -> ActionResult:
    """Run the workflow update as `caller`; its validator's refusal becomes a 409 with the reason."""
    handle = client.get_workflow_handle(workflow_id_for(str(order_id)))
    try:
        result: ActionResult = await handle.execute_update(name, argument, result_type=ActionResult)
    except WorkflowUpdateFailedError as exc:
        raise HTTPException(409, str(exc.cause or exc)) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise HTTPException(503, f"Temporal: {exc}") from exc
        order = await db.get(Order, order_id)
        if order is None:
            raise HTTPException(404, f"order {order_id} does not exist") from exc
        raise HTTPException(409, f"{name} is not allowed now: the order is {order.stage}") from exc
    await audit(db, caller, f"order.{name}", str(order_id))
    await db.commit()
    return result


Operator = Annotated[Principal, require(Permission.ORDERS_ACT)]


@router.post(
    "/confirm", responses=REFUSED, summary="Confirm an order awaiting review (optionally edited)"
)
async def confirm(
    order_id: uuid.UUID, body: ConfirmIn, client: TemporalClient, db: Session, caller: Operator
) -> ActionResult:
    decision = ConfirmOrder(caller.actor, _lines(body.lines), body.final_price, body.note)
    return await run_action(client, db, caller, order_id, "confirm", decision)


@router.post("/reject", responses=REFUSED, summary="Reject an order awaiting review")
async def reject(
    order_id: uuid.UUID, body: RejectIn, client: TemporalClient, db: Session, caller: Operator
) -> ActionResult:
    return await run_action(
        client, db, caller, order_id, "reject", RejectOrder(caller.actor, body.reason)
    )


@router.post(
    "/stock-decision",
    responses=REFUSED,
    summary="Record the decision about missing stock (the operator's or the customer's)",
)
async def decide_stock(
    order_id: uuid.UUID,
    body: StockDecisionIn,
    client: TemporalClient,
    db: Session,
    caller: Operator,
) -> ActionResult:
    decision = StockDecision(caller.actor, body.choice, _lines(body.alternative_lines), body.note)
    return await run_action(client, db, caller, order_id, "decide_stock", decision)


@router.post("/delay", responses=REFUSED, summary="Mark the order delayed; the customer is told")
async def delay(
    order_id: uuid.UUID, body: DelayIn, client: TemporalClient, db: Session, caller: Operator
) -> ActionResult:
    delay = MarkDelayed(caller.actor, body.reason, body.new_date)
    return await run_action(client, db, caller, order_id, "mark_delayed", delay)


@router.post("/cancel", responses=REFUSED, summary="Cancel (until handover); compensation runs")
async def cancel(
    order_id: uuid.UUID, body: CancelIn, client: TemporalClient, db: Session, caller: Operator
) -> ActionResult:
    return await run_action(
        client, db, caller, order_id, "cancel", CancelOrder(caller.actor, body.reason, body.note)
    )


class CustomerStockChoiceIn(BaseModel):
    choice: StockChoice = Field(description="ship_available, backorder or cancel")

    @model_validator(mode="after")
    def _no_alternative(self) -> CustomerStockChoiceIn:
        if self.choice == StockChoice.ALTERNATIVE:
            raise ValueError(
                "an alternative is offered by an operator; choose ship_available, backorder or cancel"
            )
        return self


@router.post(
    "/stock-choice",
    responses=REFUSED,
    tags=["customers"],
    summary="The customer's own choice about missing items (public link from the e-mail, rate-limited)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def customer_stock_choice(
    request: Request,
    order_id: uuid.UUID,
    body: CustomerStockChoiceIn,
    client: TemporalClient,
    db: Session,
) -> ActionResult:
    customer = Principal("customer", Role.SERVICE, request.client.host if request.client else None)
    decision = StockDecision("customer", body.choice, None, "chosen by the customer")
    return await run_action(client, db, customer, order_id, "decide_stock", decision)


class NoteIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Customer asked to call before delivery"}]}
    )

    text: str = Field(min_length=1, max_length=2000)


@router.post("/notes", status_code=201, summary="Add a note to the order (operators, support)")
async def add_note(
    order_id: uuid.UUID,
    body: NoteIn,
    db: Session,
    caller: Annotated[Principal, require(Permission.ORDERS_NOTE)],
) -> dict[str, Any]:
    if await db.get(Order, order_id) is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    note = OrderNote(order_id=order_id, author=caller.actor, text=body.text)
    db.add(note)
    await audit(db, caller, "order.note", str(order_id))
    await db.commit()
    return {"id": note.id, "author": note.author, "text": note.text}


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rating": 5, "comment": "Fast and well packed"}]}
    )

    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _some_score(self) -> FeedbackIn:
        if self.rating is None and self.nps is None:
            raise ValueError("give a rating (1-5) or an nps score (0-10)")
        return self


@router.get(
    "/feedback", response_class=HTMLResponse, tags=["customers"], summary="The feedback form"
)
async def feedback_form(order_id: uuid.UUID, db: Session) -> str:
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    stars = "".join(
        f'<label><input type="radio" name="rating" value="{n}"> {n}</label> ' for n in range(1, 6)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Order {order.number}</title></head>
<body style="font-family:Arial,sans-serif;max-width:480px;margin:40px auto">
<h1>How was order {order.number}?</h1>
<form method="post" action="/v1/orders/{order_id}/feedback/form"><p>{stars}</p>
<p><textarea name="comment" rows="4" cols="50" placeholder="Anything to tell us?"></textarea></p>
<button>Send</button></form></body></html>"""


async def _store_feedback(
    order_id: uuid.UUID, body: FeedbackIn, db: Session, client: TemporalClient
) -> dict[str, Any]:
    if await db.get(Order, order_id) is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    inserted = await db.execute(
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
        await db.rollback()
        return {"accepted": False, "duplicate": True}
    with suppress(RPCError):  # the order's workflow has ended: the answer is still kept
        await client.get_workflow_handle(workflow_id_for(str(order_id))).signal(
            "feedback", FeedbackReceived(str(feedback_id), body.rating, body.nps)
        )
    await db.commit()
    return {"accepted": True, "duplicate": False, "feedback_id": str(feedback_id)}


@router.post(
    "/feedback",
    tags=["customers"],
    summary="The customer's answer: rating 1-5 or NPS 0-10, comment (public, rate-limited)",
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback(
    request: Request, order_id: uuid.UUID, body: FeedbackIn, db: Session, client: TemporalClient
) -> dict[str, Any]:
    return await _store_feedback(order_id, body, db, client)


@router.post("/feedback/form", tags=["customers"], include_in_schema=False)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback_from_form(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    client: TemporalClient,
    rating: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    await _store_feedback(order_id, FeedbackIn(rating=rating, comment=comment or None), db, client)
    return HTMLResponse("<!doctype html><html><body><h1>Thank you!</h1></body></html>")


PersonalData = Annotated[Principal, require(Permission.PERSONAL_DATA)]


@router.get("/documents", tags=["documents"], summary="The order's documents")
async def documents(order_id: uuid.UUID, db: Session, caller: PersonalData) -> list[dict[str, str]]:
    rows = (
        await db.exec(
            select(Document).where(Document.order_id == order_id).order_by(col(Document.kind))
        )
    ).all()
    return [{"kind": d.kind, "url": f"/v1/orders/{order_id}/documents/{d.kind}.pdf"} for d in rows]


@router.get(
    "/documents/{kind}.pdf", tags=["documents"], summary="One document as PDF (holds personal data)"
)
async def document(order_id: uuid.UUID, kind: str, db: Session, caller: PersonalData) -> Response:
    await audit(db, caller, "order.read_document", str(order_id), kind=kind)
    await db.commit()
    row = (
        await db.exec(select(Document).where(Document.order_id == order_id, Document.kind == kind))
    ).first()
    if row is None:
        raise HTTPException(404, f"order {order_id} has no {kind} document")
    return Response(
        row.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{kind}.pdf"'},
    )
