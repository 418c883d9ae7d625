"""The simulators' state and what every provider's routes share.

Each simulator registers its state once (`keep`): plain data (dataclasses, dicts, lists,
sets, strings, numbers). The devstack's simulators (`python -m devstack.simulators`) keep a
snapshot of all of it in `<data_dir>/simulators/state.json`, written soon after each change
(a temporary file, then a rename) and loaded at their next start; tests' in-process
simulators keep nothing. The autopilot's planned steps are part of that state (`later`
plans a registered `step` with plain arguments), so what was in flight before a restart
goes on after it: a parcel continues its route, a pick task gets packed, a payment pays.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import os
import time
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import structlog
from fastapi import Request
from fastapi.templating import Jinja2Templates

from schema.webhooks import HEADER, sign
from settings import Settings

log = structlog.get_logger("simulators")
STOCK = Path(__file__).resolve().parent.parent / "stock.csv"
PAGES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
SNAPSHOT_DELAY = 0.2  # seconds: the changes within it go into one snapshot
UNREACHABLE_TRIES = 30  # a step whose webhook finds nobody listening is tried again this often

S = TypeVar("S")
Step = Callable[..., Awaitable[object]]
F = TypeVar("F", bound=Step)


# --- the registry: each simulator's state and the autopilot's steps ------------------------


@dataclass(frozen=True)
class Kept(Generic[S]):
    """One simulator's state, registered once by name (`keep`)."""

    name: str
    kind: type[S]

    def of(self, sim: Simulators) -> S:
        state: S = sim.kept[self.name]
        return state


KEPT: dict[str, Kept[Any]] = {}
STEPS: dict[str, Step] = {}


def keep(name: str, kind: type[S]) -> Kept[S]:
    """Register a simulator's state: `kind()` is its start, a snapshot's copy its restart."""
    if name in KEPT:
        raise ValueError(f"the simulators' state {name!r} is registered twice")
    kept = KEPT[name] = Kept(name, kind)
    return kept


def step(action: F) -> F:
    """Register an autopilot step `action(sim, **args)` that `Simulators.later` may plan; its
    arguments are plain data (ids, not objects), so a planned step outlives a restart."""
    STEPS[_step_name(action)] = action
    return action


def _step_name(action: Step) -> str:
    return f"{action.__module__}:{action.__qualname__}"


def _plain(state: Any) -> Any:
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.asdict(state)
    return state


def _json(value: Any) -> Any:
    """What JSON lacks: a set as a sorted list, a Decimal as its string."""
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not plain data")


def _build(kind: Any, data: Any) -> Any:
    """`data` (as a snapshot holds it) as `kind`, by its type hints: dataclasses, dicts,
    lists, sets and optionals of them; anything else is taken as it is."""
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        return kind(
            **{
                f.name: _build(hints[f.name], data[f.name])
                for f in dataclasses.fields(kind)
                if f.init and f.name in data
            }
        )
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is dict and args:
        return {_build(args[0], key): _build(args[1], value) for key, value in data.items()}
    if origin in (list, set) and args:
        return origin(_build(args[0], value) for value in data)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        return _build(options[0], data) if data is not None and len(options) == 1 else data
    if kind in (int, float) and isinstance(data, str):  # a number as a JSON object's key
        return kind(data)
    return data


# --- the invented providers' state and what every simulator shares -------------------------


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


@dataclass
class ShopReceiver:
    """The shop's backend as orderflow's order events reach it: what arrived, in arrival
    order, each checked against the subscription's secret once it is told (`/sim/secret`)."""

    secret: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    refuse_next: int = 0  # answer 503 to this many deliveries
    refuse_until: float = 0.0  # ... and to every delivery until this moment (time.time)
    refused: int = 0


@dataclass
class Planned:
    """An autopilot step planned: the registered step's name, when, with what."""

    step: str
    due: float  # seconds since the epoch
    args: dict[str, Any]
    tries: int = 0  # how often orderflow could not be reached


def _stock() -> dict[str, dict[str, str]]:
    with STOCK.open() as rows:
        return {row["sku"]: row for row in csv.DictReader(rows)}


@dataclass
class Books:
    """The invented providers' state (payment, warehouse, carrier, sms and push, the shop)
    and what every simulator shares: the first answer to each Idempotency-Key (`once`),
    every webhook sent, the autopilot's planned steps."""

    available: dict[str, int] = field(
        default_factory=lambda: {sku: int(row["available"]) for sku, row in _stock().items()}
    )
    names: dict[str, str] = field(
        default_factory=lambda: {sku: row["name"] for sku, row in _stock().items()}
    )
    reservations: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    backorders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    shipments: dict[str, Shipment] = field(default_factory=dict)
    pick_tasks: dict[str, PickTask] = field(default_factory=dict)
    idempotent: dict[str, Any] = field(default_factory=dict)
    restocked: list[dict[str, Any]] = field(default_factory=list)  # every restock
    delivered: list[dict[str, Any]] = field(default_factory=list)  # every webhook sent
    messages: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"sms": [], "push": []}
    )
    failing: dict[str, int] = field(default_factory=lambda: {"sms": 0, "push": 0})
    attempts: dict[str, int] = field(default_factory=lambda: {"sms": 0, "push": 0})
    arrivals: dict[str, list[float]] = field(default_factory=lambda: {"sms": [], "push": []})
    shop: ShopReceiver = field(default_factory=ShopReceiver)
    planned: dict[str, Planned] = field(default_factory=dict)  # by a number of its own
    numbered: int = 0  # steps planned so far


