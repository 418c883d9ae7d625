"""Ukrposhta's eCom API 0.0.1 and its status tracking as the shop's account sees them, at
`/ukrposhta/ecom/0.0.1/` (addresses, clients, shipments with `postPay`, stickers) and
`/ukrposhta/status-tracking/0.0.1/statuses/last?barcode=`, built from the fixtures of
devstack/fixtures/ukrposhta/ (the adapter's contract tests read the same). The eCom bearer
and the counterparty token are checked as the real API checks them.

No webhooks: orderflow asks. The autopilot moves each shipment through real event codes a
step at a time (10100 accepted → 20700 → 21500 → 21700 at the post office for W2W → 41000
delivered); `/ukrposhta/sim/shipments/{barcode}/events` sets any event by hand. The state is
plain data, in one place (`UkrposhtaState`).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from reportlab.lib.pagesizes import A6
from reportlab.pdfgen.canvas import Canvas

from devstack.fixtures import answer
from devstack.simulators.state import Simulators, keep, sim_of, step

ukrposhta = APIRouter(prefix="/ukrposhta", tags=["ukrposhta"])
KYIV = ZoneInfo("Europe/Kyiv")
EVENT_NAMES = {
    "10100": "Прийнято",
    "20700": "Надійшло до сортувального центру",
    "20800": "Відправлено з сортувального центру",
    "21500": "Прямує до відділення",
    "21700": "Надійшло у відділення для вручення",
    "31100": "Не вручено: адресата немає",
    "41000": "Відправлення вручено",
}


@dataclass
class UkrShipment:
    uuid: str
    barcode: str
    delivery_type: str
    recipient: str
    post_pay: Any = None
    external_id: str = ""
    events: list[str] = field(default_factory=list)
    by_hand: bool = False
    deleted: bool = False


@dataclass
class UkrposhtaState:
    addresses: dict[int, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    shipments: dict[str, UkrShipment] = field(default_factory=dict)  # by barcode
    tracking_calls: int = 0
    issued: int = 0  # addresses and barcodes numbered so far


UKRPOSHTA = keep("ukrposhta", UkrposhtaState)
state_of = UKRPOSHTA.of


def _refused(status: int, message: str, code: str) -> JSONResponse:
    body = answer("ukrposhta", "error")["body"]
    body.update(message=message, code=code)
    return JSONResponse(body, status_code=status)


def _check(sim: Simulators, authorization: str | None, token: str | None = "") -> None:
    if authorization != f"Bearer {sim.settings.ukrposhta_bearer}":
        raise HTTPException(401, "Unauthorized: the bearer is not valid")
    if token is not None and token != sim.settings.ukrposhta_counterparty_token:
        raise HTTPException(401, "Unauthorized: the counterparty token is not valid")


@ukrposhta.post("/ecom/0.0.1/addresses")
async def addresses(
    body: dict[str, Any], request: Request, authorization: str | None = Header(None)
) -> Any:
    sim = sim_of(request)
    _check(sim, authorization, None)
    if not str(body.get("postcode", "")).isdigit():
        return _refused(400, "postcode is not valid", "ADDRESS_POSTCODE_NOT_VALID")
    state = state_of(sim)
    state.issued += 1
    made = {**answer("ukrposhta", "address"), **body, "id": 110026 + state.issued}
    state.addresses[made["id"]] = made
    return made


@ukrposhta.post("/ecom/0.0.1/clients")
async def clients(
    body: dict[str, Any],
    request: Request,
    token: str = "",
    authorization: str | None = Header(None),
) -> Any:
    sim = sim_of(request)
    _check(sim, authorization, token)
    state = state_of(sim)
    if body.get("addressId") not in state.addresses:
        return _refused(400, "addressId is not valid", "CLIENT_ADDRESS_NOT_FOUND")
    made = {**answer("ukrposhta", "client"), **body, "uuid": str(uuid.uuid4())}
    made["name"] = f"{body.get('lastName', '')} {body.get('firstName', '')}".strip()
    state.clients[made["uuid"]] = made
    return made


@ukrposhta.post("/ecom/0.0.1/shipments")
async def shipments(
    body: dict[str, Any],
    request: Request,
    token: str = "",
    authorization: str | None = Header(None),
) -> Any:
    sim = sim_of(request)
    _check(sim, authorization, token)
    state = state_of(sim)
    recipient = (body.get("recipient") or {}).get("uuid")
    if (body.get("sender") or {}).get("uuid") != sim.settings.ukrposhta_sender_uuid:
        return _refused(400, "Sender uuid is not valid", "SHIPMENT_SENDER_NOT_FOUND")
    if recipient not in state.clients:
        return _refused(400, "Recipient uuid is not valid", "SHIPMENT_RECIPIENT_NOT_FOUND")
    if body.get("deliveryType") not in ("W2W", "W2D"):
        return _refused(400, "deliveryType is not served", "SHIPMENT_DELIVERY_TYPE_NOT_VALID")
    if not body.get("parcels"):
        return _refused(400, "parcels are empty", "SHIPMENT_PARCELS_EMPTY")
    state.issued += 1
    barcode = f"05001{state.issued + 10000000:08d}"
    shipment = UkrShipment(
        uuid=str(uuid.uuid4()),
        barcode=barcode,
        delivery_type=body["deliveryType"],
        recipient=recipient,
        post_pay=body.get("postPay"),
        external_id=str(body.get("externalId", "")),
    )
    state.shipments[barcode] = shipment
    if sim.autopilot:
        _drive(sim, shipment)
    made = answer("ukrposhta", "shipment")
    made.update(
        uuid=shipment.uuid,
        barcode=barcode,
        deliveryType=shipment.delivery_type,
        recipient={"uuid": recipient},
        postPay=shipment.post_pay,
        externalId=shipment.external_id,
    )
    made["lifecycle"]["statusDate"] = datetime.now(KYIV).isoformat(timespec="seconds")
    return made


def _by_uuid(state: UkrposhtaState, shipment_uuid: str) -> UkrShipment:
    for shipment in state.shipments.values():
        if shipment.uuid == shipment_uuid and not shipment.deleted:
            return shipment
    raise HTTPException(404, "Shipment not found")


@ukrposhta.delete("/ecom/0.0.1/shipments/{shipment_uuid}")
async def delete(
    shipment_uuid: str, request: Request, token: str = "", authorization: str | None = Header(None)
) -> Any:
    sim = sim_of(request)
    _check(sim, authorization, token)
    shipment = _by_uuid(state_of(sim), shipment_uuid)
    if shipment.events:
        return _refused(400, "Shipment is accepted: it can not be deleted", "SHIPMENT_ACCEPTED")
    shipment.deleted = True
    return answer("ukrposhta", "shipment_delete")


@ukrposhta.get("/ecom/0.0.1/shipments/{shipment_uuid}/sticker")
async def sticker(
    shipment_uuid: str, request: Request, token: str = "", authorization: str | None = Header(None)
) -> Response:
    sim = sim_of(request)
    _check(sim, authorization, token)
    shipment = _by_uuid(state_of(sim), shipment_uuid)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A6, invariant=True)
    canvas.drawString(20, 380, f"Ukrposhta  {shipment.barcode}  {shipment.delivery_type}")
    canvas.showPage()
    canvas.save()
    return Response(buffer.getvalue(), media_type="application/pdf")


@ukrposhta.get("/status-tracking/0.0.1/statuses/last")
async def last_status(
    barcode: str, request: Request, authorization: str | None = Header(None)
) -> Any:
    sim = sim_of(request)
    if authorization != f"Bearer {sim.settings.ukrposhta_tracking_bearer}":
        raise HTTPException(401, "Unauthorized")
    state = state_of(sim)
    state.tracking_calls += 1
    shipment = state.shipments.get(barcode)
    if shipment is None or not shipment.events:
        raise HTTPException(404, "Barcode not found")
    event = shipment.events[-1]
    last = answer("ukrposhta", "status_last")
    last.update(
        barcode=barcode,
        step=len(shipment.events),
        indexOrder=len(shipment.events),
        date=datetime.now(KYIV).isoformat(timespec="seconds"),
        event=event,
        eventName=EVENT_NAMES.get(event, ""),
    )
    return last


def _drive(sim: Simulators, shipment: UkrShipment) -> None:
    route = ["10100", "20700", "21500", *(["21700"] if shipment.delivery_type == "W2W" else [])]
    for n, event in enumerate([*route, "41000"], start=1):
        sim.later(n * sim.step, _autopilot_step, barcode=shipment.barcode, event=event)


@step
async def _autopilot_step(sim: Simulators, barcode: str, event: str) -> None:
    """The shipment's next event on the route, unless driven by hand or deleted meanwhile."""
    shipment = state_of(sim).shipments[barcode]
    if not shipment.by_hand and not shipment.deleted:
        shipment.events.append(event)


