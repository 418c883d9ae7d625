"""The customer's pages (HTML, server-rendered, no sign-in), each opened by a signed link:

    /order/{token}                the order's status page (the STATUS link)
    /order/{token}/m              the same, as every message links it: counted as a click
                                  through a message's link, then shown under the plain URL
    /order/{token}/cancel         cancel before handover, with a reason from a list (POST)
    /order/{token}/stock-choice   the choice about missing items (STOCK_CHOICE or STATUS link)
    /order/{token}/feedback       rating 1-5, NPS 0-10, comment, per-line ratings (FEEDBACK
                                  or STATUS link), once delivered; answering again replaces it
    /order/{token}/receipt.pdf    the receipt (the contact masked as the page masks it)
    /order/{token}/return         the return request (STATUS link): what to send back, how
                                  many, why, money back or an exchange; then its label at
    /order/{token}/returns/{id}/label.pdf   (masked alike)
    /my-orders/{token}            every order of one e-mail (the short-lived ORDER_LIST link)

In the order's language (uk, ru, en), switchable with `?lang=`; the words are those of the
message catalog (activities/messages/<locale>/_phrases.j2: one place per locale). A link
that is not ours, or too old, shows a page that says so and nothing of the order. What the
customer does goes through the same services and workflow updates as an operator's action;
the workflow's validators decide, and a refusal shows a page saying it is too late.

Forgery: these forms have no session to steal; the unguessable token in the path is what
authorises, and a POST must come from our own pages by the console's rule
(`starter.api.deps.same_origin`): an Origin (or, without one, a Referer) of another site, or
neither, is refused with 403. Pages are sent with `Referrer-Policy: same-origin` (the token never leaks to the
payment page or the carrier's site), `X-Frame-Options: DENY` and `Cache-Control: no-store`.
The JSON twins are in starter/api/routes/customers.py.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.dates import get_month_names
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from sqlmodel import select

from activities.documents import Shop, for_link_holder
from activities.messages import BABEL_LOCALES, LOCALES, format_money
from activities.notifications import FROM_MESSAGE
from schema.api.customers import CustomerCancelIn, CustomerStockChoiceIn, FeedbackIn
from schema.api.returns import CustomerReturnIn
from schema.contracts import ReturnResolution
from schema.links import BadLink, ExpiredLink, LinkPurpose
from schema.pii import mask_email
from schema.tables import FeedbackBonus, Order, OrderLine
from settings import Settings, get_settings
from starter.api.deps import AppSettings, Links, Session, Workflows, client_ip, same_origin
from starter.api.limits import limiter
from starter.api.routes.returns import pdf
from starter.services import actions, returns, status_page
from starter.services.access import Principal
from starter.services.errors import (
    ActionRefused,
    InputRefused,
    OrderNotFound,
    ReturnNotFound,
    ReturnRefused,
)
from starter.services.feedback import (
    FeedbackNotOpen,
    answer_feedback,
    feedback_open,
    stored_answer,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,
    )
)
HEADERS = {
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class LinkRefused(Exception):
    def __init__(self, page: HTMLResponse) -> None:
        self.page = page


@functools.cache
def _months(babel: str) -> dict[int, str]:
    """The months as a date names them ("26 листопада"): babel's, read once per locale."""
    return dict(get_month_names("wide", "format", locale=babel))


class Formats:
    """Money, dates and times as the page's locale writes them ("d MMMM y", "HH:mm"), times
    in the customer's zone. Dates are put together from babel's month names rather than
    formatted by babel one by one: a page shows a dozen, and it is the hottest page."""

    def __init__(self, locale: str, currency: str, zone: str) -> None:
        self._babel, self._currency, self._zone = BABEL_LOCALES[locale], currency, ZoneInfo(zone)

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self._currency, self._babel)

    def day(self, value: date) -> str:
        return f"{value.day} {_months(self._babel)[value.month]} {value.year}"

    def moment(self, value: datetime) -> str:
        local = value.astimezone(self._zone)
        return f"{self.day(local)}, {local:%H:%M}"


def _page(
    request: Request, name: str, locale: str, status: int = 200, **context: Any
) -> HTMLResponse:
    words = status_page.CATALOG.words(locale)
    return templates.TemplateResponse(
        request,
        f"customer/{name}",
        {"t": words, "locale": locale, "LOCALES": LOCALES, "path": request.url.path, **context},
        status_code=status,
        headers=HEADERS,
    )


