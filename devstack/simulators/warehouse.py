"""The warehouse: stock seeded from stock.csv, reservations, pick tasks, back-orders,
restocks, parcels that come back, the inspection of returns."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request

from devstack.simulators.state import (
    PickTask,
    Shipment,
    Simulators,
    once,
    sim_of,
    step,
)

# --- warehouse ----------------------------------------------------------------------------

warehouse = APIRouter(prefix="/warehouse", tags=["warehouse"])


@warehouse.put("/v1/reservations/{reservation_id}")
async def reserve(reservation_id: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Reserve the wished quantity of each line, as far as stock goes; the same wish again changes nothing."""
    sim = sim_of(request)
    held = sim.books.reservations.setdefault(reservation_id, {})
    answer = []
    for line in body["lines"]:
        sku, requested = line["sku"], int(line["quantity"])
        current = held.get(sku, {"reserved": 0})["reserved"]
        sim.books.available[sku] = (
            sim.books.available.get(sku, 0) + current
        )  # put back, then take what fits
        reserved = min(requested, sim.books.available[sku])
        sim.books.available[sku] -= reserved
        held[sku] = {"requested": requested, "reserved": reserved}
        answer.append({"sku": sku, "requested": requested, "reserved": reserved})
    return {"reservation_id": reservation_id, "lines": answer}


@warehouse.get("/v1/reservations/{reservation_id}")
async def get_reservation(reservation_id: str, request: Request) -> dict[str, Any]:
    held = sim_of(request).books.reservations.get(reservation_id)
    if held is None:
        raise HTTPException(404, "no such reservation")
    return {"reservation_id": reservation_id, "lines": [{"sku": k, **v} for k, v in held.items()]}


