"""Marketplaces whose orders orderflow polls (Prom.ua): their APIs, the polling activities
of `MarketplacePollWorkflow` (workflows/intake.py), and what the shop-events dispatcher tells
a marketplace as its orders move (`write_back`).

Polling. One Temporal schedule starts the short workflow every few minutes
(`ORDERFLOW_MARKETPLACE_POLL_INTERVAL`); it asks `polled_connectors` which connectors to
poll and `poll_orders` each. `poll_orders` lists the orders modified since the connector's
cursor (`intake_connectors.polled_to`), takes each through the same intake as the webhooks
(`take`: starter.services.intake.take_source_order, given by worker.py — it records the
order and starts its workflow, or keeps an intake failure; an order already taken changes
nothing), and only then moves the cursor to the newest `date_modified` taken. A marketplace
that is down or answers 5xx/429 fails the activity retryably; one that refuses the
connector's credentials (401, 403, or any other 4xx) is an intake failure of the connector
(no source order: `source_order_id` empty) in the operator queue and a non-retryable error;
the connector is not polled again until an operator resolves it (once its credentials are
set right).

Nothing of an order passes through Temporal: the activities return counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers import Provider, provider_error
from schema.api.connectors import IntakeAck
from schema.contracts import PolledConnectors, PollOrdersInput, PollOrdersResult
from schema.database import open_session
from schema.intake import ConnectorKind, prom
from schema.intake.credentials import CredentialUnusable, unseal
from schema.tables import IntakeConnector, IntakeFailure, OrderSource
from schema.vocabulary import ErrorType
from settings import Settings

log = structlog.get_logger(__name__)

POLLED_KINDS = frozenset({ConnectorKind.PROM})
# The intake failure of a connector itself (its credentials refused), not of one of its orders.
CONNECTOR_ITSELF = ""


class TakeOrder(Protocol):
    """The intake every connector shares (starter.services.intake.take_source_order, its
    workflows given): one source order recorded, its workflow started, or an intake failure."""

    def __call__(
        self, session: AsyncSession, *, connector: IntakeConnector, payload: dict[str, Any]
    ) -> Awaitable[IntakeAck]: ...


class PromApi:
    """Prom.ua's Public API (https://public-api.docs.prom.ua): Bearer token, JSON."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str) -> None:
        self._api = Provider("prom", http, base_url, headers={"Authorization": f"Bearer {token}"})

    async def orders_since(self, since: datetime) -> list[dict[str, Any]]:
        """Every order modified since `since` (Prom lists the newest first, a page at a
        time: the next page is the orders below the page's lowest id)."""
        orders: list[dict[str, Any]] = []
        params = {
            "last_modified_from": since.strftime("%Y-%m-%dT%H:%M:%S"),
            "limit": str(prom.PAGE),
        }
        while True:
            answer = await self._api.call("GET", "/orders/list", params=params)
            page = answer.get("orders") if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise provider_error("prom", "answered no orders list", retryable=True)
            orders += [order for order in page if isinstance(order, dict)]
            ids = [order["id"] for order in page if isinstance(order, dict) and "id" in order]
            if len(page) < prom.PAGE or not ids:
                return orders
            params = {**params, "last_id": str(min(ids))}

    async def tell(self, path: str, body: dict[str, Any]) -> str | None:
        """Send one status update; None when Prom took it, else why not (retried). Prom
        answers set_status 200 also when it changed nothing: only an id in its
        `processed_ids` was changed."""
        answer = await self._api.call("POST", f"/{path}", json=body)
        if not isinstance(answer, dict):
            return "prom answered no object"
        if "ids" in body:
            processed = answer.get("processed_ids") or []
            missing = [i for i in body["ids"] if i not in processed]
            if missing:
                errors = answer.get("errors") or {}
                return f"prom did not process {missing}: {str(errors)[:200]}"
        elif answer.get("error"):
            return f"prom refused {path}: {str(answer['error'])[:200]}"
        return None


def prom_api(connector: IntakeConnector, settings: Settings, http: httpx.AsyncClient) -> PromApi:
    """The connector's Prom API (CredentialUnusable when its token cannot be read)."""
    token = unseal(connector.credentials["api_token"], secret=settings.connector_secret)
    return PromApi(http, settings.prom_url, token)


def _modified(order: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(order.get("date_modified")))
    except ValueError:
        return None


@dataclass(frozen=True)
class WriteBack:
    """What became of telling a marketplace one event: `error` None when it took it;
    `final` when no retry can change the answer (its credentials refused)."""

    error: str | None
    final: bool = False


