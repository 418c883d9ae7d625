"""Order events for the shop's backend: written to an outbox with the read model, delivered
by a dispatcher that every worker process runs.

Writing (`record`, `record_timeline_step`). An event is written inside the transaction that
writes the read model it reports: `OrderActivities.record_event` (the timeline row and the
order row, or a return's or refund's row beside the order; the timeline's types map to the
shop's in `TIMELINE`) and the feedback service
(the stored answer, `feedback.received`). It is one `shop_events` row and one
`shop_deliveries` row per active subscription that wants the type and may see the order (an
admin's sees every order, a service key's the orders that key created); with none, nothing
is written. The event's `seq` is taken while the order's row is locked by the same
transaction, so an order's events commit in `seq` order.

Delivering (`ShopEventDispatcher`). A loop in each worker process claims what is due
(`CLAIM`: one statement that leases each claimed delivery by moving its next attempt past
the attempt's time limit), posts each claimed event on its own (signed,
schema/shop_events.py) and records the answer; several processes share the queue and never
send one delivery at the same time. Each receiver on its own: at most
`shop_events_per_receiver` of its deliveries in flight per process, and after a failure the
receiver rests for the backoff of its failures in a row, so a slow or failing receiver
delays its own events and no one else's. In order per order: a delivery is due only when no
earlier event of the same order waits for (or is being sent to) the same receiver, so an
order's events arrive in order even across processes, while other orders go on. At least
once: a delivery is done only when the receiver answered 2xx; a process that dies mid-POST
leaves it pending, due again when its lease ends, and another sends it — the event's `id`
lets the receiver drop the repeat. A failure waits with exponential backoff and jitter (5 s
doubling to 10 min by default) and is retried until `retry_for` (72 h by default, at least a
day) has passed since it was queued; then it is `failed`, later events of that order go on,
and it can be redelivered by hand (the API, the CLI, the console). Every attempt connects to
the address its receiver's name was checked at (`resolved`): a second look-up, which a name
may answer otherwise (DNS rebinding), is never made.

Why not Temporal activities: the state of each delivery (attempts, next try, last answer)
must be in Postgres anyway for the delivery log, the ordering rule and redelivery; the
outbox row is written in the read model's transaction, where no workflow can be signalled;
and a workflow per event or per subscription would add history and timers for what one
indexed query and one row update do. Temporal's retries would add nothing the row's backoff
does not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import false, func, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.common import MetricMeter

from activities import metrics
from activities.marketplaces import write_back
from activities.messages import delay_reason
from schema.contracts import TimelineEntry, WaitingFor
from schema.database import open_session
from schema.shop_events import HEADER, ShopEventType, body_of, sign
from schema.tables import (
    Incident,
    Order,
    OrderNote,
    OrderProviderRefs,
    OrderSource,
    Refund,
    ShopDelivery,
    ShopEvent,
    WebhookSubscription,
)
from schema.vocabulary import Action, EventType
from settings import Settings

log = structlog.get_logger(__name__)

# The timeline's steps that the shop hears of, as its event types.
TIMELINE: dict[EventType, tuple[ShopEventType, ...]] = {
    EventType.ORDER_RECEIVED: (ShopEventType.RECEIVED,),
    EventType.ORDER_CONFIRMED: (ShopEventType.CONFIRMED,),
    EventType.REVIEW_REQUESTED: (ShopEventType.AWAITING_ACTION,),
    EventType.PAYMENT_REQUESTED: (ShopEventType.AWAITING_ACTION,),
    EventType.STOCK_PARTIAL: (ShopEventType.AWAITING_ACTION,),
    EventType.PICKING_NEEDS_OPERATOR: (ShopEventType.AWAITING_ACTION,),
    EventType.STEP_FAILED: (ShopEventType.INCIDENT_OPENED, ShopEventType.AWAITING_ACTION),
    EventType.PAYMENT_SUCCEEDED: (ShopEventType.PAID,),
    EventType.PAYMENT_COLLECTED_ON_DELIVERY: (ShopEventType.PAID,),
    EventType.PAYMENT_FAILED: (ShopEventType.PAYMENT_FAILED,),
    EventType.ORDER_PACKED: (ShopEventType.PACKED,),
    EventType.ORDER_SHIPPED: (ShopEventType.SHIPPED,),
    EventType.ORDER_DELIVERED: (ShopEventType.DELIVERED,),
    EventType.ORDER_COLLECTED: (ShopEventType.DELIVERED,),
    EventType.ORDER_DELAYED: (ShopEventType.DELAYED,),
    EventType.TRANSIT_NO_NEWS: (ShopEventType.DELAYED,),
    EventType.CARRIER_EXCEPTION: (ShopEventType.DELAYED,),
    EventType.CARRIER_EXPIRED: (ShopEventType.DELAYED,),
    EventType.ORDER_CANCELLED: (ShopEventType.CANCELLED,),
    EventType.ORDER_INVALID: (ShopEventType.CANCELLED,),
    EventType.INCIDENT_OPENED: (ShopEventType.INCIDENT_OPENED,),
    EventType.PAYMENT_PARTIALLY_REFUNDED: (ShopEventType.REFUNDED,),
    # A return's steps, written beside the order (workflows/returns.py)
    EventType.RETURN_REQUESTED: (ShopEventType.RETURN_REQUESTED,),
    EventType.RETURN_APPROVED: (ShopEventType.RETURN_APPROVED,),
    EventType.RETURN_DECLINED: (ShopEventType.RETURN_DECLINED,),
    EventType.RETURN_RECEIVED: (ShopEventType.RETURN_RECEIVED,),
    EventType.RETURN_REFUNDED: (ShopEventType.RETURN_REFUNDED,),
    EventType.RETURN_EXCHANGE_REFUNDED: (ShopEventType.RETURN_REFUNDED,),
    EventType.RETURN_EXCHANGED: (ShopEventType.RETURN_EXCHANGED,),
}
# The steps the shop does not hear of, each on purpose (every step is in `TIMELINE` or here:
# tests/test_vocabulary.py): the order's own machinery (a stage begun, a booking, documents,
# a decision recorded: the shop hears what comes of it), what only the customer is told (the
# carrier's scans, the pickup counter, the feedback request), and a return's inner steps.
# The answer to the feedback request reaches the shop from the stored answer (the feedback
# service), not from the timeline. A lost or damaged parcel, and its second parcel, reach the
# shop as the incident opened; the second tracking number does not (not yet).
NOT_FOR_THE_SHOP = frozenset(
    {
        EventType.ORDER_VALIDATION_STARTED,
        EventType.ORDER_VALIDATED,
        EventType.REVIEW_ESCALATED,
        EventType.REVIEW_CONFIRMED,
        EventType.ORDER_CONFIRMATION_STARTED,
        EventType.STOCK_RESERVATION_STARTED,
        EventType.STOCK_RESERVED,
        EventType.STOCK_DECIDED,
        EventType.STOCK_BACKORDERED,
        EventType.ORDER_CHANGED,
        EventType.PAYMENT_ON_DELIVERY,
        EventType.PAYMENT_COVERED_BY_RETURN,
        # The carrier's payout of cash on delivery: the shop hears `order.paid` once it is
        # paid out (PAYMENT_COLLECTED_ON_DELIVERY), and of a wrong one as an incident.
        EventType.PAYMENT_AWAITING_PAYOUT,
        EventType.PAYMENT_COD_TRANSFER_PENDING,
        EventType.PAYMENT_COD_PAYOUT_MISMATCH,
        EventType.PICKING_STARTED,
        EventType.SHIPMENT_BOOKING,
        EventType.DOCUMENTS_STARTED,
        EventType.DOCUMENTS_READY,
        EventType.TRANSIT_STARTED,
        EventType.CARRIER_INFO_RECEIVED,
        EventType.CARRIER_IN_TRANSIT,
        EventType.CARRIER_OUT_FOR_DELIVERY,
        EventType.CARRIER_ATTEMPT_FAIL,
        EventType.CARRIER_AVAILABLE_FOR_PICKUP,
        EventType.PARCEL_RETURNING,
        EventType.PARCEL_RETURNED,
        EventType.PARCEL_LOST,
        EventType.PARCEL_DAMAGED,
        EventType.PARCEL_DECIDED,
        EventType.ORDER_RESHIPPED,
        EventType.STOCK_RESTOCKED,
        EventType.PICKUP_READY,
        EventType.FEEDBACK_SCHEDULED,
        EventType.FEEDBACK_REQUESTED,
        EventType.FEEDBACK_NONE,
        EventType.FEEDBACK_RECEIVED,
        EventType.ORDER_COMPLETED,
        EventType.SLA_SILENCE_BREACHED,
        EventType.STEP_RESOLVED,
        EventType.RETURN_REFUSED,
        EventType.RETURN_AWAITING_APPROVAL,
        EventType.RETURN_REJECTED,
        EventType.RETURN_LABEL_CREATED,
        EventType.RETURN_IN_TRANSIT,
        EventType.RETURN_INSPECTED,
        EventType.RETURN_RESTOCKED,
        EventType.RETURN_STEP_RESOLVED,
    }
)


@dataclass(frozen=True)
class Receiver:
    """A receiver's URL resolved once: the address to connect to, the first address of the
    name that is not public (if any), and the URL to that address (the name goes in Host and
    TLS's SNI)."""

    host: str
    netloc: str  # the name and port as the URL gives them: the Host header
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    not_public: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    url: str


async def resolved(url: str) -> Receiver | str:
    """The receiver, resolved (a Receiver), or why it cannot be reached now (a str)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"{host} does not resolve: {exc}"
    addresses = [ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in found]
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    port = f":{parts.port}" if parts.port else ""
    return Receiver(
        host=host,
        netloc=parts.netloc.rpartition("@")[2],
        address=address,
        not_public=next((a for a in addresses if not a.is_global), None),
        url=parts._replace(netloc=f"{shown}{port}").geturl(),
    )


async def private_receiver(url: str) -> str | None:
    """Why `url` may not receive the shop's events outside the devstack: its host is, or
    resolves to, an address that is not public (loopback, private, link-local, reserved:
    the worker's own network). None: public, or not resolvable now (the attempt fails on its
    own and is retried). Checked when a subscription is written and at every attempt, where
    the attempt then connects to the address checked (a name may resolve elsewhere later,
    or answer a second look-up otherwise: DNS rebinding)."""
    receiver = await resolved(url)
    if isinstance(receiver, str) or receiver.not_public is None:
        return None
    return f"{receiver.host} is not a public address ({receiver.not_public})"


# What an order awaiting action waits for, by the step that made it wait.
AWAITS = {
    EventType.REVIEW_REQUESTED: WaitingFor.OPERATOR_CONFIRMATION,
    EventType.PAYMENT_REQUESTED: WaitingFor.PAYMENT,
    EventType.STOCK_PARTIAL: WaitingFor.STOCK_DECISION,
    EventType.PICKING_NEEDS_OPERATOR: WaitingFor.STOCK_DECISION,
    EventType.STEP_FAILED: WaitingFor.INCIDENT_RESOLUTION,
}


class SubscribedTypes:
    """The event types some active subscription wants, as read at most `TTL` seconds ago: a
    hint that lets a timeline step no subscription wants skip a transaction. Never the last
    word: the step's own statement checks the subscriptions as they are (activities/orders.py,
    `STEP`), so a subscription newer than this still gets every event from its creation on."""

    TTL = 10.0

    def __init__(self) -> None:
        self._types: frozenset[str] = frozenset()
        self._read_at = -self.TTL

    async def wants(self, engine: AsyncEngine, types: list[str]) -> bool:
        if time.monotonic() - self._read_at > self.TTL:
            async with engine.connect() as connection:
                rows = await connection.execute(SUBSCRIBED_TYPES)
                self._types = frozenset(row[0] for row in rows)
            self._read_at = time.monotonic()
        return not self._types.isdisjoint(types)

    def forget(self) -> None:
        """Read again next time (a step found a subscription this did not know)."""
        self._read_at = -self.TTL


SUBSCRIBED_TYPES = text(
    "SELECT DISTINCT jsonb_array_elements_text(events) FROM webhook_subscriptions WHERE active"
)


async def record(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    type: ShopEventType,
    at: datetime,
    data: dict[str, Any],
) -> bool:
    """Queue one event for every subscription that wants it, in the caller's transaction
    (the caller has written, and so locked, the order's row). False: nobody wants it."""
    order = await session.get(Order, order_id)
    assert order is not None
    wanted = (
        await session.exec(
            select(WebhookSubscription.id).where(
                col(WebhookSubscription.active),
                col(WebhookSubscription.events).contains([type.value]),
                or_(
                    and_(
                        col(WebhookSubscription.for_key_id).is_(None),
                        col(WebhookSubscription.connector_id).is_(None),
                    ),
                    # (`== None` would be IS NULL: every connector's write-back too.)
                    false()
                    if order.created_by_key_id is None
                    else WebhookSubscription.for_key_id == order.created_by_key_id,
                    # A marketplace's write-back: the orders its connector brought.
                    col(WebhookSubscription.connector_id).in_(
                        select(OrderSource.connector_id).where(OrderSource.order_id == order.id)
                    ),
                ),
            )
        )
    ).all()
    if not wanted:
        return False
    event_id = uuid.uuid4()
    payload = {
        "id": str(event_id),
        "type": type.value,
        "created_at": at.isoformat(),
        "data": {
            "order_id": str(order.id),
            "number": order.number,
            "stage": order.stage,
            "status": order.status,
            **data,
        },
    }
    event = ShopEvent(
        id=event_id, order_id=order.id, type=type.value, created_at=at, payload=payload
    )
    session.add(event)
    await session.flush()
    assert event.seq is not None
    session.add_all(
        ShopDelivery(subscription_id=subscription, event_seq=event.seq, order_id=order.id)
        for subscription in wanted
    )
    return True


async def record_timeline_step(
    session: AsyncSession, *, order_id: uuid.UUID, entry: TimelineEntry
) -> None:
    """The shop's events for one new timeline row, in the transaction that wrote it."""
    for type in TIMELINE.get(EventType(entry.type), ()):
        data = await _timeline_data(session, order_id, entry, type)
        await record(session, order_id=order_id, type=type, at=entry.at, data=data)


async def _timeline_data(
    session: AsyncSession, order_id: uuid.UUID, entry: TimelineEntry, type: ShopEventType
) -> dict[str, Any]:
    """What each type says beyond the order's number, stage and status: codes, amounts,
    dates, the carrier's tracking — never a person's name, e-mail, phone or address, and
    never free text (notes, a carrier's remark, an incident's summary)."""
    detail, order = entry.detail, await session.get(Order, order_id)
    assert order is not None
    if type in (ShopEventType.RECEIVED, ShopEventType.CONFIRMED):
        data: dict[str, Any] = {
            "total": str(order.total),
            "currency": order.currency,
            "delivery_method": order.delivery_method,
            "payment_method": order.payment_method,
        }
        if type == ShopEventType.CONFIRMED:
            data["expected_date"] = detail.get("expected_date")
        return data
    if type == ShopEventType.AWAITING_ACTION:
        return {"waiting_for": AWAITS[EventType(entry.type)].value}
    if type == ShopEventType.PAID:
        return {
            "amount": detail.get("amount", str(order.total)),
            "currency": order.currency,
            "payment_method": order.payment_method,
        }
    if type == ShopEventType.PAYMENT_FAILED:
        return {"reason": detail.get("reason") or "other"}
    if type == ShopEventType.SHIPPED:
        refs = await session.get(OrderProviderRefs, order_id)
        return {
            "carrier": detail.get("carrier"),
            "tracking_number": detail.get("tracking_number"),
            "tracking_url": refs.tracking_url if refs else None,
        }
    if type == ShopEventType.DELIVERED:
        return {"delivered_at": entry.at.isoformat()}
    if type == ShopEventType.DELAYED:
        reason = {
            EventType.ORDER_DELAYED: delay_reason(detail.get("reason", "")).value,
            EventType.TRANSIT_NO_NEWS: "carrier_silent",
        }.get(EventType(entry.type), "carrier_delay")
        return {"reason": reason, "new_date": detail.get("new_date")}
    if type == ShopEventType.CANCELLED:
        return await _cancellation(session, order, entry)
    if type == ShopEventType.REFUNDED:
        # An operator's refund names its reason; the one for items that were not packed, none.
        reason = detail.get("reason", "not_packed")
        return {"amount": detail.get("amount"), "currency": order.currency, "reason": reason}
    if type.value.startswith("return."):
        return _return_data(type, detail, order.currency)
    if type == ShopEventType.INCIDENT_OPENED:
        cause = detail.get("cause")
        if cause is None:  # a step that failed for good: its incident says why
            incident = (
                await session.exec(
                    select(Incident).where(
                        Incident.order_id == order_id, Incident.key == detail.get("incident", "")
                    )
                )
            ).first()
            cause = incident.cause if incident else "system"
        return {"cause": cause, "incident_stage": entry.stage.value}
    return {}


def _return_data(type: ShopEventType, detail: dict[str, Any], currency: str) -> dict[str, Any]:
    """A return's number and id, and the codes and amounts of its step (never the comment)."""
    data: dict[str, Any] = {
        "return_number": detail.get("return"),
        "return_id": detail.get("return_id"),
    }
    if type == ShopEventType.RETURN_REQUESTED:
        data |= {"reason": detail.get("reason"), "resolution": detail.get("resolution")}
    elif type == ShopEventType.RETURN_DECLINED:
        data["decline"] = detail.get("decline")
    elif type == ShopEventType.RETURN_REFUNDED:
        # by_hand: the order was paid in cash; a manager pays the amount back.
        data |= {
            "amount": detail.get("amount"),
            "currency": currency,
            "by_hand": detail.get("by_hand") == "yes",
        }
    elif type == ShopEventType.RETURN_EXCHANGED:
        data |= {
            "exchange_number": detail.get("order"),
            "exchange_order_id": detail.get("order_id"),
        }
    return data


async def _cancellation(
    session: AsyncSession, order: Order, entry: TimelineEntry
) -> dict[str, Any]:
    refunded = (
        await session.exec(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.order_id == order.id)
        )
    ).one()
    data: dict[str, Any] = {
        "reason": "invalid"
        if entry.type == EventType.ORDER_INVALID
        else entry.detail.get("reason", "other"),
        "refunded": str(Decimal(refunded).quantize(Decimal("0.01"))),
        "currency": order.currency,
    }
    if entry.actor == "customer":
        chosen = (
            await session.exec(
                select(OrderNote.text)
                .where(
                    OrderNote.order_id == order.id,
                    OrderNote.author == "customer",
                    OrderNote.action == Action.CANCEL,
                )
                .order_by(col(OrderNote.id).desc())
            )
        ).first()
        data["customer_reason"] = chosen
    return data


