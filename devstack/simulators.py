"""Local stand-ins for the shop's providers, over the same HTTP and signed webhooks as production.

One service, a path per provider: /payment (payment links, a payment page with Pay and
Fail buttons, refunds, whole or partial), /warehouse (stock seeded from stock.csv,
reservations, pick tasks, back-orders, restocks, parcels that come back, the inspection of
returns), /carrier (shipments and return shipments, tracking events with AfterShip's tag
and subtag), /sms and /push (message gateways that store and list what they accept, and can
be told to fail for a while), and /shop: the shop's own backend as a receiver of
orderflow's order events (subscribe http://127.0.0.1:8100/shop/events; it lists what
arrived and checks each signature once told the secret; it can be told to be down for a
while). Manual mode: tests and users drive every event through the /sim/ endpoints.
Autopilot (ORDERFLOW_SIMULATOR_AUTOPILOT=true): payments succeed, parcels get packed,
travel and arrive on their own, one step at a time; a return parcel travels to the
warehouse, which accepts everything in it. A parcel driven by hand (an event posted to
/carrier/sim/…) leaves the autopilot: what happens to it next is the user's to say.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from activities.messages import sms_segments
from schema.shop_events import HEADER as SHOP_EVENTS_HEADER
from schema.shop_events import verify as verify_shop_event
from schema.webhooks import HEADER, BadSignature, sign
from settings import Settings, get_settings

log = structlog.get_logger("simulators")
STOCK = Path(__file__).resolve().parent / "stock.csv"
PAGES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


@dataclass
class Payment:
    payment_id: str
    order_ref: str
    order_number: str
    amount: str
    currency: str
    expires_at: str
    callback_url: str
    status: str = (
        "pending"  # pending | succeeded | failed | partially_refunded | refunded | cancelled
    )
    attempts: list[str] = field(default_factory=list)
    refunded: str = "0.00"  # the sum of the refunds so far


@dataclass
class Shipment:
    tracking_number: str
    order_ref: str
    service: str
    callback_url: str
    status: str = "booked"  # booked | cancelled | <tracking status>
    events: list[str] = field(default_factory=list)
    return_ref: str | None = None  # a customer's return parcel, on its way to the warehouse
    lines: list[dict[str, Any]] = field(default_factory=list)  # what a return parcel holds
    by_hand: bool = False  # an event was posted by hand: the autopilot leaves it alone


@dataclass
class PickTask:
    task_id: str
    order_ref: str
    callback_url: str
    checklist: list[dict[str, Any]]
    delivery_method: str = "courier"
    status: str = "open"


class Simulators:
    """The providers' state, in memory; every answer to a repeated Idempotency-Key is the first one."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.available: dict[str, int] = {}
        self.names: dict[str, str] = {}
        with STOCK.open() as rows:
            for row in csv.DictReader(rows):
                self.available[row["sku"]] = int(row["available"])
                self.names[row["sku"]] = row["name"]
        self.reservations: dict[str, dict[str, dict[str, int]]] = {}
        self.backorders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, Payment] = {}
        self.shipments: dict[str, Shipment] = {}
        self.pick_tasks: dict[str, PickTask] = {}
        self.idempotent: dict[str, Any] = {}
        self.restocked: list[dict[str, Any]] = []  # every restock, for tests and the curious
        self.delivered: list[dict[str, Any]] = []  # every webhook sent, for tests and the curious
        self.tasks: set[asyncio.Task[None]] = set()
        self.messages: dict[str, list[dict[str, Any]]] = {"sms": [], "push": []}
        self.failing: dict[str, int] = {"sms": 0, "push": 0}
        self.attempts: dict[str, int] = {"sms": 0, "push": 0}
        self.shop = ShopReceiver()
        self.arrivals: dict[str, list[float]] = {"sms": [], "push": []}

    async def webhook(self, url: str, secret: str, payload: dict[str, Any]) -> int:
        body = json.dumps(payload).encode()
        response = await self.http.post(
            url,
            content=body,
            headers={HEADER: sign(secret, body), "content-type": "application/json"},
        )
        self.delivered.append({"url": url, "payload": payload, "status": response.status_code})
        log.info("webhook", url=url, type=payload.get("type"), status=response.status_code)
        return response.status_code

    def later(self, delay: float, action: Any) -> None:
        """Autopilot: run `action()` after `delay` seconds, in the background."""

        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except Exception as exc:  # an autopilot step failing must not stop the service
                log.warning("autopilot step failed", error=str(exc))

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def step(self) -> float:
        return self.settings.simulator_step_seconds

    @property
    def autopilot(self) -> bool:
        return self.settings.simulator_autopilot


