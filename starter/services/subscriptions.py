"""Order events for the shop's backend, as the API, the CLI and the console manage them:
subscriptions (the signing secret shown once), the delivery log, and redelivery.

Who sees what: an admin's subscription hears of every order and admins manage every
subscription; a service key's hears of the orders that key created, and the key manages
only its own. Deliveries themselves are made by the workers' dispatcher
(activities/shop_events.py); redelivery queues a delivery again, in its order's place.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, false, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.shop_events import private_receiver
from schema.api.subscriptions import (
    DeliveryOut,
    DeliveryPage,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from schema.tables import ApiKey, ShopDelivery, ShopEvent, WebhookSubscription
from settings import Settings
from starter.services.access import Principal, Role, audit
from starter.services.errors import ActionRefused, InputRefused, SubscriptionNotFound


def _visible(caller: Principal) -> Any:
    """The subscriptions `caller` may see and change."""
    if caller.role == Role.ADMIN:
        return True
    if caller.key_id is None:  # only a key has orders of its own (and `= NULL` is every admin's)
        return false()
    return col(WebhookSubscription.for_key_id) == caller.key_id


async def _counts(session: AsyncSession, ids: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], int]:
    rows = await session.exec(
        select(ShopDelivery.subscription_id, ShopDelivery.status, func.count())
        .where(col(ShopDelivery.subscription_id).in_(ids))
        .where(col(ShopDelivery.status).in_(("pending", "failed")))
        .group_by(col(ShopDelivery.subscription_id), col(ShopDelivery.status))
    )
    return {(sid, status): count for sid, status, count in rows.all()}


def _out(row: WebhookSubscription, counts: dict[tuple[uuid.UUID, str], int]) -> dict[str, Any]:
    assert row.created_at is not None
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "active": row.active,
        "scope": "connector_orders"
        if row.connector_id is not None
        else "all_orders"
        if row.for_key_id is None
        else "own_orders",
        "created_by": row.created_by,
        "created_at": row.created_at,
        "pending": counts.get((row.id, "pending"), 0),
        "failed": counts.get((row.id, "failed"), 0),
    }


def _logged(url: str) -> str:
    """A receiver's URL as the audit log keeps it: without its query (which may hold a
    receiver's own token)."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


async def _check_url(url: str, settings: Settings) -> None:
    """Outside the devstack: https, to a public address (never the worker's own network)."""
    if settings.devstack:
        return
    if not url.startswith("https://"):
        raise InputRefused(
            "url", "the shop's receiver must be https:// (events are signed, not secret)"
        )
    if refusal := await private_receiver(url):
        raise InputRefused("url", f"the shop's receiver must be on the internet: {refusal}")


async def create_subscription(
    session: AsyncSession, *, caller: Principal, body: SubscriptionIn, settings: Settings
) -> SubscriptionCreated:
    """A new receiver; its secret is in this answer only."""
    await _check_url(body.url, settings)
    if caller.role != Role.ADMIN and caller.key_id is None:
        raise ActionRefused("a backend service subscribes with its API key (its own orders)")
    row = WebhookSubscription(
        url=body.url,
        events=sorted({event.value for event in body.events}),
        secret=f"whsec_{secrets.token_urlsafe(32)}",
        # A service key hears of its own orders; an admin of every order.
        for_key_id=caller.key_id if caller.role == Role.SERVICE else None,
        created_by=caller.actor,
    )
    session.add(row)
    await audit(session, caller, "subscription.create", str(row.id), url=_logged(body.url))
    await session.commit()
    await session.refresh(row)
    return SubscriptionCreated(**_out(row, {}), secret=row.secret)


async def list_subscriptions(session: AsyncSession, *, caller: Principal) -> list[SubscriptionOut]:
    rows = (
        await session.exec(
            select(WebhookSubscription)
            .where(_visible(caller))
            .order_by(col(WebhookSubscription.created_at))
        )
    ).all()
    counts = await _counts(session, [row.id for row in rows])
    return [SubscriptionOut(**_out(row, counts)) for row in rows]