# --- delivering -----------------------------------------------------------------------------

# Claim what is due: the oldest pending delivery of each order for each receiver (an earlier
# one pending, or in flight, blocks the later), at most `free` of a receiver (what is left of
# its concurrency in this process), none of a receiver this process rests from, `batch` in
# all. Each claimed one is leased: its next attempt moves past the attempt's time limit, so
# no other process takes it meanwhile, and one whose process died mid-POST is due again when
# the lease ends. Two processes claiming at once: the second's UPDATE re-reads the row the
# first leased, finds it no longer due, and leaves it.
CLAIM = text(
    """
    WITH ranked AS (
      SELECT d.id, d.next_attempt_at, row_number() OVER (
          PARTITION BY d.subscription_id ORDER BY d.next_attempt_at, d.id) AS n,
        COALESCE(
          (SELECT b.free FROM unnest(CAST(:busy AS uuid[]), CAST(:free AS int[])) AS b(sub, free)
           WHERE b.sub = d.subscription_id),
          :per_receiver) AS free
      FROM shop_deliveries d
      JOIN webhook_subscriptions s ON s.id = d.subscription_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.active
        AND d.subscription_id <> ALL(CAST(:resting AS uuid[]))
        AND NOT EXISTS (
          SELECT 1 FROM shop_deliveries earlier
          WHERE earlier.subscription_id = d.subscription_id AND earlier.order_id = d.order_id
            AND earlier.event_seq < d.event_seq AND earlier.status = 'pending')
    ), chosen AS (
      SELECT id FROM ranked WHERE n <= free ORDER BY next_attempt_at LIMIT :batch
    )
    UPDATE shop_deliveries d
    SET next_attempt_at = now() + make_interval(secs => :lease)
    FROM chosen, webhook_subscriptions s, shop_events e
    WHERE d.id = chosen.id AND d.status = 'pending' AND d.next_attempt_at <= now()
      AND s.id = d.subscription_id AND e.seq = d.event_seq
    RETURNING d.id, d.subscription_id, d.attempts, d.queued_at, s.url, s.secret, s.connector_id,
      e.payload
    """
)
LEASE_MARGIN_SECONDS = 30  # beyond the attempt's limit: time to record its answer


