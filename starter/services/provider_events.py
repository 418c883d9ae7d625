"""Provider events -> workflow signals: the signature verified, each event recorded once,
then delivered. A replayed event (same provider and event id) changes nothing.

Events about a customer's return (its parcel's tracking, the warehouse's inspection) carry
`return_ref` beside the order's `order_ref`, and go to the return's workflow."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.fields import OneLine
from schema.contracts import (
    CarrierEvent,
    IncidentCause,
    InspectedLine,
    InspectionFinding,
    PaymentEvent,
    PaymentFailure,
    PaymentOutcome,
    ReturnInspection,
    TrackingStatus,
    WarehouseEvent,
    WarehouseEventKind,
)
from schema.tables import Incident, Order, Refund, Return, WebhookEvent
from schema.webhooks import BadSignature, verify
from settings import Settings
from starter.services.errors import OrderNotFound, ReturnNotFound
from starter.services.temporal import OrderWorkflows
from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow

log = structlog.get_logger(__name__)

# The providers that report back through signed webhooks (each with its own secret).
ReportingProvider = Literal["payment", "warehouse", "carrier"]


class InvalidEvent(Exception):
    """The body is not an event of this provider."""


class EventMismatch(Exception):
    """A well-formed event that does not match what the order asked for."""


class Envelope(BaseModel):
    """What every provider event carries (and the fields of its kind beside them)."""

    model_config = ConfigDict(extra="allow")

    event_id: OneLine = Field(min_length=1, max_length=128)
    type: OneLine = Field(min_length=1, max_length=64)
    order_ref: uuid.UUID
    return_ref: uuid.UUID | None = None  # an event about one of the order's returns


def _secret(provider: ReportingProvider, settings: Settings) -> str:
    return {
        "payment": settings.payment_webhook_secret,
        "warehouse": settings.warehouse_webhook_secret,
        "carrier": settings.carrier_webhook_secret,
    }[provider]


def _parse(provider: ReportingProvider, body: bytes) -> tuple[Envelope, dict[str, Any]]:
    try:
        payload = json.loads(body)
        return Envelope.model_validate(payload), payload
    except (ValueError, TypeError, ValidationError) as exc:
        raise InvalidEvent(f"not a valid {provider} event: {exc}") from exc


async def receive_event(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    settings: Settings,
    provider: ReportingProvider,
    body: bytes,
    signature: str | None,
) -> bool:
    """Verify, record and deliver one event; False when it was delivered before.

    Raises BadSignature, InvalidEvent, OrderNotFound, or the workflow's failures (then
    nothing is recorded, and the provider's retry may deliver it later)."""
    verify(_secret(provider, settings), body, signature, settings.webhook_tolerance_seconds)
    envelope, payload = _parse(provider, body)
    try:
        deliver = _delivery(workflows, provider, envelope.order_ref, payload)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise InvalidEvent(f"not a valid {provider} event: {exc!r}") from exc
    order = await session.get(Order, envelope.order_ref)
    if order is None:
        raise OrderNotFound(envelope.order_ref)
    if envelope.return_ref is not None:
        ret = await session.get(Return, envelope.return_ref)
        if ret is None or ret.order_id != order.id:
            raise ReturnNotFound(envelope.return_ref)
    recorded = await session.execute(
        insert(WebhookEvent)
        .values(
            provider=provider,
            event_id=envelope.event_id,
            order_id=envelope.order_ref,
            type=envelope.type,
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(col(WebhookEvent.id))
    )
    if recorded.first() is None:
        await session.rollback()
        return False
    if provider == "payment" and envelope.type == "payment.refunded":
        await _match_refund(session, order, envelope, payload)
    if deliver is not None:
        try:
            await deliver()
        except Exception:
            await session.rollback()  # not recorded: the provider's retry may deliver it later
            raise
    await session.commit()
    log.info(
        "webhook accepted",
        provider=provider,
        event_type=envelope.type,
        order_id=str(envelope.order_ref),
    )
    return True


def _delivery(
    workflows: OrderWorkflows,
    provider: ReportingProvider,
    order_id: uuid.UUID,
    payload: dict[str, Any],
) -> Callable[[], Awaitable[None]] | None:
    """The workflow signal an event becomes (None: a refund confirmation, recorded only)."""
    if payload.get("return_ref") is not None:
        return _return_delivery(workflows, provider, payload)
    if provider == "payment":
        outcome = PaymentOutcome(payload["type"].removeprefix("payment."))
        if outcome == PaymentOutcome.REFUNDED:
            return None
        failed = outcome == PaymentOutcome.FAILED
        payment = PaymentEvent(
            event_id=str(payload["event_id"]),
            outcome=outcome,
            payment_id=str(payload["payment_id"]),
            amount=Decimal(str(payload["amount"])),
            reason=PaymentFailure.of(str(payload.get("reason") or "")).value if failed else "",
            currency=str(payload["currency"]),
        )
        return lambda: workflows.signal(order_id, OrderWorkflow.payment_event, payment)
    if provider == "warehouse":
        warehouse = WarehouseEvent(
            event_id=str(payload["event_id"]),
            kind=WarehouseEventKind(payload["type"]),
            task_id=str(payload.get("task_id", "")),
            missing=[str(sku) for sku in payload.get("missing", [])],
            defects=[str(defect) for defect in payload.get("defects", [])],
        )
        return lambda: workflows.signal(order_id, OrderWorkflow.warehouse_event, warehouse)
    carrier = _carrier_event(payload)
    return lambda: workflows.signal(order_id, OrderWorkflow.carrier_event, carrier)


def _carrier_event(payload: dict[str, Any]) -> CarrierEvent:
    return CarrierEvent(
        event_id=str(payload["event_id"]),
        tracking_number=str(payload["tracking_number"]),
        status=TrackingStatus(payload["status"]),
        at=datetime.fromisoformat(payload["at"]),
        detail=str(payload.get("detail", "")),
        subtag=str(payload.get("subtag") or ""),
    )


def _return_delivery(
    workflows: OrderWorkflows, provider: ReportingProvider, payload: dict[str, Any]
) -> Callable[[], Awaitable[None]]:
    """A return parcel's tracking, or the warehouse's inspection of it."""
    return_id = str(uuid.UUID(str(payload["return_ref"])))
    if provider == "carrier":
        carrier = _carrier_event(payload)
        return lambda: workflows.signal_return(return_id, ReturnWorkflow.carrier_event, carrier)
    if provider == "warehouse" and payload["type"] == "return_inspected":
        lines = [
            InspectedLine(
                sku=str(line["sku"]),
                received=int(line["received"]),
                accepted=int(line["accepted"]),
                finding=InspectionFinding(line["finding"]) if line.get("finding") else None,
            )
            for line in payload["lines"]
        ]
        if any(not 0 <= line.accepted <= line.received for line in lines):
            raise ValueError("an inspected line accepts between 0 and what was received")
        inspection = ReturnInspection(event_id=str(payload["event_id"]), lines=lines)
        return lambda: workflows.signal_return(return_id, ReturnWorkflow.inspected, inspection)
    raise ValueError(f"{provider} sends no {payload['type']} event about a return")


async def _match_refund(
    session: AsyncSession, order: Order, envelope: Envelope, payload: dict[str, Any]
) -> None:
    """A refund event counts only when it matches a refund this order asked for (the ledger);
    anything else opens an incident for a manager and changes nothing."""
    try:
        amount = Decimal(str(payload["amount"]))
        payment_id, currency = str(payload["payment_id"]), str(payload["currency"])
    except (KeyError, InvalidOperation) as exc:
        raise InvalidEvent(f"not a valid payment event: {exc!r}") from exc
    asked = (
        await session.exec(
            select(Refund).where(
                Refund.order_id == order.id,
                Refund.payment_id == payment_id,
                Refund.amount == amount,
                Refund.status == "requested",
            )
        )
    ).first()
    if asked is None or currency != order.currency:
        order_id, stage = order.id, order.stage
        await session.rollback()  # the event is not recorded: only the incident is
        await session.execute(
            insert(Incident)
            .values(
                order_id=order_id,
                key=f"refund-event-{envelope.event_id}"[:128],
                stage=stage,
                cause=IncidentCause.EXTERNAL.value,
                summary=f"refund event {envelope.event_id} ({amount} {currency}) "
                "matches no refund this order asked for",
            )
            .on_conflict_do_nothing(index_elements=["order_id", "key"])
        )
        await session.commit()
        raise EventMismatch("the refund matches no refund this order asked for")
    asked.status, asked.confirmed_at = "confirmed", datetime.now(UTC)
    asked.provider_refund_id = asked.provider_refund_id or payload.get("refund_id")
    session.add(asked)


__all__ = ["BadSignature", "EventMismatch", "InvalidEvent", "ReportingProvider", "receive_event"]
