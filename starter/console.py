"""The web console for operators and support: server-rendered pages and plain forms, no front-end build.

Sign-in opens a staff session (a cookie); the pages use the same data functions and
workflow updates as the API, with the same roles, masking and audit.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import col, select

from schema.contracts import (
    CancelOrder,
    CancelReason,
    ConfirmOrder,
    MarkDelayed,
    RejectOrder,
    StockChoice,
    StockDecision,
)
from schema.database import open_session
from schema.tables import Incident, Order, OrderNote
from starter.auth import Permission, Principal, audit, open_staff_session, principal_for
from starter.deps import Session, TemporalClient, TemporalGateway
from starter.operators import run_action
from starter.orders import find_orders, search_orders, view_order

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
COOKIE = "orderflow_session"
ACTION_LABELS = {
    "confirm": "Confirm",
    "reject": "Reject",
    "decide_stock": "Decide stock",
    "mark_delayed": "Mark delayed",
    "cancel": "Cancel",
}


class SignInRequired(Exception):
    pass


async def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    async with open_session(request.app.state.engine) as session:
        return await principal_for(session, token, request.client.host if request.client else None)


async def _staff(request: Request, permission: Permission = Permission.ORDERS_SEARCH) -> Principal:
    principal = await _principal(request)
    if principal is None:
        raise SignInRequired
    if not principal.may(permission):
        raise HTTPException(403, f"role {principal.role.value} may not {permission.value}")
    return principal


def _page(request: Request, name: str, principal: Principal | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        f"console/{name}",
        {
            "principal": principal,
            "flash": request.query_params.get("done"),
            "error": request.query_params.get("error"),
            "ACTION_LABELS": ACTION_LABELS,
            **context,
        },
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None)


@router.post("/login")
async def login(
    request: Request,
    db: Session,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    token = await open_staff_session(db, username=username, password=password)
    if token is None:
        return _page(request, "login.html", None, error="Wrong username or password.")
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, db: Session) -> Response:
    """What needs a human now: confirmations and stock decisions, failed payments, SLA breaches, incidents."""
    principal = await _staff(request)

    sections = [
        ("Waiting for a decision", (await search_orders(db, needs_action=True)).items),
        ("Failed payments", (await search_orders(db, payment_failed=True)).items),
        ("SLA breaches", (await search_orders(db, sla_breached=True)).items),
    ]
    incidents = (
        await db.exec(
            select(Incident, Order.number)
            .join(Order, col(Order.id) == col(Incident.order_id))
            .where(Incident.status == "open")
            .order_by(col(Incident.id).desc())
            .limit(50)
        )
    ).all()
    return _page(request, "queue.html", principal, sections=sections, incidents=incidents)


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, db: Session, q: str = "") -> Response:
    principal = await _staff(request)
    page = await find_orders(db, caller=principal, q=q or None)
    return _page(request, "search.html", principal, q=q, orders=page.items)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    request: Request, order_id: uuid.UUID, db: Session, temporal: TemporalGateway
) -> Response:
    principal = await _staff(request, Permission.ORDERS_READ)
    settings = request.app.state.settings
    view = await view_order(
        db, caller=principal, order_id=order_id, temporal=temporal, settings=settings
    )
    if view is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    live = view.workflow or {}  # the workflow's `status`, empty when Temporal could not answer
    live_view = {
        "waiting_for": live.get("waiting_for"),
        "next_deadline": live.get("next_deadline"),
        "payment_status": live.get("payment_status"),
        "sla_breaches": live.get("sla_breaches", []),
        "allowed_actions": live.get("allowed_actions", [])
        if principal.may(Permission.ORDERS_ACT)
        else [],
    }
    can_read_personal = principal.may(Permission.PERSONAL_DATA)
    return _page(
        request,
        "order.html",
        principal,
        order=view,
        live=live_view,
        can_read_personal=can_read_personal,
    )


@router.get("/orders/{order_id}/act/{action}", response_class=HTMLResponse)
async def confirm_action_page(
    request: Request, order_id: uuid.UUID, action: str, db: Session
) -> Response:
    """The confirmation step before any action."""
    principal = await _staff(request, Permission.ORDERS_ACT)
    if action not in ACTION_LABELS:
        raise HTTPException(404, f"no action {action}")
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    reasons = [reason.value for reason in CancelReason]
    return _page(request, "act.html", principal, order=order, action=action, CANCEL_REASONS=reasons)


@router.post("/orders/{order_id}/act/{action}")
async def act(
    request: Request, order_id: uuid.UUID, action: str, db: Session, client: TemporalClient
) -> Response:
    principal = await _staff(request, Permission.ORDERS_ACT)
    form = await request.form()
    field = {key: str(value).strip() for key, value in form.items()}
    try:
        argument = _action_argument(action, principal.actor, field)
        await run_action(client, db, principal, order_id, action, argument)
    except (HTTPException, ValueError) as exc:
        reason = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return RedirectResponse(
            f"/console/orders/{order_id}?error={quote(str(reason))}", status_code=303
        )
    done = quote(f"{ACTION_LABELS[action]}: done.")
    return RedirectResponse(f"/console/orders/{order_id}?done={done}", status_code=303)


def _action_argument(action: str, actor: str, field: dict[str, str]) -> Any:
    if action == "confirm":
        price = field.get("final_price") or None
        try:
            final = Decimal(price) if price else None
        except InvalidOperation:
            raise ValueError(f"final price {price!r} is not a number") from None
        return ConfirmOrder(actor, None, final, field.get("note", ""))
    if action == "reject":
        return RejectOrder(actor, field.get("reason", ""))
    if action == "decide_stock":
        return StockDecision(
            actor, StockChoice(field.get("choice", "")), None, field.get("note", "")
        )
    if action == "mark_delayed":
        return MarkDelayed(
            actor, field.get("reason", ""), date.fromisoformat(field.get("new_date", ""))
        )
    if action == "cancel":
        return CancelOrder(actor, CancelReason(field.get("reason", "other")), field.get("note", ""))
    raise ValueError(f"no action {action}")


@router.post("/orders/{order_id}/notes")
async def add_note(
    request: Request, order_id: uuid.UUID, db: Session, text: Annotated[str, Form(max_length=2000)]
) -> Response:
    principal = await _staff(request, Permission.ORDERS_NOTE)
    db.add(OrderNote(order_id=order_id, author=principal.actor, text=text))
    await audit(db, principal, "order.note", str(order_id), via="console")
    await db.commit()
    return RedirectResponse(f"/console/orders/{order_id}?done=Note+added.", status_code=303)


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/login", status_code=303)
