"""A carrier speaking AfterShip's tracking words: shipments and return shipments, tracking
events with tag and subtag."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import HTMLResponse

from devstack.simulators.state import (
    PAGES,
    Shipment,
    Simulators,
    once,
    sim_of,
    step,
)
from devstack.simulators.warehouse import all_accepted, inspected

# --- carrier ------------------------------------------------------------------------------

carrier = APIRouter(prefix="/carrier", tags=["carrier"])
AUTOPILOT_ROUTE = ("InfoReceived", "InTransit", "OutForDelivery", "Delivered")
RETURN_ROUTE = ("InfoReceived", "InTransit", "Delivered")  # to the warehouse
UNSERVED_POSTAL_CODE = "00000"  # the carrier refuses to book a parcel there


async def _tracking_event(
    sim: Simulators, item: Shipment, status: str, detail: str = "", subtag: str = ""
) -> int:
    event = {
        "event_id": f"trk-{uuid.uuid4().hex[:12]}",
        "type": "tracking",
        "tracking_number": item.tracking_number,
        "order_ref": item.order_ref,
        "status": status,
        "subtag": subtag,
        "at": datetime.now(UTC).isoformat(),
        "detail": detail,
    }
    if item.return_ref is not None:
        event["return_ref"] = item.return_ref
    answered = await sim.webhook(item.callback_url, sim.settings.carrier_webhook_secret, event)
    item.status = status  # once told: a step retried after a restart tells it again
    item.events.append(f"{status}/{subtag}" if subtag else status)
    return answered


@step
async def _autopilot_step(sim: Simulators, tracking_number: str, status: str) -> None:
    """One step of the autopilot's route, unless the parcel is driven by hand now; a return
    parcel that arrives is inspected a step later (everything accepted)."""
    item = sim.books.shipments[tracking_number]
    if item.by_hand or item.status == "cancelled":
        return
    await _tracking_event(sim, item, status)
    if item.return_ref is not None and status == "Delivered":
        sim.later(sim.step, inspected, tracking_number=tracking_number, lines=all_accepted(item))


@carrier.post("/v1/shipments", status_code=201)
async def create_shipment(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)
    if body.get("destination", {}).get("postal_code") == UNSERVED_POSTAL_CODE:
        raise HTTPException(422, "the carrier does not deliver to this postal code")

    def make() -> dict[str, Any]:
        tracking = f"SIM{uuid.uuid4().int % 10**12:012d}"
        item = Shipment(
            tracking,
            body["order_ref"],
            body["service"],
            body["callback_url"],
            return_ref=body.get("return_ref"),
            lines=body.get("lines", []),
        )
        sim.books.shipments[tracking] = item
        if sim.autopilot:
            route = AUTOPILOT_ROUTE if item.return_ref is None else RETURN_ROUTE
            for n, status in enumerate(route, start=1):
                sim.later(n * sim.step, _autopilot_step, tracking_number=tracking, status=status)
        return {
            "tracking_number": tracking,
            "tracking_url": f"{request.base_url}carrier/track/{tracking}",
        }

    result: dict[str, Any] = once(sim, f"shipment:{idempotency_key}", make)
    return result


@carrier.get("/v1/shipments/{tracking_number}")
async def get_shipment(tracking_number: str, request: Request) -> dict[str, Any]:
    item = sim_of(request).books.shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    return asdict(item)


@carrier.delete("/v1/shipments/{tracking_number}")
async def cancel_shipment(tracking_number: str, request: Request) -> dict[str, Any]:
    item = sim_of(request).books.shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    if item.status not in ("booked", "cancelled"):
        raise HTTPException(409, f"shipment is already {item.status}")
    item.status = "cancelled"
    return asdict(item)


@carrier.post("/sim/shipments/{tracking_number}/events")
async def tracking_event(
    tracking_number: str, body: dict[str, Any], request: Request
) -> dict[str, Any]:
    """Drive a parcel by hand: `{"status": "InTransit" | "OutForDelivery" | "AttemptFail" |
    "Delivered" | "Exception" | "Expired" | ..., "subtag": "", "detail": ""}` with AfterShip's
    tag and subtag (`Exception` + `Exception_003`: refused; `Exception_011`: returned to
    sender; `Exception_013`: lost; …). The autopilot then leaves this parcel alone."""
    sim = sim_of(request)
    item = sim.books.shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    item.by_hand = True
    status = await _tracking_event(
        sim, item, body["status"], body.get("detail", ""), body.get("subtag", "")
    )
    return {"tracking_number": tracking_number, "webhook_status": status}


@carrier.get("/track/{tracking_number}", response_class=HTMLResponse)
async def track(tracking_number: str, request: Request) -> HTMLResponse:
    item = sim_of(request).books.shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    return PAGES.TemplateResponse(request, "track.html", {"shipment": item})