def _asked_locale(request: Request) -> str:
    """For a page that knows no order: `?lang=`, else the browser's first of ours, else en."""
    asked = request.query_params.get("lang")
    if asked in LOCALES:
        return str(asked)
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in LOCALES:
            return code
    return "en"


def _opened(request: Request, links: Links, token: str, *purposes: LinkPurpose) -> uuid.UUID:
    try:
        return links.order_of(purposes, token[:200])
    except ExpiredLink as exc:
        page = _page(request, "link_refused.html", _asked_locale(request), 410, expired=True)
        raise LinkRefused(page) from exc
    except BadLink as exc:
        page = _page(request, "link_refused.html", _asked_locale(request), 404, expired=False)
        raise LinkRefused(page) from exc


async def from_our_pages(request: Request) -> None:
    """Every customer form's POST: sent from our own pages (the console's rule)."""
    if not same_origin(request):
        page = _page(request, "link_refused.html", _asked_locale(request), 403, expired=False)
        raise LinkRefused(page)


FromOurPages = Depends(from_our_pages)


async def _order_page(
    request: Request,
    settings: Settings,
    links: Links,
    token: str,
    source: str,
    **context: Any,
) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
    view = await status_page.status_view(
        request.app.state.engine,
        order_id=order_id,
        requested_locale=request.query_params.get("lang"),
        settings=settings,
        receipt_url=f"/order/{token}/receipt.pdf",
        source=source,
        token=token,
    )
    locale = view.locale
    return _page(
        request,
        "status.html",
        locale,
        order=view,
        token=token,
        fmt=Formats(locale, view.currency, view.timezone),
        source=source,
        path=f"/order/{token}",  # the language links: a page view, not a message's click
        plain_url=f"/order/{token}" + (f"?lang={locale}" if "lang" in request.query_params else ""),
        **{"refused": None, **context},
    )