@dataclass
class ShopReceiver:
    """The shop's backend as orderflow's order events reach it: what arrived, in arrival
    order, each checked against the subscription's secret once it is told (`/sim/secret`)."""

    secret: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    refuse_next: int = 0  # answer 503 to this many deliveries
    refuse_until: float = 0.0  # ... and to every delivery until this moment (time.monotonic)
    refused: int = 0


def _once(sim: Simulators, key: str | None, make: Any) -> Any:
    if key is None:
        return make()
    if key not in sim.idempotent:
        sim.idempotent[key] = make()
    return sim.idempotent[key]


def _sim(request: Request) -> Simulators:
    simulators: Simulators = request.app.state.simulators
    return simulators


# --- payment ------------------------------------------------------------------------------

payment = APIRouter(prefix="/payment", tags=["payment"])


async def _payment_outcome(sim: Simulators, item: Payment, outcome: str, reason: str = "") -> int:
    if item.status not in ("pending", "failed"):
        raise HTTPException(409, f"payment is {item.status}")
    item.status = outcome
    item.attempts.append(outcome)
    return await sim.webhook(
        item.callback_url,
        sim.settings.payment_webhook_secret,
        {
            "event_id": f"pay-{uuid.uuid4().hex[:12]}",
            "type": f"payment.{outcome}",
            "payment_id": item.payment_id,
            "order_ref": item.order_ref,
            "amount": item.amount,
            "currency": item.currency,
            "reason": reason,
        },
    )


