"""Contracts across the workflow boundary: one dataclass in, one out.

Rule 1 of the architecture: nothing here carries a name, e-mail, phone or address.
Workflows see the order id and business facts only; activities read the rest from Postgres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

WORKFLOW_TYPE = "OrderWorkflow"


def workflow_id_for(order_id: str) -> str:
    return f"order-{order_id}"


class Stage(StrEnum):
    """Where the order is in its lifecycle (architecture: Stages)."""

    INTAKE = "intake"
    VALIDATION = "validation"
    CONFIRMATION = "confirmation"
    STOCK = "stock"
    PAYMENT = "payment"
    PICKING = "picking"
    DOCUMENTS = "documents"
    HANDOVER = "handover"
    TRANSIT = "transit"
    FEEDBACK = "feedback"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CustomerStatus(StrEnum):
    """What the customer is told (seed 002)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    READY_FOR_PICKUP = "ready_for_pickup"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    CANCELLED = "cancelled"


class DeliveryMethod(StrEnum):
    COURIER = "courier"
    POST = "post"
    PICKUP = "pickup"


class PaymentMethod(StrEnum):
    PREPAID = "prepaid"
    COD = "cod"


@dataclass(frozen=True)
class OrderPolicy:
    """Every duration an order lives by, fixed at its start so its history replays."""

    activity_timeout: timedelta
    activity_retry_initial: timedelta
    activity_retry_max: timedelta
    delivery_days: dict[DeliveryMethod, int]


@dataclass(frozen=True)
class OrderWorkflowInput:
    order_id: str
    number: str
    policy: OrderPolicy


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    stage: Stage
    status: CustomerStatus


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    type: str
    stage: Stage
    actor: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStatus:
    """Answer of the `status` query: what is happening now."""

    order_id: str
    number: str
    stage: Stage
    status: CustomerStatus
    expected_date: date | None
    timeline: list[TimelineEntry]


@dataclass(frozen=True)
class RecordEventInput:
    """One timeline row; `key` makes a retried activity write it once."""

    order_id: str
    key: str
    entry: TimelineEntry
    status: CustomerStatus
    expected_date: date | None = None


@dataclass(frozen=True)
class RecordEventResult:
    recorded: bool  # False when the row was already there (a retry)


@dataclass(frozen=True)
class ValidateOrderInput:
    order_id: str


@dataclass(frozen=True)
class ValidateOrderResult:
    delivery_method: DeliveryMethod
    payment_method: PaymentMethod
    currency: str
    total: Decimal
    line_count: int
    problems: list[str]


@dataclass(frozen=True)
class SendConfirmationInput:
    order_id: str
    expected_date: date


@dataclass(frozen=True)
class NotificationResult:
    idempotency_key: str
    channel: str
    provider_message_id: str
    sent_before: bool  # True when a retry found the message already sent
