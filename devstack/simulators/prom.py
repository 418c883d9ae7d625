"""Prom.ua's Public API as a connector sees it (devstack/fixtures/prom: the shapes): each
Bearer token is one company with its orders; GET /orders/list lists those modified since
`last_modified_from` (newest first, `limit` a page, `last_id` the next), POST
/orders/set_status changes their status and answers `processed_ids` (200 also when it
changed nothing), POST /delivery/save_declaration_id keeps a waybill's number. A status set
or a waybill saved modifies the order, as on Prom (it is listed again).

For tests and the curious: POST /prom/sim/orders adds one fixture's order to a company (a
new id, `changes` on top), GET /prom/sim/calls lists what a company was told, POST
/prom/sim/refuse has a token refused (401), POST /prom/sim/unprocessed has set_status leave
an order out of `processed_ids`, GET /prom/sim/lists counts a company's list requests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from devstack.fixtures import answer, fixture
from devstack.simulators.state import keep, sim_of

prom = APIRouter(prefix="/prom", tags=["prom"])
STATUSES = frozenset({"pending", "received", "delivered", "canceled", "draft", "paid"})


@dataclass
class Company:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id (as a string)
    calls: list[dict[str, Any]] = field(default_factory=list)  # set_status, save_declaration_id
    unprocessed: set[int] = field(default_factory=set)


@dataclass
class PromState:
    companies: dict[str, Company] = field(default_factory=dict)  # by token
    refused: set[str] = field(default_factory=set)
    lists: dict[str, int] = field(default_factory=dict)  # orders/list requests by token
    next_id: int = 315_900_000


PROM = keep("prom", PromState)


def _state(request: Request) -> PromState:
    return PROM.of(sim_of(request))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _company(request: Request, authorization: str | None) -> Company | JSONResponse:
    """The token's company, or Prom's 401."""
    state = _state(request)
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token or token in state.refused:
        refusal = fixture("prom", "error_unauthorized")
        return JSONResponse(refusal["response"], status_code=refusal["status"])
    return state.companies.setdefault(token, Company())


@prom.get("/api/v1/orders/list")
async def orders_list(
    request: Request,
    last_modified_from: str | None = None,
    limit: int = 100,
    last_id: int | None = None,
    authorization: str | None = Header(default=None),
) -> Any:
    token = (authorization or "").removeprefix("Bearer ").strip()
    state = _state(request)
    state.lists[token] = state.lists.get(token, 0) + 1
    company = _company(request, authorization)
    if isinstance(company, JSONResponse):
        return company
    since = (
        datetime.fromisoformat(last_modified_from).replace(tzinfo=UTC)
        if last_modified_from
        else None
    )
    listed = [
        order
        for order in company.orders.values()
        if (since is None or datetime.fromisoformat(order["date_modified"]) >= since)
        and (last_id is None or order["id"] < last_id)
    ]
    listed.sort(key=lambda order: order["id"], reverse=True)
    return {"orders": listed[: max(1, min(limit, 100))]}


class StatusChange(BaseModel):
    status: str
    ids: list[int]
    cancellation_reason: str | None = None
    cancellation_text: str | None = None


@prom.post("/api/v1/orders/set_status")
async def set_status(
    request: Request, change: StatusChange, authorization: str | None = Header(default=None)
) -> Any:
    company = _company(request, authorization)
    if isinstance(company, JSONResponse):
        return company
    company.calls.append({"path": "orders/set_status", **change.model_dump(exclude_none=True)})
    reply: dict[str, Any] = answer("prom", "set_status")
    reply["processed_ids"], reply["errors"] = [], {}
    for order_id in change.ids:
        order = company.orders.get(str(order_id))
        if order is None or change.status not in STATUSES or order_id in company.unprocessed:
            reply["errors"][str(order_id)] = "Order status was not changed"
            continue
        order.update(status=change.status, date_modified=_now())
        reply["processed_ids"].append(order_id)
    return reply


class Declaration(BaseModel):
    order_id: int
    declaration_id: str
    delivery_type: str


@prom.post("/api/v1/delivery/save_declaration_id")
async def save_declaration_id(
    request: Request, declaration: Declaration, authorization: str | None = Header(default=None)
) -> Any:
    company = _company(request, authorization)
    if isinstance(company, JSONResponse):
        return company
    company.calls.append({"path": "delivery/save_declaration_id", **declaration.model_dump()})
    order = company.orders.get(str(declaration.order_id))
    if order is None:
        return {"error": "Order not found"}
    provider = order.get("delivery_provider_data") or {}
    order.update(
        delivery_provider_data={**provider, "declaration_number": declaration.declaration_id},
        date_modified=_now(),
    )
    return answer("prom", "save_declaration_id")


class NewOrder(BaseModel):
    token: str = Field(description="The company's API token (the connector's api_token)")
    fixture: str = Field(default="order_novaposhta_cod", description="The order: a fixture's name")
    changes: dict[str, Any] = Field(default={}, description="Top-level fields replaced")


@prom.post("/sim/orders")
async def add_order(request: Request, new: NewOrder) -> dict[str, Any]:
    """A buyer's order placed with the company now (or, with an `id` in `changes`, that
    order changed now): listed from now on."""
    state = _state(request)
    company = state.companies.setdefault(new.token, Company())
    order = fixture("prom", new.fixture)["body"]
    order["id"] = next(
        i for i in itertools.count(state.next_id + 1) if str(i) not in company.orders
    )
    state.next_id = order["id"]
    order.update(new.changes, date_created=_now(), date_modified=_now())
    company.orders[str(order["id"])] = order
    return order


class Token(BaseModel):
    token: str


@prom.get("/sim/calls")
async def calls(request: Request, token: str) -> list[dict[str, Any]]:
    """What the company was told (set_status, save_declaration_id), oldest first."""
    company = _state(request).companies.get(token)
    return company.calls if company else []


@prom.post("/sim/refuse")
async def refuse(request: Request, token: Token) -> dict[str, str]:
    """Every request with this token is answered 401 from now on."""
    _state(request).refused.add(token.token)
    return {"refused": token.token}


@prom.get("/sim/lists")
async def lists(request: Request, token: str) -> dict[str, int]:
    """How many orders/list requests came with this token (refused ones too)."""
    return {"lists": _state(request).lists.get(token, 0)}


class Unprocessed(BaseModel):
    token: str
    id: int
    unprocessed: bool = Field(default=True, description="False: processed again")


@prom.post("/sim/unprocessed")
async def unprocessed(request: Request, which: Unprocessed) -> dict[str, Any]:
    """set_status leaves this order out of `processed_ids` (with an error) from now on, or
    (`unprocessed: false`) no longer."""
    company = _state(request).companies.setdefault(which.token, Company())
    if which.unprocessed:
        company.unprocessed.add(which.id)
    else:
        company.unprocessed.discard(which.id)
    return {"id": which.id, "unprocessed": which.unprocessed}
