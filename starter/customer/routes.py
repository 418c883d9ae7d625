"""The customer's pages (HTML, server-rendered), each opened by the signed link from a
message: the feedback form, the choice about missing items. A link that is not ours, or too
old, shows a page that says so and nothing of the order. The JSON twins of the same answers
are in starter/api/routes/customers.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from schema.api import CustomerStockChoiceIn, FeedbackIn
from schema.links import BadLink, ExpiredLink, LinkPurpose
from settings import get_settings
from starter.api.deps import Links, Session, Workflows, client_ip
from starter.api.limits import limiter
from starter.services import actions
from starter.services.errors import ActionRefused
from starter.services.feedback import answer_feedback, order_number

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,
    )
)


class LinkRefused(Exception):
    def __init__(self, page: HTMLResponse) -> None:
        self.page = page


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, f"customer/{name}", context, status_code=status)


def _opened(request: Request, links: Links, purpose: LinkPurpose, token: str) -> uuid.UUID:
    try:
        return links.order_of(purpose, token[:200])
    except ExpiredLink as exc:
        raise LinkRefused(_page(request, "link_refused.html", 410, expired=True)) from exc
    except BadLink as exc:
        raise LinkRefused(_page(request, "link_refused.html", 404, expired=False)) from exc


@router.get("/order/{token}/feedback", response_class=HTMLResponse)
async def feedback_form(request: Request, token: str, db: Session, links: Links) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.FEEDBACK, token)
    number = await order_number(db, order_id=order_id)
    return _page(request, "feedback.html", token=token, number=number)


@router.post("/order/{token}/feedback", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback_sent(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    rating: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.FEEDBACK, token)
    body = FeedbackIn(rating=rating, comment=comment or None)
    await answer_feedback(db, workflows=workflows, order_id=order_id, body=body)
    return _page(request, "thanks.html")


@router.get("/order/{token}/stock-choice", response_class=HTMLResponse)
async def stock_choice_form(
    request: Request, token: str, db: Session, links: Links
) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.STOCK_CHOICE, token)
    number = await order_number(db, order_id=order_id)
    return _page(request, "stock_choice.html", token=token, number=number, refused=None)


@router.post("/order/{token}/stock-choice", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def stock_choice_made(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    choice: Annotated[str, Form(max_length=32)],
) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.STOCK_CHOICE, token)
    number = await order_number(db, order_id=order_id)
    try:
        body = CustomerStockChoiceIn.model_validate({"choice": choice})
        await actions.choose_stock_as_customer(
            db, workflows=workflows, order_id=order_id, body=body, ip=client_ip(request)
        )
    except (ValueError, ValidationError):
        return _page(
            request, "stock_choice.html", 422, token=token, number=number, refused="unknown"
        )
    except ActionRefused:
        return _page(
            request, "stock_choice.html", 409, token=token, number=number, refused="too_late"
        )
    return _page(request, "thanks.html")


@router.get("/v1/orders/{order_id}/feedback", response_class=HTMLResponse)
@router.get("/v1/orders/{order_id}/stock-choice", response_class=HTMLResponse)
async def unsigned_link(request: Request, order_id: str) -> HTMLResponse:
    """Links from messages sent before links were signed: they open nothing any more."""
    return _page(request, "link_refused.html", 410, expired=True)


async def _link_refused(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, LinkRefused)
    return exc.page


def install(app: Any) -> None:
    app.add_exception_handler(LinkRefused, _link_refused)