async def _find(
    session: AsyncSession, caller: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    row = (
        await session.exec(
            select(WebhookSubscription).where(
                WebhookSubscription.id == subscription_id, _visible(caller)
            )
        )
    ).first()
    if row is None:
        raise SubscriptionNotFound(subscription_id)
    return row


async def get_subscription(
    session: AsyncSession, *, caller: Principal, subscription_id: uuid.UUID
) -> SubscriptionOut:
    row = await _find(session, caller, subscription_id)
    return SubscriptionOut(**_out(row, await _counts(session, [row.id])))


async def update_subscription(
    session: AsyncSession,
    *,
    caller: Principal,
    subscription_id: uuid.UUID,
    body: SubscriptionPatch,
    settings: Settings,
) -> SubscriptionOut:
    row = await _find(session, caller, subscription_id)
    if row.connector_id is not None and (body.url is not None or body.events is not None):
        raise ActionRefused(
            "a connector's write-back: its marketplace's API (settings) and the events it "
            "hears are the connector's; pause it or delete it"
        )
    changes: dict[str, Any] = {}
    if body.url is not None:
        await _check_url(body.url, settings)
        changes["url"] = body.url
    if body.events is not None:
        changes["events"] = sorted({event.value for event in body.events})
    if body.active is not None:
        if body.active and row.for_key_id is not None:
            key = await session.get(ApiKey, row.for_key_id)
            if key is None or key.revoked_at is not None:
                raise ActionRefused(
                    "the key this subscription belongs to is revoked: it stays paused "
                    "(the shop subscribes again with its new key)"
                )
        changes["active"] = body.active
    if changes:
        await session.execute(
            update(WebhookSubscription)
            .where(col(WebhookSubscription.id) == row.id)
            .values(**changes, updated_at=func.now())
        )
        logged = {**changes, **({"url": _logged(body.url)} if body.url is not None else {})}
        await audit(session, caller, "subscription.update", str(row.id), **logged)
        await session.commit()
        await session.refresh(row)
    return SubscriptionOut(**_out(row, await _counts(session, [row.id])))


async def delete_subscription(
    session: AsyncSession, *, caller: Principal, subscription_id: uuid.UUID
) -> None:
    """Gone, with its delivery log; what it has not delivered will not be."""
    row = await _find(session, caller, subscription_id)
    await session.execute(delete(WebhookSubscription).where(col(WebhookSubscription.id) == row.id))
    await audit(session, caller, "subscription.delete", str(row.id), url=_logged(row.url))
    await session.commit()


def _delivery(delivery: ShopDelivery, event: ShopEvent) -> DeliveryOut:
    assert delivery.id is not None and delivery.queued_at is not None
    return DeliveryOut(
        id=delivery.id,
        event_id=event.id,
        type=event.type,  # type: ignore[arg-type]  # one of ShopEventType
        order_id=delivery.order_id,
        status=delivery.status,  # type: ignore[arg-type]  # pending | delivered | failed
        attempts=delivery.attempts,
        queued_at=delivery.queued_at,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
    )


async def deliveries(
    session: AsyncSession,
    *,
    caller: Principal,
    subscription_id: uuid.UUID,
    status: str | None = None,
    order_id: uuid.UUID | None = None,
    before: int | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """The delivery log, newest first: each event, its attempts and the receiver's last answer."""
    await _find(session, caller, subscription_id)
    query = (
        select(ShopDelivery, ShopEvent)
        .join(ShopEvent, col(ShopEvent.seq) == col(ShopDelivery.event_seq))
        .where(ShopDelivery.subscription_id == subscription_id)
    )
    if status is not None:
        query = query.where(ShopDelivery.status == status)
    if order_id is not None:
        query = query.where(ShopDelivery.order_id == order_id)
    if before is not None:
        query = query.where(col(ShopDelivery.id) < before)
    rows = (await session.exec(query.order_by(col(ShopDelivery.id).desc()).limit(limit + 1))).all()
    items = [_delivery(delivery, event) for delivery, event in rows[:limit]]
    return DeliveryPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def redeliver(
    session: AsyncSession, *, caller: Principal, subscription_id: uuid.UUID, delivery_id: int
) -> DeliveryOut:
    """Queue a delivery again (delivered or given up): sent at the dispatcher's next round,
    after whatever of the same order is still pending before it; retried again for the full
    window. The body and the event's id are the same as before."""
    await _find(session, caller, subscription_id)
    found = (
        await session.exec(
            select(ShopDelivery, ShopEvent)
            .join(ShopEvent, col(ShopEvent.seq) == col(ShopDelivery.event_seq))
            .where(ShopDelivery.id == delivery_id, ShopDelivery.subscription_id == subscription_id)
            .with_for_update(of=ShopDelivery)
        )
    ).first()
    if found is None:
        raise SubscriptionNotFound(delivery_id, "delivery")
    delivery, event = found
    await session.execute(
        update(ShopDelivery)
        .where(col(ShopDelivery.id) == delivery_id)
        .values(status="pending", queued_at=func.now(), next_attempt_at=func.now())
    )
    await audit(
        session, caller, "subscription.redeliver", str(subscription_id), delivery=delivery_id
    )
    await session.commit()
    await session.refresh(delivery)
    return _delivery(delivery, event)
