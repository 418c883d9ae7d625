"""Provider webhooks -> workflow signals: verified, recorded once, then delivered.

A bad or stale signature is 401 and changes nothing; a replayed event (same provider
and event id) is answered 200 `duplicate` and changes nothing either.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from temporalio.service import RPCError, RPCStatusCode

from schema.contracts import (
    CarrierEvent,
    PaymentEvent,
    PaymentOutcome,
    TrackingStatus,
    WarehouseEvent,
    WarehouseEventKind,
    workflow_id_for,
)
from schema.tables import Order, WebhookEvent
from schema.webhooks import HEADER, BadSignature, verify
from settings import get_settings
from starter.deps import AppSettings, Session, TemporalClient
from starter.limits import limiter

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Provider = Literal["payment", "warehouse", "carrier"]


class Delivery(BaseModel):
    """The envelope every provider event shares."""

    event_id: str
    type: str
    order_ref: uuid.UUID


def _signal(provider: Provider, payload: dict[str, Any]) -> tuple[str, Any] | None:
    """The workflow signal an event becomes (None: recorded only)."""
    if provider == "payment":
        outcome = PaymentOutcome(payload["type"].removeprefix("payment."))
        if outcome == PaymentOutcome.REFUNDED:
            return None
        return "payment_event", PaymentEvent(
            event_id=payload["event_id"],
            outcome=outcome,
            payment_id=payload["payment_id"],
            amount=payload["amount"],
            reason=payload.get("reason", ""),
        )
    if provider == "warehouse":
        return "warehouse_event", WarehouseEvent(
            event_id=payload["event_id"],
            kind=WarehouseEventKind(payload["type"]),
            task_id=payload.get("task_id", ""),
            missing=list(payload.get("missing", [])),
            defects=list(payload.get("defects", [])),
        )
    return "carrier_event", CarrierEvent(
        event_id=payload["event_id"],
        tracking_number=payload["tracking_number"],
        status=TrackingStatus(payload["status"]),
        at=payload["at"],
        detail=payload.get("detail", ""),
    )


@router.post(
    "/{provider}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "A replay of an event already accepted: nothing changed"},
        401: {"description": "Missing, malformed, stale or wrong signature"},
        404: {"description": "No such order"},
        409: {"description": "The order's workflow has ended"},
        422: {"description": "Not a valid event"},
    },
    summary="Signed provider events (payment, warehouse, carrier)",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def receive(
    provider: Provider, request: Request, db: Session, client: TemporalClient, settings: AppSettings
) -> Any:
    body = await request.body()
    secret = {
        "payment": settings.payment_webhook_secret,
        "warehouse": settings.warehouse_webhook_secret,
        "carrier": settings.carrier_webhook_secret,
    }[provider]
    try:
        verify(secret, body, request.headers.get(HEADER), settings.webhook_tolerance_seconds)
    except BadSignature as exc:
        raise HTTPException(401, str(exc)) from exc
    try:
        payload = json.loads(body)
        envelope = Delivery.model_validate(payload)
        signal = _signal(provider, payload)
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise HTTPException(422, f"not a valid {provider} event: {exc}") from exc
    if await db.get(Order, envelope.order_ref) is None:
        raise HTTPException(404, f"order {envelope.order_ref} does not exist")
    recorded = await db.execute(
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
        await db.rollback()
        return {"accepted": False, "duplicate": True, "event_id": envelope.event_id}
    if signal is not None:
        name, argument = signal
        try:
            await client.get_workflow_handle(workflow_id_for(str(envelope.order_ref))).signal(
                name, argument
            )
        except RPCError as exc:
            await db.rollback()  # not recorded: the provider's retry may deliver it later
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(
                    409, f"order {envelope.order_ref} is no longer in progress"
                ) from exc
            raise HTTPException(503, f"could not deliver the event: {exc}") from exc
    await db.commit()
    log.info(
        "webhook accepted",
        provider=provider,
        event_type=envelope.type,
        order_id=str(envelope.order_ref),
    )
    return {"accepted": True, "duplicate": False, "event_id": envelope.event_id}
