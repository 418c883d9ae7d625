"""The simulators' state, in memory, and what every provider's routes share."""

from __future__ import annotations

import asyncio
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import Request
from fastapi.templating import Jinja2Templates

from schema.webhooks import HEADER, sign
from settings import Settings

log = structlog.get_logger("simulators")
STOCK = Path(__file__).resolve().parent.parent / "stock.csv"
PAGES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


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
        # The real carriers' simulators keep their state here, one plain object each.
        self.carriers: dict[str, Any] = {}
        self.arrivals: dict[str, list[float]] = {"sms": [], "push": []}
        # The real payment providers' books, one per simulator module (plain data).
        self.gateways: dict[str, Any] = {}

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


def once(sim: Simulators, key: str | None, make: Any) -> Any:
    if key is None:
        return make()
    if key not in sim.idempotent:
        sim.idempotent[key] = make()
    return sim.idempotent[key]


def sim_of(request: Request) -> Simulators:
    simulators: Simulators = request.app.state.simulators
    return simulators
