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
from typing import Any, Literal, NoReturn

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.payment_gateways import Notice, PaymentNotice
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
    ReturnStatus,
    TrackingStatus,
    WarehouseEvent,
    WarehouseEventKind,
)
from schema.ledger import CONFIRMED, REQUESTED
from schema.tables import (
    Incident,
    Order,
    OrderProviderRefs,
    PaymentState,
    Refund,
    Return,
    WebhookEvent,
)
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
        _refuse_unless_about(ret, provider, payload)
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


def _refuse_unless_about(ret: Return, provider: ReportingProvider, payload: dict[str, Any]) -> None:
    """A return's tracking counts only with its own label's tracking number, and its
    inspection only once the parcel has arrived (409: a warehouse early retries later)."""
    if provider == "carrier" and (
        ret.tracking_number is None or payload["tracking_number"] != ret.tracking_number
    ):
        raise EventMismatch(
            f"tracking number {payload['tracking_number']} is not return {ret.number}'s label's"
        )
    if provider == "warehouse" and ret.status != ReturnStatus.RECEIVED:
        raise EventMismatch(
            f"return {ret.number} has not arrived at the warehouse yet ({ret.status}): "
            "an inspection counts once it has"
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
    try:
        amount = Decimal(str(payload["amount"]))
        payment_id, currency = str(payload["payment_id"]), str(payload["currency"])
    except (KeyError, InvalidOperation) as exc:
        raise InvalidEvent(f"not a valid payment event: {exc!r}") from exc
    await _confirm_refund(
        session,
        order,
        event_id=envelope.event_id,
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        refund_id=payload.get("refund_id"),
    )


async def _confirm_refund(
    session: AsyncSession,
    order: Order,
    *,
    event_id: str,
    payment_id: str,
    amount: Decimal,
    currency: str,
    refund_id: str | None,
) -> None:
    """A refund event counts only when it matches a refund this order asked for (the ledger:
    by the provider's refund id when it names one, else by payment and amount); one the
    provider's own answer confirmed already changes nothing. Anything else opens an
    incident for a manager and changes nothing."""
    rows = (
        await session.exec(
            select(Refund).where(
                Refund.order_id == order.id,
                Refund.payment_id == payment_id,
                col(Refund.status).in_([REQUESTED, CONFIRMED]),
            )
        )
    ).all()

    def matches(row: Refund) -> bool:
        if refund_id and row.provider_refund_id:
            return row.provider_refund_id == refund_id
        return row.amount == amount

    asked = next((r for r in rows if r.status == REQUESTED and matches(r)), None)
    if asked is None and currency == order.currency and any(map(matches, rows)):
        return  # confirmed by the provider's answer to the refund
    if asked is None or currency != order.currency:
        order_id, stage = order.id, order.stage
        await session.rollback()  # the event is not recorded: only the incident is
        await session.execute(
            insert(Incident)
            .values(
                order_id=order_id,
                key=f"refund-event-{event_id}"[:128],
                stage=stage,
                cause=IncidentCause.EXTERNAL.value,
                summary=f"refund event {event_id} ({amount} {currency}) "
                "matches no refund this order asked for",
            )
            .on_conflict_do_nothing(index_elements=["order_id", "key"])
        )
        await session.commit()
        raise EventMismatch("the refund matches no refund this order asked for")
    asked.status, asked.confirmed_at = CONFIRMED, datetime.now(UTC)
    asked.provider_refund_id = asked.provider_refund_id or refund_id
    session.add(asked)


# --- real payment providers: their callbacks, verified by their adapters ----------------------


async def receive_payment_notice(
    session: AsyncSession, *, workflows: OrderWorkflows, provider: str, notice: PaymentNotice
) -> bool:
    """One verified callback of a real payment provider (LiqPay, Monobank, WayForPay, Stripe),
    checked against what the order asked and recorded once; False when it came before.

    It must be about this order's payment and, when it says money arrived, in the amount and
    currency asked: else an incident is opened and EventMismatch raised, and nothing else
    changes. News older than what the provider said before changes nothing, and neither does
    the same outcome twice (both are recorded); a success or a failure becomes today's
    `payment_event` signal; a refund is matched to the ledger; news on its way (processing,
    hold, ...) or an expiry is recorded only. Raises OrderNotFound, EventMismatch, or the
    workflow's failures (then nothing is recorded and the provider's retry may deliver it)."""
    order = await _order_of(session, notice)
    refs = await session.get(OrderProviderRefs, order.id)
    asked = refs.payment_id if refs else None
    refusal = _refusal(order, asked, notice)
    if refusal or asked is None:  # (refusal says why when nothing was asked)
        await _mismatch(
            session,
            order,
            key=f"payment-event-{notice.event_id}",
            summary=f"payment event {notice.event_id} refused: {refusal}",
        )
    recorded = await session.execute(
        insert(WebhookEvent)
        .values(
            provider=provider,
            event_id=notice.event_id[:128],
            order_id=order.id,
            type=f"payment.{notice.outcome.value}",
        )
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(col(WebhookEvent.id))
    )
    if recorded.first() is None:
        await session.rollback()
        return False
    if notice.outcome == Notice.REFUNDED:
        await _confirm_refund(
            session,
            order,
            event_id=notice.event_id,
            payment_id=asked,
            amount=notice.amount,
            currency=notice.currency,
            refund_id=notice.refund_id,
        )
    elif await _news(session, provider, asked, order.id, notice) and notice.outcome in (
        Notice.SUCCEEDED,
        Notice.FAILED,
    ):
        event = PaymentEvent(
            event_id=notice.event_id[:128],
            outcome=PaymentOutcome(notice.outcome.value),
            payment_id=asked,
            amount=notice.amount,
            reason=notice.reason,
            currency=notice.currency,
        )
        try:
            await workflows.signal(order.id, OrderWorkflow.payment_event, event)
        except Exception:
            await session.rollback()  # not recorded: the provider's retry may deliver it later
            raise
    await session.commit()
    log.info(
        "payment callback accepted",
        provider=provider,
        outcome=notice.outcome.value,
        status=notice.status,
        order_id=str(order.id),
    )
    return True


async def _order_of(session: AsyncSession, notice: PaymentNotice) -> Order:
    try:
        order_id = uuid.UUID(str(notice.order_ref))
    except ValueError:
        raise OrderNotFound(str(notice.order_ref)) from None
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


def _refusal(order: Order, asked: str | None, notice: PaymentNotice) -> str:
    """Why the notice cannot count for this order ("" when it can): the rule the workflow
    keeps too (workflows/payment.py)."""
    if asked is None:
        return "the order asked for no payment"
    if notice.payment_id is not None and notice.payment_id != asked:
        return f"payment {notice.payment_id} is not this order's ({asked})"
    if notice.outcome == Notice.SUCCEEDED and (
        notice.amount != order.total or notice.currency != order.currency
    ):
        return f"{notice.amount} {notice.currency} paid, {order.total} {order.currency} asked"
    return ""


async def _mismatch(session: AsyncSession, order: Order, *, key: str, summary: str) -> NoReturn:
    order_id, stage = order.id, order.stage
    await session.rollback()
    await session.execute(
        insert(Incident)
        .values(
            order_id=order_id,
            key=key[:128],
            stage=stage,
            cause=IncidentCause.EXTERNAL.value,
            summary=summary[:500],
        )
        .on_conflict_do_nothing(index_elements=["order_id", "key"])
    )
    await session.commit()
    raise EventMismatch(summary)


async def _news(
    session: AsyncSession,
    provider: str,
    payment_id: str,
    order_id: uuid.UUID,
    notice: PaymentNotice,
) -> bool:
    """Keep the payment's latest state; True when the notice changes it. Older news (by the
    provider's own time), the same outcome again, and anything after a success change
    nothing."""
    await session.execute(
        insert(PaymentState)
        .values(provider=provider, payment_id=payment_id, order_id=order_id, outcome="")
        .on_conflict_do_nothing(index_elements=["provider", "payment_id"])
    )
    state = (
        await session.exec(
            select(PaymentState)
            .where(PaymentState.provider == provider, PaymentState.payment_id == payment_id)
            .with_for_update()
        )
    ).one()
    stale = (
        notice.at is not None and state.provider_at is not None and notice.at < state.provider_at
    )
    if stale or state.outcome in (notice.outcome.value, Notice.SUCCEEDED.value):
        return False
    state.outcome, state.provider_at = notice.outcome.value, notice.at or state.provider_at
    state.updated_at = datetime.now(UTC)
    session.add(state)
    return True


__all__ = [
    "BadSignature",
    "EventMismatch",
    "InvalidEvent",
    "ReportingProvider",
    "receive_event",
    "receive_payment_notice",
]
