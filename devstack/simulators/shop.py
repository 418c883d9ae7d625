"""The shop's own backend as a receiver of orderflow's order events."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from devstack.simulators.state import (
    log,
    sim_of,
)
from schema.shop_events import HEADER as SHOP_EVENTS_HEADER
from schema.shop_events import verify as verify_shop_event
from schema.webhooks import BadSignature

# --- the shop's backend: a receiver of order events ----------------------------------------

shop = APIRouter(prefix="/shop", tags=["shop"])


@shop.post("/events")
async def shop_event(request: Request) -> dict[str, Any]:
    """Where a subscription's deliveries arrive (subscribe with this URL)."""
    receiver = sim_of(request).books.shop
    if receiver.refuse_next > 0 or time.time() < receiver.refuse_until:
        receiver.refuse_next = max(0, receiver.refuse_next - 1)
        receiver.refused += 1
        raise HTTPException(503, "the shop's backend is down")
    raw = await request.body()
    signature = request.headers.get(SHOP_EVENTS_HEADER)
    valid: bool | None = None
    if receiver.secret is not None:
        try:
            verify_shop_event(receiver.secret, raw, signature, tolerance_seconds=300)
            valid = True
        except BadSignature:
            valid = False
    event = json.loads(raw)
    receiver.received.append(
        {"event": event, "raw": raw.decode(), "signature": signature, "signature_valid": valid}
    )
    log.info("shop event", type=event.get("type"), valid=valid)
    return {"received": event.get("id")}


@shop.get("/sim/events")
async def shop_events_received(request: Request) -> list[dict[str, Any]]:
    """Every delivery accepted, in arrival order, with whether its signature checked out
    (null until `/sim/secret` is set)."""
    return sim_of(request).books.shop.received


@shop.post("/sim/secret")
async def shop_secret(body: dict[str, str], request: Request) -> dict[str, bool]:
    """The subscription's secret (from its creation's answer), to check signatures with."""
    sim_of(request).books.shop.secret = body["secret"]
    return {"set": True}


@shop.post("/sim/refuse")
async def shop_refuse(request: Request, count: int = 0, seconds: float = 0.0) -> dict[str, Any]:
    """Be down: answer 503 to the next `count` deliveries and to all for `seconds`."""
    receiver = sim_of(request).books.shop
    receiver.refuse_next = count
    receiver.refuse_until = time.time() + seconds
    return {"refusing": count, "for_seconds": seconds}


@shop.get("/sim/refused")
async def shop_refused(request: Request) -> dict[str, int]:
    return {"refused": sim_of(request).books.shop.refused}