BOOKS = keep("books", Books)


class Simulators:
    """Every simulator's state (registered with `keep`), a snapshot of it in `keep_in` when
    given; every answer to a repeated Idempotency-Key is the first one."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, keep_in: Path | None = None):
        self.settings = settings
        self.http = http
        self.snapshot = keep_in / "state.json" if keep_in is not None else None
        saved: dict[str, Any] = {}
        if self.snapshot is not None and self.snapshot.exists():
            saved = json.loads(self.snapshot.read_text())
            log.info("simulators' state loaded", snapshot=str(self.snapshot))
        self.kept: dict[str, Any] = {
            name: _build(kept.kind, saved[name]) if name in saved else kept.kind()
            for name, kept in KEPT.items()
        }
        self.books = BOOKS.of(self)
        self.tasks: set[asyncio.Task[None]] = set()
        self.writing: asyncio.Task[None] | None = None

    # --- the snapshot ---

    def changed(self) -> None:
        """Something changed: a snapshot follows within SNAPSHOT_DELAY (one for many changes)."""
        if self.snapshot is None or (self.writing is not None and not self.writing.done()):
            return

        async def write_soon() -> None:
            await asyncio.sleep(SNAPSHOT_DELAY)
            self.save()

        self.writing = asyncio.create_task(write_soon())

    def save(self) -> None:
        """Write the snapshot now: a temporary file, then a rename (never half a snapshot)."""
        if self.snapshot is None:
            return
        text = json.dumps({name: _plain(state) for name, state in self.kept.items()}, default=_json)
        self.snapshot.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.snapshot.with_suffix(".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.snapshot)

    async def close(self) -> None:
        """Stop the autopilot (its planned steps stay planned) and write the last snapshot."""
        for task in [*self.tasks, *([self.writing] if self.writing else [])]:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.save()

    # --- the autopilot ---

    def later(self, delay: float, action: Step, **args: Any) -> None:
        """Autopilot: run the registered `action(sim, **args)` after `delay` seconds, in the
        background; planned with the state, it runs after a restart too."""
        name = _step_name(action)
        if name not in STEPS:
            raise ValueError(f"{name} is not a registered autopilot step (@step)")
        self.books.numbered += 1
        number = str(self.books.numbered)
        self.books.planned[number] = Planned(name, time.time() + delay, args)
        self._run(number)
        self.changed()

    def resume(self) -> None:
        """Run every step planned before the last stop, each at its time (or now if past)."""
        for number in list(self.books.planned):
            self._run(number)
        if self.books.planned:
            log.info("autopilot resumed", planned=len(self.books.planned))

    def _run(self, number: str) -> None:
        planned = self.books.planned[number]

        async def run() -> None:
            while True:
                await asyncio.sleep(max(0.0, planned.due - time.time()))
                try:
                    await STEPS[planned.step](self, **planned.args)
                except httpx.TransportError as exc:  # orderflow not up (yet, after a restart)
                    planned.tries += 1
                    if planned.tries < UNREACHABLE_TRIES:
                        planned.due = time.time() + max(self.step, 1.0)
                        continue
                    log.warning("autopilot step failed", step=planned.step, error=str(exc))
                except Exception as exc:  # an autopilot step failing must not stop the service
                    log.warning("autopilot step failed", step=planned.step, error=str(exc))
                break
            self.books.planned.pop(number, None)
            self.changed()

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def webhook(self, url: str, secret: str, payload: dict[str, Any]) -> int:
        body = json.dumps(payload).encode()
        response = await self.http.post(
            url,
            content=body,
            headers={HEADER: sign(secret, body), "content-type": "application/json"},
        )
        self.books.delivered.append(
            {"url": url, "payload": payload, "status": response.status_code}
        )
        log.info("webhook", url=url, type=payload.get("type"), status=response.status_code)
        return response.status_code

    @property
    def step(self) -> float:
        return self.settings.simulator_step_seconds

    @property
    def autopilot(self) -> bool:
        return self.settings.simulator_autopilot


def once(sim: Simulators, key: str | None, make: Any) -> Any:
    if key is None:
        return make()
    if key not in sim.books.idempotent:
        sim.books.idempotent[key] = make()
    return sim.books.idempotent[key]


def sim_of(request: Request) -> Simulators:
    simulators: Simulators = request.app.state.simulators
    return simulators
