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

Delivering (`ShopEventDispatcher`). A loop in each worker process claims what is due with
`SELECT ... FOR UPDATE SKIP LOCKED`, posts each claimed event (signed, schema/shop_events.py)
and records the answer in the same transaction, which holds the rows' locks for the few
seconds of the POSTs: several processes share the queue and never send one delivery at the
same time. In order per order: a delivery is due only when no earlier event of the same
order waits for the same receiver, so an order's events arrive in order even across
processes, while other orders go on. At least once: a delivery is done only when the
receiver answered 2xx; a process that dies mid-POST leaves the row pending (its lock goes
with its connection) and another sends it again — the event's `id` lets the receiver drop
the repeat. A failure waits with exponential backoff and jitter (5 s doubling to 10 min by
default) and is retried until `retry_for` (72 h by default, at least a day) has passed since
it was queued; then it is `failed`, later events of that order go on, and it can be
redelivered by hand (the API, the CLI, the console).

Why not Temporal activities: the state of each delivery (attempts, next try, last answer)
must be in Postgres anyway for the delivery log, the ordering rule and redelivery; the
outbox row is written in the read model's transaction, where no workflow can be signalled;
and a workflow per event or per subscription would add history and timers for what one
indexed query and one row update do. Temporal's retries would add nothing the row's backoff
does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import func, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.common import MetricMeter

from activities import metrics
from activities.messages import delay_reason
from schema.contracts import TimelineEntry, WaitingFor
from schema.shop_events import HEADER, ShopEventType, body_of, sign
from schema.tables import (
    Incident,
    Order,
    OrderNote,
    OrderProviderRefs,
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


async def private_receiver(url: str) -> str | None:
    """Why `url` may not receive the shop's events outside the devstack: its host is, or
    resolves to, an address that is not public (loopback, private, link-local, reserved:
    the worker's own network). None: public, or not resolvable now (the attempt fails on its
    own and is retried). Checked when a subscription is written and before every attempt
    (a name may resolve elsewhere later)."""
    host = urlsplit(url).hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return None
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            return f"{host} is not a public address ({address})"
    return None


# What an order awaiting action waits for, by the step that made it wait.
AWAITS = {
    EventType.REVIEW_REQUESTED: WaitingFor.OPERATOR_CONFIRMATION,
    EventType.PAYMENT_REQUESTED: WaitingFor.PAYMENT,
    EventType.STOCK_PARTIAL: WaitingFor.STOCK_DECISION,
    EventType.PICKING_NEEDS_OPERATOR: WaitingFor.STOCK_DECISION,
    EventType.STEP_FAILED: WaitingFor.INCIDENT_RESOLUTION,
}


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
                    col(WebhookSubscription.for_key_id).is_(None),
                    WebhookSubscription.for_key_id == order.created_by_key_id,
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

# What is due: the oldest pending delivery of each order for each receiver (an earlier one
# pending blocks the later), locked so that no other process takes it meanwhile.
DUE = text(
    """
    SELECT d.id, d.attempts, d.queued_at, s.url, s.secret, e.payload, now() AS now
    FROM shop_deliveries d
    JOIN webhook_subscriptions s ON s.id = d.subscription_id
    JOIN shop_events e ON e.seq = d.event_seq
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.active
      AND NOT EXISTS (
        SELECT 1 FROM shop_deliveries earlier
        WHERE earlier.subscription_id = d.subscription_id AND earlier.order_id = d.order_id
          AND earlier.event_seq < d.event_seq AND earlier.status = 'pending')
    ORDER BY d.next_attempt_at
    LIMIT :batch
    FOR UPDATE OF d SKIP LOCKED
    """
)


class ShopEventDispatcher:
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

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; a database outage (or any failed round) is waited
        out, never fatal to the worker."""
        log.info("shop event dispatcher started")
        while not stop.is_set():
            try:
                sent = await self.deliver_due()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("shop event dispatcher: database unavailable", error=str(exc))
                sent = 0
            except Exception:  # a fault of ours must not stop the worker's orders
                log.exception("shop event dispatcher: round failed")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.shop_events_poll_seconds)

    async def deliver_due(self) -> int:
        """One round: claim what is due, post it, record each answer. How many were tried."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(DUE, {"batch": self._settings.shop_events_batch})).all()
            if not rows:
                return 0
            answers = await asyncio.gather(*(self._post(row) for row in rows))
            outcomes = [
                await self._settle(conn, row, answer)
                for row, answer in zip(rows, answers, strict=True)
            ]
        for outcome in outcomes:
            metrics.shop_event_delivery(outcome, self._meter)
        return len(rows)

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
        if not self._settings.devstack and (refusal := await private_receiver(row.url)):
            return None, f"refused: {refusal}"
        try:
            # The whole attempt within the limit (httpx's timeout is per read: a receiver
            # trickling its answer would hold the round, and every other shop's events,
            # for ever), and the answer's status only: its body is never read.
            async with asyncio.timeout(limit):
                async with self._http.stream(
                    "POST", row.url, content=body, headers=headers, timeout=limit
                ) as answer:
                    status_code = answer.status_code
        except TimeoutError:
            return None, f"no answer within {limit:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status_code < 300:
            return status_code, None
        return status_code, f"HTTP {status_code}"

    async def _settle(
        self, conn: AsyncConnection, row: Row[Any], answer: tuple[int | None, str | None]
    ) -> str:
        status_code, error = answer
        now = row.now  # the database's clock, as `queued_at` and the next round's scan
        attempts = row.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": status_code,
            "last_error": error,
        }
        if error is None:
            outcome = "delivered"
            values |= {"status": "delivered", "delivered_at": now}
        elif now >= row.queued_at + self._settings.shop_events_retry_for:
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
