"""The customer's pages (HTML, server-rendered), each opened by the signed link from a
message: the feedback form, the choice about missing items, and the return request (opened
by the status link: what to send back, how many, why, money back or an exchange) with its
label. A link that is not ours, or too old, shows a page that says so and nothing of the
order. The JSON twins of the same answers are in starter/api/routes/customers.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from schema.api import CustomerReturnIn, CustomerStockChoiceIn, FeedbackIn
from schema.contracts import ReturnReason
from schema.links import BadLink, ExpiredLink, LinkPurpose
from settings import get_settings
from starter.api.deps import AppSettings, Links, Session, Workflows, client_ip
from starter.api.limits import limiter
from starter.api.routes.returns import pdf
from starter.services import actions, returns
from starter.services.access import Principal
from starter.services.errors import ActionRefused, ReturnNotFound, ReturnRefused
from starter.services.feedback import answer_feedback, order_number

# What the customer reads for each reason code (the page is in English, as the others).
RETURN_REASONS = {
    ReturnReason.CHANGED_MIND: "I changed my mind",
    ReturnReason.WRONG_SIZE: "Wrong size",
    ReturnReason.DEFECTIVE: "It is defective",
    ReturnReason.NOT_AS_DESCRIBED: "Not as described",
    ReturnReason.WRONG_ITEM: "I received the wrong item",
    ReturnReason.OTHER: "Another reason",
}

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


@router.get("/order/{token}/return", response_class=HTMLResponse)
async def return_form(request: Request, token: str, db: Session, links: Links) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.STATUS, token)
    return await _return_page(request, db, token, order_id)


async def _return_page(
    request: Request,
    db: Session,
    token: str,
    order_id: uuid.UUID,
    status: int = 200,
    refused: str | None = None,
) -> HTMLResponse:
    """The form: what may be sent back (a fresh request key, so that sending it twice opens
    one return), and the returns asked for so far."""
    view = await returns.returnable(db, order_id=order_id)
    return _page(
        request,
        "return.html",
        status,
        token=token,
        view=view,
        request_key=uuid.uuid4().hex,
        refused=refused,
        REASONS=RETURN_REASONS,
    )


@router.post("/order/{token}/return", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def return_asked(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    settings: AppSettings,
) -> HTMLResponse:
    order_id = _opened(request, links, LinkPurpose.STATUS, token)
    form = await request.form()
    try:
        wanted = [
            {"sku": str(sku), "quantity": int(str(quantity))}
            for sku, quantity in zip(form.getlist("sku"), form.getlist("quantity"), strict=True)
            if str(quantity).strip() not in ("", "0")
        ]
        body = CustomerReturnIn.model_validate(
            {
                "lines": wanted,
                "reason": form.get("reason"),
                "resolution": form.get("resolution") or "refund",
                "comment": str(form.get("comment") or "").strip() or None,
            }
        )
        key = str(form.get("request_key") or "")
        if not 8 <= len(key) <= 64 or not key.isalnum():
            raise ValueError("the form is incomplete: reload the page")
    except (ValidationError, ValueError):
        refusal = "Choose how many of which item to send back, and why."
        return await _return_page(request, db, token, order_id, 422, refusal)
    try:
        opened, _ = await returns.open_return(
            db,
            workflows=workflows,
            settings=settings,
            caller=Principal.customer(client_ip(request)),
            order_id=order_id,
            key=key,
            body=body,
        )
    except ReturnRefused as refused:
        reason = refused.reason[0].upper() + refused.reason[1:] + "."
        return await _return_page(request, db, token, order_id, 409, reason)
    view = await returns.returnable(db, order_id=order_id)
    return _page(request, "return_sent.html", token=token, ret=opened, number=view.number)


@router.get("/order/{token}/returns/{return_id}/label.pdf")
async def return_label(
    request: Request, token: str, return_id: uuid.UUID, db: Session, links: Links
) -> Response:
    order_id = _opened(request, links, LinkPurpose.STATUS, token)
    try:
        number, content = await returns.return_label(db, order_id=order_id, return_id=return_id)
    except ReturnNotFound as missing:
        raise LinkRefused(_page(request, "link_refused.html", 404, expired=False)) from missing
    return pdf(number, content)


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