@payment.post("/v1/payments", status_code=201)
async def create_payment(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = _sim(request)

    def make() -> dict[str, Any]:
        payment_id = f"pay_{uuid.uuid4().hex[:16]}"
        item = Payment(
            payment_id=payment_id,
            order_ref=body["order_ref"],
            order_number=body["order_number"],
            amount=body["amount"],
            currency=body["currency"],
            expires_at=body["expires_at"],
            callback_url=body["callback_url"],
        )
        sim.payments[payment_id] = item
        if sim.autopilot:
            sim.later(sim.step, lambda: _payment_outcome(sim, item, "succeeded"))
        return {
            "payment_id": payment_id,
            "url": f"{request.base_url}payment/pay/{payment_id}",
            "status": "pending",
        }

    result: dict[str, Any] = _once(sim, f"payment:{idempotency_key}", make)
    return result


@payment.get("/v1/payments/{payment_id}")
async def get_payment(payment_id: str, request: Request) -> dict[str, Any]:
    item = _sim(request).payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    return asdict(item)


@payment.post("/v1/payments/{payment_id}/refunds", status_code=201)
async def refund(
    payment_id: str,
    body: dict[str, Any],
    request: Request,
    idempotency_key: str | None = Header(None),
) -> dict[str, Any]:
    sim = _sim(request)
    item = sim.payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")

    def make() -> dict[str, Any]:
        """Full or partial refunds, never more than was paid in all."""
        if item.status not in ("succeeded", "partially_refunded"):
            raise HTTPException(409, f"payment is {item.status}, not refundable")
        amount, paid, before = Decimal(body["amount"]), Decimal(item.amount), Decimal(item.refunded)
        if amount <= 0 or before + amount > paid:
            raise HTTPException(422, f"refund of {amount} exceeds what is left ({paid - before})")
        item.refunded = str(before + amount)
        item.status = "refunded" if before + amount == paid else "partially_refunded"
        return {"refund_id": f"ref_{uuid.uuid4().hex[:12]}", "amount": body["amount"]}

    first_time = f"refund:{idempotency_key}" not in sim.idempotent
    result: dict[str, Any] = _once(sim, f"refund:{idempotency_key}", make)
    if first_time:
        await sim.webhook(
            item.callback_url,
            sim.settings.payment_webhook_secret,
            {
                "event_id": f"pay-{uuid.uuid4().hex[:12]}",
                "type": "payment.refunded",
                "payment_id": item.payment_id,
                "refund_id": result["refund_id"],
                "order_ref": item.order_ref,
                "amount": body["amount"],
                "currency": item.currency,
            },
        )
    return result


@payment.post("/v1/payments/{payment_id}/cancel")
async def cancel_payment(payment_id: str, request: Request) -> dict[str, Any]:
    item = _sim(request).payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    if item.status in ("pending", "failed"):
        item.status = "cancelled"
    return asdict(item)


@payment.get("/pay/{payment_id}", response_class=HTMLResponse)
async def payment_page(payment_id: str, request: Request) -> HTMLResponse:
    item = _sim(request).payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    return PAGES.TemplateResponse(request, "payment.html", {"payment": item})


@payment.post("/pay/{payment_id}/{outcome}")
async def pay(payment_id: str, outcome: str, request: Request) -> dict[str, Any]:
    """The payment page's buttons (and tests): succeed, or fail with a reason."""
    sim = _sim(request)
    item = sim.payments.get(payment_id)
    if item is None or outcome not in ("succeed", "fail"):
        raise HTTPException(404, "no such payment or outcome")
    reason = ""
    if outcome == "fail":
        form = await request.form() if "form" in request.headers.get("content-type", "") else {}
        reason = str(form.get("reason") or request.query_params.get("reason") or "card_declined")
    status = await _payment_outcome(
        sim, item, "succeeded" if outcome == "succeed" else "failed", reason
    )
    return {"payment_id": payment_id, "status": item.status, "webhook_status": status}


# --- warehouse ----------------------------------------------------------------------------

warehouse = APIRouter(prefix="/warehouse", tags=["warehouse"])


@warehouse.put("/v1/reservations/{reservation_id}")
async def reserve(reservation_id: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Reserve the wished quantity of each line, as far as stock goes; the same wish again changes nothing."""
    sim = _sim(request)
    held = sim.reservations.setdefault(reservation_id, {})
    answer = []
    for line in body["lines"]:
        sku, requested = line["sku"], int(line["quantity"])
        current = held.get(sku, {"reserved": 0})["reserved"]
        sim.available[sku] = sim.available.get(sku, 0) + current  # put back, then take what fits
        reserved = min(requested, sim.available[sku])
        sim.available[sku] -= reserved
        held[sku] = {"requested": requested, "reserved": reserved}
        answer.append({"sku": sku, "requested": requested, "reserved": reserved})
    return {"reservation_id": reservation_id, "lines": answer}


@warehouse.get("/v1/reservations/{reservation_id}")
async def get_reservation(reservation_id: str, request: Request) -> dict[str, Any]:
    held = _sim(request).reservations.get(reservation_id)
    if held is None:
        raise HTTPException(404, "no such reservation")
    return {"reservation_id": reservation_id, "lines": [{"sku": k, **v} for k, v in held.items()]}


@warehouse.delete("/v1/reservations/{reservation_id}")
async def release(reservation_id: str, request: Request) -> dict[str, Any]:
    sim = _sim(request)
    held = sim.reservations.get(reservation_id, {})
    for sku, line in held.items():
        sim.available[sku] = sim.available.get(sku, 0) + line["reserved"]
        line["reserved"] = 0
    return {"reservation_id": reservation_id, "released": True}


@warehouse.post("/v1/restocks", status_code=201)
async def restock(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    """Goods back on the shelf (a parcel that came back, accepted return items), once per key."""
    sim = _sim(request)

    def make() -> dict[str, Any]:
        for line in body["lines"]:
            sim.available[line["sku"]] = sim.available.get(line["sku"], 0) + int(line["quantity"])
        sim.restocked.append({"order_ref": body["order_ref"], "lines": body["lines"]})
        return {"restock_id": f"rs_{uuid.uuid4().hex[:12]}", "lines": body["lines"]}

    result: dict[str, Any] = _once(sim, f"restock:{idempotency_key}", make)
    return result


@warehouse.get("/v1/restocks")
async def restocks(request: Request) -> list[dict[str, Any]]:
    return _sim(request).restocked


@warehouse.post("/sim/orders/{order_ref}/returned")
async def parcel_returned(order_ref: str, request: Request) -> dict[str, Any]:
    """A refused or unclaimed parcel is back at the warehouse."""
    sim = _sim(request)
    status = await sim.webhook(
        f"{sim.settings.public_url}/v1/webhooks/warehouse",
        sim.settings.warehouse_webhook_secret,
        {"event_id": f"wh-{uuid.uuid4().hex[:12]}", "type": "returned", "order_ref": order_ref},
    )
    return {"order_ref": order_ref, "webhook_status": status}


async def _inspected(sim: Simulators, item: Shipment, lines: list[dict[str, Any]]) -> int:
    return await sim.webhook(
        f"{sim.settings.public_url}/v1/webhooks/warehouse",
        sim.settings.warehouse_webhook_secret,
        {
            "event_id": f"wh-{uuid.uuid4().hex[:12]}",
            "type": "return_inspected",
            "order_ref": item.order_ref,
            "return_ref": item.return_ref,
            "lines": lines,
        },
    )


@warehouse.post("/sim/returns/{return_ref}/inspect")
async def inspect_return(
    return_ref: str, request: Request, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The warehouse's inspection of a return parcel: `{"lines": [{"sku", "received",
    "accepted", "finding"}]}`; without a body, everything in it is accepted."""
    sim = _sim(request)
    item = next((s for s in sim.shipments.values() if s.return_ref == return_ref), None)
    if item is None:
        raise HTTPException(404, "no such return parcel")
    lines = (body or {}).get("lines") or _all_accepted(item)
    return {"return_ref": return_ref, "webhook_status": await _inspected(sim, item, lines)}


def _all_accepted(item: Shipment) -> list[dict[str, Any]]:
    return [
        {"sku": line["sku"], "received": line["quantity"], "accepted": line["quantity"]}
        for line in item.lines
    ]


@warehouse.get("/v1/stock/{sku}")
async def stock(sku: str, request: Request) -> dict[str, Any]:
    return {"sku": sku, "available": _sim(request).available.get(sku, 0)}


@warehouse.post("/sim/restock")
async def restock_for_benchmarks(body: dict[str, int], request: Request) -> dict[str, int]:
    """A delivery to the warehouse: `{"MUG-01": 100000}` adds that many of each SKU (a
    benchmark stocks what it means to order); the answer is what is available now."""
    sim = _sim(request)
    for sku, quantity in body.items():
        if quantity < 0:
            raise HTTPException(422, f"{sku}: a delivery adds, {quantity} is negative")
        sim.available[sku] = sim.available.get(sku, 0) + quantity
    return {sku: sim.available[sku] for sku in body}


@warehouse.post("/v1/backorders", status_code=201)
async def backorder(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = _sim(request)

    def make() -> dict[str, Any]:
        backorder_id = f"bo_{uuid.uuid4().hex[:12]}"
        held = sim.reservations.get(body["reservation_id"], {})
        missing = {
            sku: v["requested"] - v["reserved"]
            for sku, v in held.items()
            if v["requested"] > v["reserved"]
        }
        expected = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
        sim.backorders[backorder_id] = {
            "order_ref": body["reservation_id"],
            "missing": missing,
            "expected_date": expected,
        }
        return {"backorder_id": backorder_id, "expected_date": expected, "missing": missing}

    result: dict[str, Any] = _once(sim, f"backorder:{idempotency_key}", make)
    return result


@warehouse.get("/v1/backorders")
async def backorders(request: Request) -> dict[str, dict[str, Any]]:
    return _sim(request).backorders


@warehouse.post("/sim/backorders/{backorder_id}/arrive")
async def backorder_arrived(backorder_id: str, request: Request) -> dict[str, Any]:
    sim = _sim(request)
    order = sim.backorders.get(backorder_id)
    if order is None:
        raise HTTPException(404, "no such back-order")
    for sku, quantity in order["missing"].items():
        sim.available[sku] = sim.available.get(sku, 0) + quantity
    status = await sim.webhook(
        f"{sim.settings.public_url}/v1/webhooks/warehouse",
        sim.settings.warehouse_webhook_secret,
        {
            "event_id": f"wh-{uuid.uuid4().hex[:12]}",
            "type": "stock_arrived",
            "order_ref": order["order_ref"],
        },
    )
    return {"backorder_id": backorder_id, "webhook_status": status}


async def _packed(sim: Simulators, task: PickTask, missing: list[str], defects: list[str]) -> int:
    task.status = "packed" if not missing and not defects else "failed"
    status = await sim.webhook(
        task.callback_url,
        sim.settings.warehouse_webhook_secret,
        {
            "event_id": f"wh-{uuid.uuid4().hex[:12]}",
            "type": "packed",
            "order_ref": task.order_ref,
            "task_id": task.task_id,
            "missing": missing,
            "defects": defects,
        },
    )
    if sim.autopilot and task.delivery_method == "pickup" and task.status == "packed":
        sim.later(3 * sim.step, lambda: _collected(sim, task.order_ref, task.callback_url))
    return status


async def _collected(sim: Simulators, order_ref: str, callback_url: str) -> int:
    return await sim.webhook(
        callback_url,
        sim.settings.warehouse_webhook_secret,
        {"event_id": f"wh-{uuid.uuid4().hex[:12]}", "type": "collected", "order_ref": order_ref},
    )


@warehouse.post("/v1/pick-tasks", status_code=201)
async def create_pick_task(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = _sim(request)

    def make() -> dict[str, Any]:
        task = PickTask(
            task_id=f"pick_{uuid.uuid4().hex[:12]}",
            order_ref=body["order_ref"],
            callback_url=body["callback_url"],
            checklist=body["checklist"],
            delivery_method=body.get("delivery_method", "courier"),
        )
        sim.pick_tasks[task.task_id] = task
        if sim.autopilot:
            sim.later(sim.step, lambda: _packed(sim, task, [], []))
        return {"task_id": task.task_id}

    result: dict[str, Any] = _once(sim, f"pick:{idempotency_key}", make)
    return result


@warehouse.get("/v1/pick-tasks")
async def pick_tasks(request: Request, order_ref: str | None = None) -> list[dict[str, Any]]:
    return [
        asdict(t) for t in _sim(request).pick_tasks.values() if order_ref in (None, t.order_ref)
    ]


@warehouse.post("/sim/pick-tasks/{task_id}/pack")
async def pack(
    task_id: str, request: Request, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The picker's checklist: `{"missing": ["SKU"], "defects": ["SKU: cracked"]}`, empty when all is well."""
    sim = _sim(request)
    task = sim.pick_tasks.get(task_id)
    if task is None:
        raise HTTPException(404, "no such pick task")
    body = body or {}
    status = await _packed(sim, task, body.get("missing", []), body.get("defects", []))
    return {"task_id": task_id, "status": task.status, "webhook_status": status}


@warehouse.post("/sim/orders/{order_ref}/collect")
async def collect(order_ref: str, request: Request) -> dict[str, Any]:
    sim = _sim(request)
    status = await _collected(sim, order_ref, f"{sim.settings.public_url}/v1/webhooks/warehouse")
    return {"order_ref": order_ref, "webhook_status": status}


# --- carrier ------------------------------------------------------------------------------

carrier = APIRouter(prefix="/carrier", tags=["carrier"])
AUTOPILOT_ROUTE = ("InfoReceived", "InTransit", "OutForDelivery", "Delivered")
RETURN_ROUTE = ("InfoReceived", "InTransit", "Delivered")  # to the warehouse
UNSERVED_POSTAL_CODE = "00000"  # the carrier refuses to book a parcel there


async def _tracking_event(
    sim: Simulators, item: Shipment, status: str, detail: str = "", subtag: str = ""
) -> int:
    item.status = status
    item.events.append(f"{status}/{subtag}" if subtag else status)
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
    return await sim.webhook(item.callback_url, sim.settings.carrier_webhook_secret, event)


async def _autopilot_step(sim: Simulators, item: Shipment, status: str) -> None:
    """One step of the autopilot's route, unless the parcel is driven by hand now; a return
    parcel that arrives is inspected a step later (everything accepted)."""
    if item.by_hand or item.status == "cancelled":
        return
    await _tracking_event(sim, item, status)
    if item.return_ref is not None and status == "Delivered":
        sim.later(sim.step, lambda: _inspected(sim, item, _all_accepted(item)))


@carrier.post("/v1/shipments", status_code=201)
async def create_shipment(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = _sim(request)
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
        sim.shipments[tracking] = item
        if sim.autopilot:
            route = AUTOPILOT_ROUTE if item.return_ref is None else RETURN_ROUTE
            for n, status in enumerate(route, start=1):
                sim.later(n * sim.step, lambda status=status: _autopilot_step(sim, item, status))
        return {
            "tracking_number": tracking,
            "tracking_url": f"{request.base_url}carrier/track/{tracking}",
        }

    result: dict[str, Any] = _once(sim, f"shipment:{idempotency_key}", make)
    return result


@carrier.get("/v1/shipments/{tracking_number}")
async def get_shipment(tracking_number: str, request: Request) -> dict[str, Any]:
    item = _sim(request).shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    return asdict(item)


@carrier.delete("/v1/shipments/{tracking_number}")
async def cancel_shipment(tracking_number: str, request: Request) -> dict[str, Any]:
    item = _sim(request).shipments.get(tracking_number)
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
    sim = _sim(request)
    item = sim.shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    item.by_hand = True
    status = await _tracking_event(
        sim, item, body["status"], body.get("detail", ""), body.get("subtag", "")
    )
    return {"tracking_number": tracking_number, "webhook_status": status}


@carrier.get("/track/{tracking_number}", response_class=HTMLResponse)
async def track(tracking_number: str, request: Request) -> HTMLResponse:
    item = _sim(request).shipments.get(tracking_number)
    if item is None:
        raise HTTPException(404, "no such shipment")
    return PAGES.TemplateResponse(request, "track.html", {"shipment": item})


# --- SMS and push gateways --------------------------------------------------------------


def _gateway(name: str, address_field: str, refuse: Any) -> APIRouter:
    """A message gateway: stores what it accepts; `/sim/fail` makes it answer 5xx for a while."""
    router = APIRouter(prefix=f"/{name}", tags=[name])

    @router.post("/v1/messages", status_code=201)
    async def send(
        body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
    ) -> dict[str, Any]:
        sim = _sim(request)
        sim.attempts[name] += 1
        sim.arrivals[name].append(time.time())
        if sim.failing[name] > 0:
            sim.failing[name] -= 1
            raise HTTPException(503, f"{name} gateway is overloaded, try later")
        reason = refuse(body.get(address_field, ""))
        if reason:
            raise HTTPException(422 if name == "sms" else 410, reason)

        def make() -> dict[str, Any]:
            message = {
                "message_id": f"{name}_{uuid.uuid4().hex[:12]}",
                **body,
                "key": idempotency_key,
            }
            if name == "sms":
                message["segments"] = sms_segments(body.get("text", ""))
            sim.messages[name].append(message)
            return message

        result: dict[str, Any] = _once(sim, f"{name}:{idempotency_key}", make)
        return result

    @router.get("/v1/messages")
    async def messages(request: Request) -> list[dict[str, Any]]:
        return _sim(request).messages[name]

    @router.post("/sim/fail")
    async def fail(request: Request, count: int = 3) -> dict[str, Any]:
        """Answer 503 to the next `count` sends, then recover."""
        _sim(request).failing[name] = count
        return {"failing": count}

    @router.get("/sim/attempts")
    async def attempts(request: Request) -> dict[str, Any]:
        """Every request the gateway received: how many, and when (Unix seconds)."""
        sim = _sim(request)
        return {"attempts": sim.attempts[name], "at": sim.arrivals[name]}

    return router


sms = _gateway("sms", "to", lambda to: "" if str(to).startswith("+") else "not an E.164 number")
push = _gateway(
    "push", "token", lambda token: "token expired" if str(token).startswith("expired") else ""
)


# --- the shop's backend: a receiver of order events ----------------------------------------

shop = APIRouter(prefix="/shop", tags=["shop"])


@shop.post("/events")
async def shop_event(request: Request) -> dict[str, Any]:
    """Where a subscription's deliveries arrive (subscribe with this URL)."""
    receiver = _sim(request).shop
    if receiver.refuse_next > 0 or time.monotonic() < receiver.refuse_until:
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
    return _sim(request).shop.received


@shop.post("/sim/secret")
async def shop_secret(body: dict[str, str], request: Request) -> dict[str, bool]:
    """The subscription's secret (from its creation's answer), to check signatures with."""
    _sim(request).shop.secret = body["secret"]
    return {"set": True}


@shop.post("/sim/refuse")
async def shop_refuse(request: Request, count: int = 0, seconds: float = 0.0) -> dict[str, Any]:
    """Be down: answer 503 to the next `count` deliveries and to all for `seconds`."""
    receiver = _sim(request).shop
    receiver.refuse_next = count
    receiver.refuse_until = time.monotonic() + seconds
    return {"refusing": count, "for_seconds": seconds}


@shop.get("/sim/refused")
async def shop_refused(request: Request) -> dict[str, int]:
    return {"refused": _sim(request).shop.refused}


def create_simulators(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10) as http:
            app.state.simulators = Simulators(settings, http)
            yield

    app = FastAPI(title="orderflow provider simulators", version="0.1.0", lifespan=lifespan)

    @app.get("/sim/webhooks")
    async def webhooks(request: Request) -> list[dict[str, Any]]:
        """Every webhook the simulators sent, oldest first."""
        return _sim(request).delivered

    @app.get("/sim/payments")
    async def payments(request: Request) -> list[dict[str, Any]]:
        """Every payment link created (one per idempotency key)."""
        return [asdict(item) for item in _sim(request).payments.values()]

    @app.get("/sim/shipments")
    async def shipments(request: Request) -> list[dict[str, Any]]:
        """Every shipment booked (one per idempotency key)."""
        return [asdict(item) for item in _sim(request).shipments.values()]

    for router in (payment, warehouse, carrier, sms, push, shop):
        app.include_router(router)
    return app


def main() -> None:
    import uvicorn

    from runtime import configure_logging

    settings = get_settings()
    configure_logging()
    uvicorn.run(
        create_simulators(settings), host="127.0.0.1", port=settings.simulator_port, log_config=None
    )


if __name__ == "__main__":
    main()