@router.get("/order/{token}", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def order_status(
    request: Request, token: str, settings: AppSettings, links: Links
) -> HTMLResponse:
    return await _order_page(request, settings, links, token, "page")


@router.get(f"/order/{{token}}/{FROM_MESSAGE}", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def order_status_from_message(
    request: Request, token: str, settings: AppSettings, links: Links
) -> HTMLResponse:
    """The link every message carries: a click through it, then the plain URL is shown."""
    return await _order_page(request, settings, links, token, "link")


@router.post("/order/{token}/cancel", response_class=HTMLResponse, dependencies=[FromOurPages])
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def cancel_order(
    request: Request,
    token: str,
    db: Session,
    settings: AppSettings,
    links: Links,
    workflows: Workflows,
    reason: Annotated[str, Form(max_length=32)] = "",
    lang: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
    back = f"/order/{token}" + (f"?lang={lang}" if lang in LOCALES else "")
    try:
        body = CustomerCancelIn.model_validate({"reason": reason})
    except ValidationError:
        page = await _order_page(request, settings, links, token, "page", refused="choose_one")
        page.status_code = 422
        return page
    try:
        await actions.cancel_as_customer(
            db, workflows=workflows, order_id=order_id, body=body, ip=client_ip(request)
        )
    except ActionRefused:
        page = await _order_page(request, settings, links, token, "page", refused="too_late")
        page.status_code = 409
        return page
    return RedirectResponse(back, status_code=303, headers=HEADERS)


@router.get("/order/{token}/receipt.pdf", response_class=Response)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def receipt(
    request: Request, token: str, db: Session, links: Links, settings: AppSettings
) -> Response:
    """The receipt, its contact masked as the page masks it (the link may be forwarded)."""
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
    content = await for_link_holder(db, order_id, "receipt", Shop.of(settings))
    if content is None:
        raise OrderNotFound(order_id)
    return Response(
        content,
        media_type="application/pdf",
        headers={**HEADERS, "Content-Disposition": 'inline; filename="receipt.pdf"'},
    )


async def _order_and_locale(
    request: Request, db: Session, order_id: uuid.UUID
) -> tuple[Order, str]:
    """The order, and its page's language: `?lang=`, else the order's."""
    order, contact = await status_page.load_order(db, order_id=order_id)
    return order, status_page.resolve_locale(request.query_params.get("lang"), contact.locale)


async def _lines(db: Session, order_id: uuid.UUID) -> list[OrderLine]:
    rows = await db.exec(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by("position")
    )
    return list(rows.all())


async def _feedback_page(
    request: Request,
    db: Session,
    links: Links,
    order_id: uuid.UUID,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    order, locale = await _order_and_locale(request, db, order_id)
    settings: Settings = request.app.state.settings
    rateable = await feedback_open(db, order=order)
    return _page(
        request,
        "feedback.html",
        locale,
        status,
        number=order.number,
        rateable=rateable,
        lines=await _lines(db, order_id),
        answer=await stored_answer(db, order_id=order_id),
        bonus_promised=settings.feedback_bonus != "none"
        or await db.get(FeedbackBonus, order_id) is not None,
        status_url=_way_back(links, context["token"]),
        **{"problem": None if rateable else "rate_after_delivery", **context},
    )


@router.get("/order/{token}/feedback", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def feedback_form(request: Request, token: str, db: Session, links: Links) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.FEEDBACK, LinkPurpose.STATUS)
    return await _feedback_page(request, db, links, order_id, token=token)


@router.post("/order/{token}/feedback", response_class=HTMLResponse, dependencies=[FromOurPages])
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def feedback_sent(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    settings: AppSettings,
) -> HTMLResponse:
    """Rating, NPS and comment; a rating per line from the fields `line_<n>` (n: the
    line's position, as the form lists them)."""
    order_id = _opened(request, links, token, LinkPurpose.FEEDBACK, LinkPurpose.STATUS)
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str) and value.strip()}
    lines = await _lines(db, order_id)
    try:
        body = FeedbackIn.model_validate(
            {
                "rating": _whole(fields.get("rating")),
                "nps": _whole(fields.get("nps")),
                "comment": fields.get("comment"),
                "line_ratings": [
                    {"sku": line.sku, "rating": _whole(fields[f"line_{line.position}"])}
                    for line in lines
                    if f"line_{line.position}" in fields
                ],
            }
        )
        answered = await answer_feedback(
            db, workflows=workflows, settings=settings, order_id=order_id, body=body
        )
    except (ValidationError, InputRefused):
        return await _feedback_page(
            request, db, links, order_id, 422, token=token, problem="choose_one"
        )
    except FeedbackNotOpen:
        return await _feedback_page(request, db, links, order_id, 409, token=token)
    return _page(
        request,
        "thanks.html",
        (await _order_and_locale(request, db, order_id))[1],
        feedback=True,
        bonus_code=answered.bonus_code,
        status_url=_way_back(links, token),
    )


def _whole(value: str | None) -> int | str | None:
    """A form's number as the model takes it (anything else is left for it to refuse; "²"
    is a digit to `isdigit` but no number)."""
    if value is not None and value.isascii() and value.isdigit() and len(value) < 4:
        return int(value)
    return value


def _way_back(links: Links, token: str) -> str | None:
    """The status page, for a page opened by the status link only: a feedback or a stock
    choice link opens its own page and nothing more (it never yields a status link)."""
    try:
        links.order_of((LinkPurpose.STATUS,), token[:200])
    except (BadLink, ExpiredLink):
        return None
    return f"/order/{token}"


@router.get("/order/{token}/stock-choice", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def stock_choice_form(
    request: Request, token: str, db: Session, links: Links
) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.STOCK_CHOICE, LinkPurpose.STATUS)
    return await _stock_choice_page(request, db, links, order_id, token)


async def _stock_choice_page(
    request: Request,
    db: Session,
    links: Links,
    order_id: uuid.UUID,
    token: str,
    status: int = 200,
    refused: str | None = None,
) -> HTMLResponse:
    order, locale = await _order_and_locale(request, db, order_id)
    return _page(
        request,
        "stock_choice.html",
        locale,
        status,
        token=token,
        number=order.number,
        refused=refused,
        status_url=_way_back(links, token),
    )


@router.post(
    "/order/{token}/stock-choice", response_class=HTMLResponse, dependencies=[FromOurPages]
)
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def stock_choice_made(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    choice: Annotated[str, Form(max_length=32)],
) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.STOCK_CHOICE, LinkPurpose.STATUS)
    try:
        body = CustomerStockChoiceIn.model_validate({"choice": choice})
        await actions.choose_stock_as_customer(
            db, workflows=workflows, order_id=order_id, body=body, ip=client_ip(request)
        )
    except (ValueError, ValidationError):
        return await _stock_choice_page(request, db, links, order_id, token, 422, "choose_one")
    except ActionRefused:
        return await _stock_choice_page(request, db, links, order_id, token, 409, "too_late")
    return _page(
        request,
        "thanks.html",
        (await _order_and_locale(request, db, order_id))[1],
        feedback=False,
        bonus_code=None,
        status_url=_way_back(links, token),
    )


@router.get("/my-orders/{token}", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def my_orders(
    request: Request, token: str, db: Session, settings: AppSettings, links: Links
) -> HTMLResponse:
    """Every order placed with one e-mail, newest first, each with its status link."""
    try:
        customer_id = links.customer_of(token[:200])
    except ExpiredLink as exc:
        page = _page(request, "link_refused.html", _asked_locale(request), 410, expired=True)
        raise LinkRefused(page) from exc
    except BadLink as exc:
        page = _page(request, "link_refused.html", _asked_locale(request), 404, expired=False)
        raise LinkRefused(page) from exc
    customer, orders, locale_of_latest = await status_page.orders_of(db, customer_id=customer_id)
    locale = status_page.resolve_locale(request.query_params.get("lang"), locale_of_latest)
    zone = settings.default_timezone
    return _page(
        request,
        "my_orders.html",
        locale,
        email=mask_email(customer.email),
        orders=[(order, f"/order/{links.token(LinkPurpose.STATUS, order.id)}") for order in orders],
        fmt=lambda currency: Formats(locale, currency, zone),
    )


@router.get("/order/{token}/return", response_class=HTMLResponse)
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def return_form(request: Request, token: str, db: Session, links: Links) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
    return await _return_page(request, db, token, order_id)


async def _return_page(
    request: Request,
    db: Session,
    token: str,
    order_id: uuid.UUID,
    status: int = 200,
    refused: ReturnRefused | None = None,
) -> HTMLResponse:
    """The form: what may be sent back (a fresh request key, so that sending it twice opens
    one return), and the returns asked for so far; after a refusal, why, in the page's
    language (a 422 without `refused`: the form was not filled in)."""
    view = await returns.returnable(db, order_id=order_id)
    order, locale = await _order_and_locale(request, db, order_id)
    fmt, words = _return_formats(request, order, locale), status_page.CATALOG.words(locale)
    said = words.page["return_incomplete"] if status == 422 else None
    if refused is not None:
        facts = {k: fmt.day(v) if isinstance(v, date) else v for k, v in refused.facts.items()}
        said = words.return_refused[refused.code].format(**facts)
    return _page(
        request,
        "return.html",
        locale,
        status,
        token=token,
        view=view,
        fmt=fmt,
        request_key=uuid.uuid4().hex,
        refused=said,
        resolutions=list(ReturnResolution),
    )


def _return_formats(request: Request, order: Order, locale: str) -> Formats:
    settings: Settings = request.app.state.settings
    return Formats(locale, order.currency, settings.default_timezone)  # money and days only


@router.post("/order/{token}/return", response_class=HTMLResponse, dependencies=[FromOurPages])
@limiter.limit(lambda: get_settings().feedback_rate_limit)
async def return_asked(
    request: Request,
    token: str,
    db: Session,
    links: Links,
    workflows: Workflows,
    settings: AppSettings,
) -> HTMLResponse:
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
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
        return await _return_page(request, db, token, order_id, 422)
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
        return await _return_page(request, db, token, order_id, 409, refused)
    order, locale = await _order_and_locale(request, db, order_id)
    return _page(
        request,
        "return_sent.html",
        locale,
        token=token,
        ret=opened,
        fmt=_return_formats(request, order, locale),
    )


@router.get("/order/{token}/returns/{return_id}/label.pdf")
@limiter.limit(lambda: get_settings().status_page_rate_limit)
async def return_label(
    request: Request,
    token: str,
    return_id: uuid.UUID,
    db: Session,
    links: Links,
    settings: AppSettings,
) -> Response:
    """The return label, its sender masked as the page masks the contact: the carrier knows
    the parcel by its barcode (booked from the full address); staff print the original."""
    order_id = _opened(request, links, token, LinkPurpose.STATUS)
    try:
        number, content = await returns.return_label_for_link_holder(
            db, order_id=order_id, return_id=return_id, shop=Shop.of(settings)
        )
    except ReturnNotFound as missing:
        page = _page(request, "link_refused.html", _asked_locale(request), 404, expired=False)
        raise LinkRefused(page) from missing
    return pdf(number, content)


@router.get("/v1/orders/{order_id}/feedback", response_class=HTMLResponse)
@router.get("/v1/orders/{order_id}/stock-choice", response_class=HTMLResponse)
async def unsigned_link(request: Request, order_id: str) -> HTMLResponse:
    """Links from messages sent before links were signed: they open nothing any more."""
    return _page(request, "link_refused.html", _asked_locale(request), 410, expired=True)


async def _link_refused(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, LinkRefused)
    return exc.page


def install(app: Any) -> None:
    app.add_exception_handler(LinkRefused, _link_refused)