class ShopEventDispatcher:
    """Each receiver on its own: at most `shop_events_per_receiver` of its deliveries in
    flight (per process), and after a failure it rests for the backoff of its failures in a
    row (5 s doubling to 10 min), so a slow or failing receiver delays its own events only;
    every other receiver's are claimed and sent meanwhile. At most `shop_events_batch` in
    flight in all."""

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        settings: Settings,
        meter: MetricMeter | None = None,
    ) -> None:
        self._engine = engine
        self._http = http
        self._settings = settings
        self._meter = meter
        self._in_flight: dict[uuid.UUID, int] = {}  # deliveries being sent, per subscription
        self._failures: dict[uuid.UUID, int] = {}  # failed attempts in a row, per subscription
        self._resting: dict[uuid.UUID, float] = {}  # per subscription: until (loop time)
        self._settled = asyncio.Event()  # an attempt ended: its receiver may take the next

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set (attempts under way are finished); a database outage
        (or any failed round) is waited out, never fatal to the worker."""
        log.info("shop event dispatcher started")
        attempts: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            self._settled.clear()  # before claiming: an attempt ending meanwhile wakes the wait
            try:
                claimed = await self.claim()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("shop event dispatcher: database unavailable", error=str(exc))
                claimed = []
            except Exception:  # a fault of ours must not stop the worker's orders
                log.exception("shop event dispatcher: round failed")
                claimed = []
            for row in claimed:
                attempt = asyncio.create_task(self._attempt(row))
                attempts.add(attempt)
                attempt.add_done_callback(attempts.discard)
            if not claimed:
                waits = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._settled.wait()),
                ]
                await asyncio.wait(
                    waits,
                    timeout=self._settings.shop_events_poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for wait in waits:
                    wait.cancel()
        if attempts:
            await asyncio.wait(attempts)

    async def claim(self) -> list[Row[Any]]:
        """Lease what is due now within each receiver's concurrency and the process's."""
        settings = self._settings
        room = settings.shop_events_batch - sum(self._in_flight.values())
        now = asyncio.get_running_loop().time()
        self._resting = {sub: until for sub, until in self._resting.items() if until > now}
        if room <= 0:
            return []
        busy = list(self._in_flight)
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    CLAIM,
                    {
                        "busy": busy,
                        "free": [
                            settings.shop_events_per_receiver - self._in_flight[s] for s in busy
                        ],
                        "per_receiver": settings.shop_events_per_receiver,
                        "resting": list(self._resting),
                        "batch": room,
                        "lease": settings.shop_events_timeout_seconds + LEASE_MARGIN_SECONDS,
                    },
                )
            ).all()
        for row in rows:
            self._in_flight[row.subscription_id] = self._in_flight.get(row.subscription_id, 0) + 1
        return list(rows)

    async def _attempt(self, row: Row[Any]) -> None:
        """Post one claimed delivery and record the answer; its receiver rests after a failure."""
        subscription = row.subscription_id
        try:
            if row.connector_id is None:
                answer, final = await self._post(row), False
            else:
                answer, final = await self._write_back(row)
            outcome = await self._settle(row, answer, final=final)
            if outcome == "delivered":
                self._failures.pop(subscription, None)
                self._resting.pop(subscription, None)
            elif (now := asyncio.get_running_loop().time()) >= self._resting.get(subscription, 0):
                # The first failure of a wave sets the rest; the others sent with it add none.
                failures = self._failures[subscription] = self._failures.get(subscription, 0) + 1
                self._resting[subscription] = now + self.backoff(failures).total_seconds()
            metrics.shop_event_delivery(outcome, self._meter)
        except Exception:  # the lease ends and it is tried again: never fatal to the worker
            log.exception("shop event delivery: attempt failed", delivery=row.id)
        finally:
            left = self._in_flight.get(subscription, 1) - 1
            if left:
                self._in_flight[subscription] = left
            else:
                self._in_flight.pop(subscription, None)
            self._settled.set()

    async def _post(self, row: Row[Any]) -> tuple[int | None, str | None]:
        """The receiver's status code (None when there was no answer) and what went wrong."""
        payload = row.payload
        body = body_of(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "orderflow-events/1",
            HEADER: sign(row.secret, body),
            "Orderflow-Event-Id": payload["id"],
            "Orderflow-Event-Type": payload["type"],
        }
        limit = self._settings.shop_events_timeout_seconds
        receiver = await resolved(row.url)
        if isinstance(receiver, str):
            return None, receiver
        if not self._settings.devstack and receiver.not_public is not None:
            return None, f"refused: {receiver.host} is not a public address ({receiver.not_public})"
        try:
            # The whole attempt within the limit (httpx's timeout is per read: a receiver
            # trickling its answer would hold its lane for ever), and the answer's status
            # only: its body is never read. To the address just checked (never a second
            # look-up that may answer otherwise), under the receiver's name (Host, TLS), on
            # a connection of its own: a pooled one to that address may speak TLS for
            # another name that shares it.
            async with asyncio.timeout(limit):
                async with self._http.stream(
                    "POST",
                    receiver.url,
                    content=body,
                    headers={**headers, "Host": receiver.netloc, "Connection": "close"},
                    timeout=limit,
                    extensions={"sni_hostname": receiver.host},
                ) as answer:
                    status_code = answer.status_code
        except TimeoutError:
            return None, f"no answer within {limit:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status_code < 300:
            return status_code, None
        return status_code, f"HTTP {status_code}"

    async def _write_back(self, row: Row[Any]) -> tuple[tuple[int | None, str | None], bool]:
        """Tell a connector's marketplace of the event in its own API (activities/
        marketplaces.py) instead of posting it: the answer as `_post` gives it, and whether it
        is final (the marketplace refused for good: failed at once, no retry)."""
        async with open_session(self._engine) as session:
            told = await write_back(
                session,
                connector_id=row.connector_id,
                event=row.payload,
                settings=self._settings,
                http=self._http,
            )
        return (200 if told.error is None else None, told.error), told.final

    async def _settle(
        self, row: Row[Any], answer: tuple[int | None, str | None], *, final: bool = False
    ) -> str:
        status_code, error = answer
        attempts = row.attempts + 1
        async with self._engine.begin() as conn:
            now = await conn.scalar(text("SELECT now()"))  # the database's clock, as the claim's
            values: dict[str, Any] = {
                "attempts": attempts,
                "last_attempt_at": now,
                "last_status_code": status_code,
                "last_error": error,
            }
            if error is None:
                outcome = "delivered"
                values |= {"status": "delivered", "delivered_at": now}
            elif final or now >= row.queued_at + self._settings.shop_events_retry_for:
                outcome = "failed"
                values["status"] = "failed"
            else:
                outcome = "retrying"
                values["next_attempt_at"] = now + self.backoff(attempts)
            await conn.execute(
                update(ShopDelivery).where(col(ShopDelivery.id) == row.id).values(**values)
            )
        log.info(
            "shop event delivery",
            outcome=outcome,
            event_id=row.payload["id"],
            status=status_code,
            attempts=attempts,
        )
        return outcome

    def backoff(self, attempts: int) -> timedelta:
        """Exponential from `retry_base`, capped at `retry_max`, ±20 % so receivers that come
        back are not hit by every retry at once."""
        base, cap = self._settings.shop_events_retry_base, self._settings.shop_events_retry_max
        wait = min(base * 2 ** min(attempts - 1, 30), cap)
        return wait * random.uniform(0.8, 1.2)