@ukrposhta.post("/sim/shipments/{barcode}/events")
async def set_event(barcode: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Drive a shipment by hand: `{"event": "41000"}` (any of Ukrposhta's event codes; the
    autopilot then leaves it alone)."""
    shipment = state_of(sim_of(request)).shipments.get(barcode)
    if shipment is None:
        raise HTTPException(404, "no such shipment")
    event = str(body.get("event", ""))
    if not event.isdigit():
        raise HTTPException(422, "event: Ukrposhta's event code, digits")
    shipment.by_hand = True
    shipment.events.append(event)
    return asdict(shipment)


@ukrposhta.get("/sim/shipments")
async def shipments_kept(request: Request) -> list[dict[str, Any]]:
    """Every shipment, as the simulator keeps it."""
    return [asdict(s) for s in state_of(sim_of(request)).shipments.values()]


@ukrposhta.get("/tracking/", response_class=HTMLResponse)
async def tracking_page(barcode: str, request: Request) -> HTMLResponse:
    shipment = state_of(sim_of(request)).shipments.get(barcode)
    if shipment is None:
        raise HTTPException(404, "Barcode not found")
    steps = "".join(f"<li>{e}: {EVENT_NAMES.get(e, '')}</li>" for e in shipment.events)
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><h1>{barcode}</h1><ol>{steps}</ol>")
