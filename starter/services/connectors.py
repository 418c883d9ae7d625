"""Intake connectors, as admins configure them (API, CLI, console): kind, name, settings,
credentials (write-only: sealed or by reference to the environment) and whether enabled.
Every change is audited, without the credentials' values."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.connectors import ConnectorIn, ConnectorOut, ConnectorPatch
from schema.intake import CONNECTOR_CREDENTIALS, ConnectorKind, prom
from schema.intake.credentials import seal, unseal, where
from schema.intake.shopify import ShopifySettings
from schema.intake.woocommerce import WooSettings
from schema.tables import (
    IntakeConnector,
    IntakeDelivery,
    IntakeFailure,
    OrderSource,
    WebhookSubscription,
)
from settings import Settings
from starter.services.access import Principal, audit
from starter.services.errors import ActionRefused, ConnectorNotFound, InputRefused

# Each kind's settings, with their defaults; a kind without a model takes any object.
SETTINGS: dict[ConnectorKind, type[BaseModel]] = {
    ConnectorKind.WOOCOMMERCE: WooSettings,
    ConnectorKind.SHOPIFY: ShopifySettings,
    ConnectorKind.PROM: prom.PromSettings,
}
# The kinds whose orders arrive by webhook, at /v1/intake/<kind>/<name>.
WEBHOOK_KINDS = frozenset({ConnectorKind.WOOCOMMERCE, ConnectorKind.SHOPIFY})
# The kinds whose orders are polled, and the shop's events their marketplace is told of.
WRITE_BACK = {ConnectorKind.PROM: prom.WRITE_BACK}
POLLED_KINDS = frozenset(WRITE_BACK)


def kind_settings(kind: ConnectorKind, given: dict[str, Any]) -> dict[str, Any]:
    """The settings as the kind reads them (defaults filled in), or InputRefused naming one."""
    model = SETTINGS.get(kind)
    if model is None:
        return given
    try:
        return model.model_validate(given).model_dump()
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = ".".join(["settings", *(str(part) for part in first["loc"])])
        raise InputRefused(field, first["msg"]) from None


def _sealed(
    kind: ConnectorKind, given: dict[str, str], settings: Settings
) -> dict[str, dict[str, str]]:
    allowed = CONNECTOR_CREDENTIALS[kind]
    for name in given:
        if name not in allowed:
            raise InputRefused(
                f"credentials.{name}", f"a {kind} connector takes {', '.join(sorted(allowed))}"
            )
    return {name: seal(value, secret=settings.connector_secret) for name, value in given.items()}


def view(connector: IntakeConnector) -> ConnectorOut:
    kind = ConnectorKind(connector.kind)
    assert connector.created_at is not None and connector.updated_at is not None
    return ConnectorOut(
        id=connector.id,
        kind=kind,
        name=connector.name,
        settings=connector.settings,
        credentials={name: where(stored) for name, stored in connector.credentials.items()},
        enabled=connector.enabled,
        webhook_path=f"/v1/intake/{kind}/{connector.name}" if kind in WEBHOOK_KINDS else None,
        created_by=connector.created_by,
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )


async def find_connector(session: AsyncSession, *, name: str) -> IntakeConnector:
    connector = (
        await session.exec(select(IntakeConnector).where(IntakeConnector.name == name))
    ).first()
    if connector is None:
        raise ConnectorNotFound(name)
    return connector


def credential(connector: IntakeConnector, name: str, settings: Settings) -> str:
    """One credential's value, for the connector's own use (CredentialUnusable if unreadable)."""
    return unseal(connector.credentials[name], secret=settings.connector_secret)


async def create_connector(
    session: AsyncSession, *, caller: Principal, body: ConnectorIn, settings: Settings
) -> ConnectorOut:
    missing = CONNECTOR_CREDENTIALS[body.kind] - set(body.credentials)
    if missing:
        raise InputRefused(f"credentials.{sorted(missing)[0]}", f"a {body.kind} connector needs it")
    connector = IntakeConnector(
        kind=body.kind.value,
        name=body.name,
        settings=kind_settings(body.kind, body.settings),
        credentials=_sealed(body.kind, body.credentials, settings),
        enabled=body.enabled,
        created_by=caller.actor,
    )
    session.add(connector)
    if body.kind in POLLED_KINDS:
        # Its write-back: the shop's events of the orders it brings, told to the marketplace
        # by the shop-events dispatcher (activities/marketplaces.py), in order, with retries.
        session.add(
            WebhookSubscription(
                url=getattr(settings, f"{body.kind.value}_url"),
                events=sorted(event.value for event in WRITE_BACK[body.kind]),
                secret=secrets.token_urlsafe(32),  # signs nothing: the marketplace's API is called
                connector_id=connector.id,
                created_by=caller.actor,
            )
        )
    await audit(
        session, caller, "connector.create", str(connector.id), kind=body.kind, name=body.name
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ActionRefused(f"an intake connector is already named {body.name}") from None
    await session.refresh(connector)
    return view(connector)


async def list_connectors(session: AsyncSession) -> list[ConnectorOut]:
    rows = await session.exec(select(IntakeConnector).order_by(col(IntakeConnector.name)))
    return [view(connector) for connector in rows.all()]


async def update_connector(
    session: AsyncSession, *, caller: Principal, name: str, body: ConnectorPatch, settings: Settings
) -> ConnectorOut:
    connector = await find_connector(session, name=name)
    kind = ConnectorKind(connector.kind)
    changed = sorted(body.model_fields_set)
    if body.settings is not None:
        connector.settings = kind_settings(kind, body.settings)
    if body.credentials is not None:
        connector.credentials = {
            **connector.credentials,
            **_sealed(kind, body.credentials, settings),
        }
    if body.enabled is not None:
        connector.enabled = body.enabled
    connector.updated_at = func.now()  # type: ignore[assignment]
    session.add(connector)
    await audit(
        session,
        caller,
        "connector.update",
        str(connector.id),
        name=name,
        changed=changed,
        credentials=sorted(body.credentials or {}),
    )
    await session.commit()
    await session.refresh(connector)
    return view(connector)


async def delete_connector(session: AsyncSession, *, caller: Principal, name: str) -> None:
    """Delete a connector with its deliveries and intake failures (their payloads go with
    them); refused while orders came through it (disable it instead)."""
    connector = await find_connector(session, name=name)
    taken = (
        await session.exec(
            select(func.count()).where(OrderSource.connector_id == connector.id)  # type: ignore[arg-type]
        )
    ).one()
    if taken:
        raise ActionRefused(
            f"intake connector {name} brought {taken} orders: disable it instead "
            '(PATCH {"enabled": false})'
        )
    for table in (IntakeDelivery, IntakeFailure):
        await session.execute(delete(table).where(col(table.connector_id) == connector.id))
    await session.delete(connector)
    await audit(session, caller, "connector.delete", str(connector.id), name=name)
    await session.commit()