async def write_back(
    session: AsyncSession,
    *,
    connector_id: uuid.UUID,
    event: dict[str, Any],
    settings: Settings,
    http: httpx.AsyncClient,
) -> WriteBack:
    """Tell the connector's marketplace of one of its orders' events (the shop-events
    outbox's payload): Prom's set_status or save_declaration_id (schema/intake/prom.py)."""
    connector = await session.get(IntakeConnector, connector_id)
    source = await session.get(OrderSource, uuid.UUID(event["data"]["order_id"]))
    if connector is None or source is None or source.connector_id != connector.id:
        return WriteBack("not an order of this connector", final=True)
    path, body = prom.status_update(event, source.source_order_id)
    if not path:
        return WriteBack(None)  # Prom hears nothing of this event
    try:
        return WriteBack(await prom_api(connector, settings, http).tell(path, body))
    except CredentialUnusable as unusable:
        why = str(unusable)
    except ApplicationError as failed:
        if failed.details[:1] not in ([401], [403]):
            # Down (retried), or this one request refused (failed at once).
            return WriteBack(str(failed), final=failed.non_retryable)
        why = str(failed)
    await connector_refused(session, connector, why)
    return WriteBack(why, final=True)


class MarketplaceActivities:
    def __init__(
        self, engine: AsyncEngine, http: httpx.AsyncClient, settings: Settings, take: TakeOrder
    ) -> None:
        self._engine = engine
        self._http = http
        self._settings = settings
        self._take = take

    @activity.defn
    async def polled_connectors(self) -> PolledConnectors:
        """The enabled connectors of the polled kinds, but those whose credentials were
        refused (their intake failure still open)."""
        refused = select(IntakeFailure.connector_id).where(
            IntakeFailure.status == "open", IntakeFailure.source_order_id == CONNECTOR_ITSELF
        )
        async with open_session(self._engine) as session:
            ids = await session.exec(
                select(IntakeConnector.id).where(
                    col(IntakeConnector.kind).in_([kind.value for kind in POLLED_KINDS]),
                    col(IntakeConnector.enabled),
                    col(IntakeConnector.id).not_in(refused),
                )
            )
            return PolledConnectors([str(found) for found in ids.all()])

    @activity.defn
    async def poll_orders(self, input: PollOrdersInput) -> PollOrdersResult:
        """Take the orders the connector's marketplace modified since its cursor, then move
        the cursor; retried while the marketplace is down, an intake failure of the
        connector when it refuses its credentials."""
        async with open_session(self._engine) as session:
            connector = await session.get(IntakeConnector, uuid.UUID(input.connector_id))
            if connector is None or not connector.enabled:
                return PollOrdersResult()
            assert connector.created_at is not None
            start = prom.PromSettings(**connector.settings).start_from
            since = connector.polled_to or (
                datetime.fromisoformat(start) if start else connector.created_at
            )
            try:
                orders = await prom_api(connector, self._settings, self._http).orders_since(since)
            except CredentialUnusable as unusable:
                raise await self._refused(session, connector, str(unusable)) from None
            except ApplicationError as failed:
                if failed.non_retryable:
                    raise await self._refused(session, connector, str(failed)) from None
                raise
            taken = []
            for order in sorted(orders, key=lambda order: _modified(order) or since):
                # The intake binds the order it takes to the log lines: for its own only.
                with structlog.contextvars.bound_contextvars(order_id=None, workflow_id=None):
                    ack = await self._take(session, connector=connector, payload=order)
                taken.append(ack.outcome)
            newest = max([since, *(m for order in orders if (m := _modified(order)))])
            await session.execute(
                update(IntakeConnector)
                .where(col(IntakeConnector.id) == connector.id)
                .values(polled_to=newest)
            )
            await session.commit()
        log.info("marketplace polled", connector=connector.name, listed=len(orders))
        return PollOrdersResult(
            listed=len(orders),
            accepted=taken.count("accepted"),
            failed=taken.count("failed"),
            duplicate=taken.count("duplicate"),
        )

    async def _refused(
        self, session: AsyncSession, connector: IntakeConnector, why: str
    ) -> ApplicationError:
        """The connector's credentials refused: an intake failure of the connector itself,
        and no retry."""
        await connector_refused(session, connector, why)
        return ApplicationError(
            f"{connector.name}: {why}", type=ErrorType.PROVIDER_REJECTED, non_retryable=True
        )


async def connector_refused(session: AsyncSession, connector: IntakeConnector, why: str) -> None:
    """The marketplace refused the connector (its credentials, or a request no retry
    changes): an intake failure of the connector itself (one open at a time) in the
    operator queue; the connector is not polled until an operator resolves it."""
    failure = (
        await session.exec(
            select(IntakeFailure).where(
                IntakeFailure.connector_id == connector.id,
                IntakeFailure.source_order_id == CONNECTOR_ITSELF,
                IntakeFailure.status == "open",
            )
        )
    ).first()
    if failure is None:
        session.add(
            IntakeFailure(
                connector_id=connector.id,
                source_order_id=CONNECTOR_ITSELF,
                field="credentials.api_token",
                message=f"the marketplace refused the connector: {why}"[:500],
            )
        )
        await session.commit()
    log.warning("marketplace refused the connector", connector=connector.name, error=why)
