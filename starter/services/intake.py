"""Orders from a shop platform, through the same intake as `POST /v1/orders`
(`accept_order`): a webhook's verified with the connector's secret over the raw body and
deduplicated by the source's delivery id; a webhook's and a polled marketplace's
(activities/marketplaces.py, given `take_source_order` by the worker) alike deduplicated by
the source's order id and mapped by the source's module in schema/intake. An order that
cannot be mapped becomes an intake failure in the operator queue, its raw payload kept in
Postgres only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.connectors import IntakeAck, IntakeFailureOut
from schema.api.fields import Role
from schema.intake import (
    ConnectorKind,
    MappingError,
    SourceOrder,
    prom,
    shopify,
    signature_matches,
    text,
    woocommerce,
)
from schema.tables import IntakeConnector, IntakeDelivery, IntakeFailure, Order, OrderSource
from schema.webhooks import BadSignature
from settings import Settings
from starter.services.access import Principal, audit
from starter.services.connectors import credential, find_connector
from starter.services.errors import (
    ConnectorNotFound,
    InputRefused,
    IntakeFailureNotFound,
    OrderNumberConflict,
)
from starter.services.orders import accept_order
from starter.services.temporal import OrderWorkflows

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WebhookSource:
    """What differs between the sources that post their orders: headers and topics."""

    signature_header: str
    delivery_header: str
    topic_header: str
    topics: frozenset[str]


WEBHOOK_SOURCES = {
    ConnectorKind.WOOCOMMERCE: WebhookSource(
        woocommerce.SIGNATURE_HEADER,
        woocommerce.DELIVERY_HEADER,
        woocommerce.TOPIC_HEADER,
        woocommerce.TOPICS,
    ),
    ConnectorKind.SHOPIFY: WebhookSource(
        shopify.SIGNATURE_HEADER, shopify.DELIVERY_HEADER, shopify.TOPIC_HEADER, shopify.TOPICS
    ),
}

# Each kind's mapping: the connector's name, the source's order and the connector's settings.
MAPPERS: dict[ConnectorKind, Callable[[str, dict[str, Any], dict[str, Any]], SourceOrder]] = {
    ConnectorKind.WOOCOMMERCE: lambda name, payload, settings: woocommerce.map_order(
        name, payload, woocommerce.WooSettings(**settings)
    ),
    ConnectorKind.SHOPIFY: lambda name, payload, settings: shopify.map_order(
        name, payload, shopify.ShopifySettings(**settings)
    ),
    ConnectorKind.PROM: lambda name, payload, settings: prom.map_order(
        name, payload, prom.PromSettings(**settings)
    ),
}


def _header(headers: dict[str, str], name: str) -> str:
    value = headers.get(name.lower(), "")
    if len(value) > 128 or not value.isascii():
        raise InputRefused(name, "at most 128 ASCII characters")
    return value


async def _ensure_started(
    session: AsyncSession, workflows: OrderWorkflows, connector: IntakeConnector, source_id: str
) -> str | None:
    """The order already taken from this source order, its workflow started (a delivery
    retried after a failed start starts it now); None when none was taken."""
    source = (
        await session.exec(
            select(OrderSource).where(
                OrderSource.connector_id == connector.id,
                OrderSource.source_order_id == source_id,
            )
        )
    ).first()
    if source is None:
        return None
    order = await session.get(Order, source.order_id)
    assert order is not None
    await workflows.start(order_id=order.id, number=order.number)
    return str(order.id)


async def receive_order_webhook(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    settings: Settings,
    kind: ConnectorKind,
    name: str,
    headers: dict[str, str],
    body: bytes,
    ip: str | None,
) -> IntakeAck:
    connector = await find_connector(session, name=name)
    if connector.kind != kind or not connector.enabled:
        raise ConnectorNotFound(name)
    source = WEBHOOK_SOURCES[kind]
    if kind is ConnectorKind.WOOCOMMERCE and woocommerce.is_ping(body):
        return IntakeAck(outcome="ping")  # unsigned; nothing is stored
    given = _header(headers, source.signature_header)
    if not given or not signature_matches(
        credential(connector, "webhook_secret", settings), body, given
    ):
        raise BadSignature(f"{source.signature_header} does not match the body")
    delivery_id = _header(headers, source.delivery_header)
    if not delivery_id:
        raise InputRefused(source.delivery_header, "missing")
    if _header(headers, source.topic_header) not in source.topics:
        return IntakeAck(outcome="ignored")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise InputRefused("body", "not a JSON object")
    source_id = str(payload.get("id", ""))[:64]
    first = (
        await session.execute(
            insert(IntakeDelivery)
            .values(connector_id=connector.id, delivery_id=delivery_id, source_order_id=source_id)
            .on_conflict_do_nothing(index_elements=["connector_id", "delivery_id"])
            .returning(col(IntakeDelivery.id))
        )
    ).first()
    # The delivery's row commits with what it brought (the order, or the intake failure):
    # a delivery that failed half-way is taken afresh when the source retries it, and the
    # same delivery posted twice at once waits here for the first to commit.
    if first is None:  # the same delivery again: nothing changes
        taken = await _ensure_started(session, workflows, connector, source_id)
        await session.commit()
        return IntakeAck(outcome="duplicate", order_id=taken)
    return await take_source_order(
        session, workflows=workflows, connector=connector, payload=payload, ip=ip
    )


async def take_source_order(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    connector: IntakeConnector,
    payload: dict[str, Any],
    ip: str | None = None,
) -> IntakeAck:
    """One order as its source gave it (a webhook's body, an order a marketplace listed),
    through the intake every connector shares: an order already taken from this source
    order changes nothing (`duplicate`; its workflow started if a start failed before);
    else it is mapped by its kind's module and accepted as `POST /v1/orders` accepts one
    (`accepted`), or kept as an intake failure (`failed`)."""
    source_id = str(payload.get("id", ""))[:64]
    taken = await _ensure_started(session, workflows, connector, source_id)
    if taken is not None:
        # Another delivery or listing of an order already taken (order.updated included).
        await session.commit()
        return IntakeAck(outcome="duplicate", order_id=taken)

    principal = Principal(f"connector:{connector.name}", Role.SERVICE, ip)
    try:
        mapped = MAPPERS[ConnectorKind(connector.kind)](connector.name, payload, connector.settings)
    except MappingError as failed:
        # One open failure per source order: a later delivery that fails too updates it.
        failure = (
            await session.exec(
                select(IntakeFailure).where(
                    IntakeFailure.connector_id == connector.id,
                    IntakeFailure.source_order_id == source_id,
                    IntakeFailure.status == "open",
                )
            )
        ).first() or IntakeFailure(
            connector_id=connector.id, source_order_id=source_id, field="", message=""
        )
        failure.field, failure.message = failed.field[:200], failed.message[:500]
        failure.payload, failure.email = payload, _email_in(payload)
        session.add(failure)
        await session.flush()
        await audit(session, principal, "intake.failed", str(failure.id), field=failed.field)
        await session.commit()
        log.warning("intake mapping failed", connector=connector.name, field=failed.field)
        return IntakeAck(outcome="failed", failure_id=failure.id)
    try:
        order, _ = await accept_order(
            session,
            workflows=workflows,
            body=mapped.order,
            creator=principal,
            source=(connector.id, mapped.source_order_id),
        )
    except OrderNumberConflict:  # taken meanwhile by another delivery, as it then was
        return IntakeAck(outcome="duplicate")
    await _resolve_failures_of(session, connector.id, source_id, by=principal.actor)
    return IntakeAck(outcome="accepted", order_id=str(order.id))


def _email_in(payload: dict[str, Any]) -> str | None:
    """The customer's e-mail in a source's order (WooCommerce's billing, Shopify's order):
    what erasure finds the failure by."""
    billing = payload.get("billing")
    email = text(billing.get("email")) if isinstance(billing, dict) else ""
    return (email or text(payload.get("email"))).lower()[:320] or None


async def _resolve_failures_of(
    session: AsyncSession, connector_id: UUID, source_id: str, *, by: str
) -> None:
    """A source order taken at last (a later delivery, corrected at the source) settles its
    open failures, and their payloads go."""
    await session.execute(
        update(IntakeFailure)
        .where(
            col(IntakeFailure.connector_id) == connector_id,
            col(IntakeFailure.source_order_id) == source_id,
            col(IntakeFailure.status) == "open",
        )
        .values(status="resolved", payload=None, resolved_at=datetime.now(UTC), resolved_by=by)
    )
    await session.commit()


async def open_failures(session: AsyncSession, *, limit: int = 50) -> list[IntakeFailureOut]:
    rows = await session.exec(
        select(IntakeFailure, IntakeConnector.name)
        .join(IntakeConnector, col(IntakeConnector.id) == col(IntakeFailure.connector_id))
        .where(IntakeFailure.status == "open")
        .order_by(col(IntakeFailure.id).desc())
        .limit(limit)
    )
    return [
        IntakeFailureOut(
            id=failure.id or 0,
            connector=connector,
            source_order_id=failure.source_order_id,
            field=failure.field,
            message=failure.message,
            status="open",
            opened_at=failure.opened_at or datetime.now(UTC),
        )
        for failure, connector in rows.all()
    ]


async def resolve_failure(session: AsyncSession, *, caller: Principal, failure_id: int) -> None:
    """An operator settled it (took the order by hand, or decided against it): closed, and
    its payload deleted."""
    failure = await session.get(IntakeFailure, failure_id)
    if failure is None:
        raise IntakeFailureNotFound(failure_id)
    failure.status, failure.payload = "resolved", None
    failure.resolved_at, failure.resolved_by = datetime.now(UTC), caller.actor
    session.add(failure)
    await audit(session, caller, "intake.resolve", str(failure_id))
    await session.commit()