@warehouse.delete("/v1/reservations/{reservation_id}")
async def release(reservation_id: str, request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    held = sim.books.reservations.get(reservation_id, {})
    for sku, line in held.items():
        sim.books.available[sku] = sim.books.available.get(sku, 0) + line["reserved"]
        line["reserved"] = 0
    return {"reservation_id": reservation_id, "released": True}


@warehouse.post("/v1/restocks", status_code=201)
async def restock(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    """Goods back on the shelf (a parcel that came back, accepted return items), once per key."""
    sim = sim_of(request)

    def make() -> dict[str, Any]:
        for line in body["lines"]:
            sim.books.available[line["sku"]] = sim.books.available.get(line["sku"], 0) + int(
                line["quantity"]
            )
        sim.books.restocked.append({"order_ref": body["order_ref"], "lines": body["lines"]})
        return {"restock_id": f"rs_{uuid.uuid4().hex[:12]}", "lines": body["lines"]}

    result: dict[str, Any] = once(sim, f"restock:{idempotency_key}", make)
    return result


@warehouse.get("/v1/restocks")
async def restocks(request: Request) -> list[dict[str, Any]]:
    return sim_of(request).books.restocked


@warehouse.post("/sim/orders/{order_ref}/returned")
async def parcel_returned(order_ref: str, request: Request) -> dict[str, Any]:
    """A refused or unclaimed parcel is back at the warehouse."""
    sim = sim_of(request)
    status = await sim.webhook(
        f"{sim.settings.public_url}/v1/webhooks/warehouse",
        sim.settings.warehouse_webhook_secret,
        {"event_id": f"wh-{uuid.uuid4().hex[:12]}", "type": "returned", "order_ref": order_ref},
    )
    return {"order_ref": order_ref, "webhook_status": status}


@step
async def inspected(sim: Simulators, tracking_number: str, lines: list[dict[str, Any]]) -> int:
    """The inspection's event; sent again while orderflow answers 409 (the parcel's arrival
    not recorded yet: an inspection counts only after it), as a warehouse's retry would."""
    item = sim.books.shipments[tracking_number]
    event = {
        "event_id": f"wh-{uuid.uuid4().hex[:12]}",
        "type": "return_inspected",
        "order_ref": item.order_ref,
        "return_ref": item.return_ref,
        "lines": lines,
    }
    url = f"{sim.settings.public_url}/v1/webhooks/warehouse"
    for _ in range(50):
        status = await sim.webhook(url, sim.settings.warehouse_webhook_secret, event)
        if status != 409:
            break
        await asyncio.sleep(0.2)
    return status


@warehouse.post("/sim/returns/{return_ref}/inspect")
async def inspect_return(
    return_ref: str, request: Request, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The warehouse's inspection of a return parcel: `{"lines": [{"sku", "received",
    "accepted", "finding"}]}`; without a body, everything in it is accepted."""
    sim = sim_of(request)
    item = next((s for s in sim.books.shipments.values() if s.return_ref == return_ref), None)
    if item is None:
        raise HTTPException(404, "no such return parcel")
    lines = (body or {}).get("lines") or all_accepted(item)
    status = await inspected(sim, item.tracking_number, lines)
    return {"return_ref": return_ref, "webhook_status": status}


def all_accepted(item: Shipment) -> list[dict[str, Any]]:
    return [
        {"sku": line["sku"], "received": line["quantity"], "accepted": line["quantity"]}
        for line in item.lines
    ]


@warehouse.get("/v1/stock/{sku}")
async def stock(sku: str, request: Request) -> dict[str, Any]:
    return {"sku": sku, "available": sim_of(request).books.available.get(sku, 0)}


@warehouse.post("/sim/restock")
async def restock_for_benchmarks(body: dict[str, int], request: Request) -> dict[str, int]:
    """A delivery to the warehouse: `{"MUG-01": 100000}` adds that many of each SKU (a
    benchmark stocks what it means to order); the answer is what is available now."""
    sim = sim_of(request)
    for sku, quantity in body.items():
        if quantity < 0:
            raise HTTPException(422, f"{sku}: a delivery adds, {quantity} is negative")
        sim.books.available[sku] = sim.books.available.get(sku, 0) + quantity
    return {sku: sim.books.available[sku] for sku in body}


@warehouse.post("/v1/backorders", status_code=201)
async def backorder(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)

    def make() -> dict[str, Any]:
        backorder_id = f"bo_{uuid.uuid4().hex[:12]}"
        held = sim.books.reservations.get(body["reservation_id"], {})
        missing = {
            sku: v["requested"] - v["reserved"]
            for sku, v in held.items()
            if v["requested"] > v["reserved"]
        }
        expected = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
        sim.books.backorders[backorder_id] = {
            "order_ref": body["reservation_id"],
            "missing": missing,
            "expected_date": expected,
        }
        return {"backorder_id": backorder_id, "expected_date": expected, "missing": missing}

    result: dict[str, Any] = once(sim, f"backorder:{idempotency_key}", make)
    return result


@warehouse.get("/v1/backorders")
async def backorders(request: Request) -> dict[str, dict[str, Any]]:
    return sim_of(request).books.backorders


@warehouse.post("/sim/backorders/{backorder_id}/arrive")
async def backorder_arrived(backorder_id: str, request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    order = sim.books.backorders.get(backorder_id)
    if order is None:
        raise HTTPException(404, "no such back-order")
    for sku, quantity in order["missing"].items():
        sim.books.available[sku] = sim.books.available.get(sku, 0) + quantity
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
    """The checklist's webhook; the task is packed (or failed) once it was delivered."""
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
    task.status = "packed" if not missing and not defects else "failed"
    if sim.autopilot and task.delivery_method == "pickup" and task.status == "packed":
        sim.later(
            3 * sim.step, _collected, order_ref=task.order_ref, callback_url=task.callback_url
        )
    return status


@step
async def _autopack(sim: Simulators, task_id: str) -> None:
    """The autopilot's picker: everything there, nothing broken (unless packed meanwhile)."""
    task = sim.books.pick_tasks[task_id]
    if task.status == "open":
        await _packed(sim, task, [], [])


@step
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
    sim = sim_of(request)

    def make() -> dict[str, Any]:
        task = PickTask(
            task_id=f"pick_{uuid.uuid4().hex[:12]}",
            order_ref=body["order_ref"],
            callback_url=body["callback_url"],
            checklist=body["checklist"],
            delivery_method=body.get("delivery_method", "courier"),
        )
        sim.books.pick_tasks[task.task_id] = task
        if sim.autopilot:
            sim.later(sim.step, _autopack, task_id=task.task_id)
        return {"task_id": task.task_id}

    result: dict[str, Any] = once(sim, f"pick:{idempotency_key}", make)
    return result


@warehouse.get("/v1/pick-tasks")
async def pick_tasks(request: Request, order_ref: str | None = None) -> list[dict[str, Any]]:
    return [
        asdict(t)
        for t in sim_of(request).books.pick_tasks.values()
        if order_ref in (None, t.order_ref)
    ]


@warehouse.post("/sim/pick-tasks/{task_id}/pack")
async def pack(
    task_id: str, request: Request, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The picker's checklist: `{"missing": ["SKU"], "defects": ["SKU: cracked"]}`, empty when all is well."""
    sim = sim_of(request)
    task = sim.books.pick_tasks.get(task_id)
    if task is None:
        raise HTTPException(404, "no such pick task")
    body = body or {}
    status = await _packed(sim, task, body.get("missing", []), body.get("defects", []))
    return {"task_id": task_id, "status": task.status, "webhook_status": status}


@warehouse.post("/sim/orders/{order_ref}/collect")
async def collect(order_ref: str, request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    status = await _collected(sim, order_ref, f"{sim.settings.public_url}/v1/webhooks/warehouse")
    return {"order_ref": order_ref, "webhook_status": status}
