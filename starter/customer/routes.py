"""The customer's pages (HTML, server-rendered): the feedback form and its thank-you page.
The JSON twins of the same answers are in starter/api/routes/customers.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from schema.api import FeedbackIn
from settings import get_settings
from starter.api.deps import Session, Workflows
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services.feedback import answer_feedback, order_number

router = APIRouter(prefix="/v1/orders/{order_id}", tags=["customers"])
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,
    )
)


# Documented: it shares its path with the JSON answer (POST), and the OpenAPI lists both.
@router.get(
    "/feedback",
    response_class=HTMLResponse,
    responses=responses(404, 422),
    summary="The feedback form (HTML), from the link in the e-mail",
)
async def feedback_form(request: Request, order_id: uuid.UUID, db: Session) -> HTMLResponse:
    number = await order_number(db, order_id=order_id)
    return templates.TemplateResponse(
        request, "customer/feedback.html", {"order_id": order_id, "number": number}
    )


@router.post("/feedback/form", response_class=HTMLResponse, include_in_schema=False)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback_from_form(
    request: Request,
    order_id: uuid.UUID,
    db: Session,
    workflows: Workflows,
    rating: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    body = FeedbackIn(rating=rating, comment=comment or None)
    await answer_feedback(db, workflows=workflows, order_id=order_id, body=body)
    return templates.TemplateResponse(request, "customer/thanks.html", {})
