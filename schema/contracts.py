"""Contracts across the workflow boundary: one dataclass in, one out.

Rule 1 of the architecture: nothing here carries a name, e-mail, phone or address.
Workflows see the order id and business facts only; activities read the rest from Postgres.

These dataclasses are stored in the histories of orders in flight, which live for weeks.
They only grow (see CONTRACTS.md beside this file): a new field has a default; a field an
order in flight carries is never renamed, retyped or removed; an enum only gains members.
`tests/test_contracts.py` decodes every payload of every stored history with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

_WORKFLOW_ID_PREFIX = "order-"


def workflow_id_for(order_id: str) -> str:
    """The id of an order's workflow: the one place that spells it."""
    return f"{_WORKFLOW_ID_PREFIX}{order_id}"


def message_workflow_id(kind: MessageKind, subject: str) -> str:
    """The id of the workflow that sends one message no order's workflow sends: `subject` is
    the order id (one thanks per order) or a request's own id."""
    return f"message-{kind.value}-{subject}"


def order_id_of(workflow_id: str) -> str | None:
    """The order id inside a workflow id (None for a workflow that is not an order's)."""
    if not workflow_id.startswith(_WORKFLOW_ID_PREFIX):
        return None
    return workflow_id.removeprefix(_WORKFLOW_ID_PREFIX)


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


class WaitingFor(StrEnum):
    """What an order waits for, as the status query says it and the interim notice explains it."""

    OPERATOR_CONFIRMATION = "operator_confirmation"
    STOCK_DECISION = "stock_decision"
    BACKORDER_ARRIVAL = "backorder_arrival"
    PAYMENT = "payment"
    PACKING = "packing"
    CARRIER = "carrier"
    COLLECTION = "collection"
    FEEDBACK = "feedback"
    FEEDBACK_REQUEST = "feedback_request"  # the request's own send time, in the customer's day
    INCIDENT_RESOLUTION = "incident_resolution"  # a step failed for good: a person decides


# Waits that only a person can end: the order shows in the operator queue while it waits.
WAITS_FOR_A_PERSON = frozenset(
    {
        WaitingFor.OPERATOR_CONFIRMATION,
        WaitingFor.STOCK_DECISION,
        WaitingFor.INCIDENT_RESOLUTION,
    }
)


class PaymentStatus(StrEnum):
    NOT_REQUESTED = "not_requested"
    AWAITING_PAYMENT = "awaiting_payment"
    LINK_CANCELLED = "link_cancelled"  # the order ended before it was paid
    PAID = "paid"
    REFUNDED = "refunded"
    CASH_ON_DELIVERY = "cash_on_delivery"
    COLLECTED_ON_DELIVERY = "collected_on_delivery"


class FulfilmentStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class DeliveryMethod(StrEnum):
    COURIER = "courier"
    POST = "post"
    PICKUP = "pickup"


class PaymentMethod(StrEnum):
    PREPAID = "prepaid"
    COD = "cod"


@dataclass(frozen=True)
class OrderPolicy:
    """Every duration and threshold an order lives by, fixed at its start so its history replays.

    The values come from settings (ORDERFLOW_POLICY_*), which hold the defaults.
    """

    activity_timeout: timedelta
    activity_retry_initial: timedelta
    activity_retry_max: timedelta
    delivery_days: dict[DeliveryMethod, int]
    # Manual confirmation (seeds 001, 003)
    review_amount: Decimal
    review_quantity: int
    review_sla: timedelta
    # Stock
    backorder_deadline: timedelta
    # Payment (seed 001)
    payment_expiry: timedelta
    payment_reminders: tuple[timedelta, ...]
    # Picking
    picking_attempts: int
    # Transit
    carrier_silence: timedelta
    # Pickup
    pickup_hold: timedelta
    pickup_reminder: timedelta
    # Feedback (seed 000): 24-48 h after delivery, never in the customer's night
    feedback_earliest: timedelta
    feedback_latest: timedelta
    feedback_reminder: timedelta
    feedback_wait: timedelta
    quiet_from_hour: int
    quiet_until_hour: int
    # Silence guard (seed 000): no silent gap over a day
    silence_period: timedelta
    silence_max_notices: int
    # Stock: how many reservation rounds (after back-orders, alternatives) before giving up
    stock_attempts: int = 5


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
class NextDeadline:
    at: datetime
    waiting_for: WaitingFor


@dataclass(frozen=True)
class OrderStatus:
    """Answer of the `status` query: what is happening now."""

    order_id: str
    number: str
    stage: Stage
    status: CustomerStatus
    expected_date: date | None
    timeline: list[TimelineEntry]  # the latest steps (workflows.timeline.LATEST); Postgres has all
    payment_status: PaymentStatus = PaymentStatus.NOT_REQUESTED
    fulfilment_status: FulfilmentStatus = FulfilmentStatus.PENDING
    tracking_number: str | None = None
    tracking_url: str | None = None
    waiting_for: WaitingFor | None = None
    next_deadline: NextDeadline | None = None
    sla_breaches: list[SlaBreach] = field(default_factory=list)
    allowed_actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OrderProgress:
    """What the order waits for and may do now, kept current in the read model (Postgres) so
    that lists, the status page and the console need no live query for it."""

    waiting_for: WaitingFor | None = None
    next_deadline: datetime | None = None
    allowed_actions: list[str] = field(default_factory=list)
    payment_status: PaymentStatus = PaymentStatus.NOT_REQUESTED
    fulfilment_status: FulfilmentStatus = FulfilmentStatus.PENDING


@dataclass(frozen=True)
class RecordEventInput:
    """One timeline row; `key` makes a retried activity write it once."""

    order_id: str
    key: str
    entry: TimelineEntry
    status: CustomerStatus
    expected_date: date | None = None
    progress: OrderProgress | None = None  # orders from before progress was kept send none


@dataclass(frozen=True)
class RecordProgressInput:
    order_id: str
    progress: OrderProgress


@dataclass(frozen=True)
class RecordEventResult:
    recorded: bool  # False when the row was already there (a retry)


@dataclass(frozen=True)
class ValidateOrderInput:
    order_id: str
    policy: OrderPolicy  # thresholds for manual review


@dataclass(frozen=True)
class ValidateOrderResult:
    delivery_method: DeliveryMethod
    payment_method: PaymentMethod
    currency: str
    total: Decimal
    line_count: int
    problems: list[str]  # the order cannot be processed at all
    review_reasons: list[str] = field(default_factory=list)  # a human must confirm it
    timezone: str = "Europe/Kyiv"  # the customer's, for quiet hours


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


# --- The operator's decisions (workflow updates) -------------------------------------------
# What an operator types (a confirm note, a reject reason, …) is personal data at times: it
# stays in Postgres (`order_notes`), and an update carries only the note's id. The text
# fields remain for the orders whose histories hold them, and are sent empty.


@dataclass(frozen=True)
class LineEdit:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class ConfirmOrder:
    actor: str
    lines: list[LineEdit] | None = None  # replaces the order's lines when given
    final_price: Decimal | None = None  # the total to charge, when it could not be computed
    note: str = ""  # sent empty: the text is order note `note_id`
    note_id: int | None = None


@dataclass(frozen=True)
class RejectOrder:
    actor: str
    reason: str  # sent empty: the text is order note `note_id`
    note_id: int | None = None


class StockChoice(StrEnum):
    SHIP_AVAILABLE = "ship_available"
    BACKORDER = "backorder"
    ALTERNATIVE = "alternative"
    CANCEL = "cancel"


@dataclass(frozen=True)
class StockDecision:
    actor: str
    choice: StockChoice
    alternative_lines: list[LineEdit] | None = None
    note: str = ""  # sent empty by operators: the text is order note `note_id`
    note_id: int | None = None


class DelayReason(StrEnum):
    """Why an order is late, as the customer is told it (in their language)."""

    CARRIER_SILENT = "carrier_silent"  # no tracking news for the policy's period
    SUPPLIER_LATE = "supplier_late"
    CARRIER_DELAY = "carrier_delay"
    HIGH_DEMAND = "high_demand"
    WEATHER = "weather"
    OTHER = "other"


@dataclass(frozen=True)
class MarkDelayed:
    actor: str
    reason: str  # a DelayReason (orders from before codes may carry an operator's text)
    new_date: date


class CancelReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_EXPIRED = "payment_expired"
    NOT_COLLECTED = "not_collected"
    REJECTED = "rejected"
    FRAUD_SUSPECTED = "fraud_suspected"
    OTHER = "other"


@dataclass(frozen=True)
class CancelOrder:
    actor: str
    reason: CancelReason
    note: str = ""  # sent empty by operators: the text is order note `note_id`
    note_id: int | None = None


class StepChoice(StrEnum):
    """What an operator decides about a step that failed for good."""

    RETRY = "retry"  # try it again (the cause was fixed, or it may heal now)
    SKIP = "skip"  # go on without it (a message not sent, a compensation done by hand)


@dataclass(frozen=True)
class ResolveStep:
    actor: str
    choice: StepChoice


@dataclass(frozen=True)
class ActionResult:
    accepted: bool
    stage: Stage
    status: CustomerStatus


# --- What providers report (webhooks -> signals) -------------------------------------------


class PaymentFailure(StrEnum):
    """Why a payment attempt failed, as a code; the customer reads it in their language."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    AUTHENTICATION_FAILED = "authentication_failed"
    OTHER = "other"

    @classmethod
    def of(cls, text: str) -> PaymentFailure:
        """A provider's (or an old order's) free text as a code: `"card declined"` -> CARD_DECLINED."""
        code = text.strip().lower().replace(" ", "_").replace("-", "_")
        return cls(code) if code in cls._value2member_map_ else cls.OTHER


class PaymentOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class PaymentEvent:
    event_id: str
    outcome: PaymentOutcome
    payment_id: str
    amount: Decimal
    reason: str = ""  # a PaymentFailure code for a failed attempt
    currency: str = ""  # ISO 4217; events from before verification carry none


class WarehouseEventKind(StrEnum):
    PACKED = "packed"  # picked and packed against the checklist: missing lines, defects
    STOCK_ARRIVED = "stock_arrived"  # a back-order came in
    COLLECTED = "collected"  # a pickup order left the counter


@dataclass(frozen=True)
class WarehouseEvent:
    event_id: str
    kind: WarehouseEventKind
    task_id: str = ""
    missing: list[str] = field(default_factory=list)  # SKUs
    defects: list[str] = field(default_factory=list)  # "SKU: what is wrong"


class TrackingStatus(StrEnum):
    """One status set for every carrier (after AfterShip's)."""

    INFO_RECEIVED = "InfoReceived"
    IN_TRANSIT = "InTransit"
    OUT_FOR_DELIVERY = "OutForDelivery"
    ATTEMPT_FAIL = "AttemptFail"
    DELIVERED = "Delivered"
    AVAILABLE_FOR_PICKUP = "AvailableForPickup"
    EXCEPTION = "Exception"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class CarrierEvent:
    event_id: str
    tracking_number: str
    status: TrackingStatus
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class FeedbackReceived:
    """The customer's answer; the comment itself stays in Postgres (it may hold personal data)."""

    feedback_id: str
    rating: int | None = None  # 1-5
    nps: int | None = None  # 0-10

    @property
    def negative(self) -> bool:
        return (self.rating is not None and self.rating <= 2) or (
            self.nps is not None and self.nps <= 6
        )


# --- Activities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyDecisionInput:
    """An operator's (or the customer's) change to the order's lines or price."""

    order_id: str
    actor: str
    lines: list[LineEdit] | None = None  # replace every line
    quantities: dict[str, int] | None = None  # keep these quantities per SKU (0 drops a line)
    final_price: Decimal | None = None


@dataclass(frozen=True)
class OrderTotals:
    total: Decimal
    line_count: int


@dataclass(frozen=True)
class ReserveStockInput:
    order_id: str
    # Unused: the reservation always states every line's wish (the warehouse keeps what it
    # holds). Orders in flight carry the field, so it stays (CONTRACTS.md).
    only_skus: list[str] | None = None


@dataclass(frozen=True)
class LineAvailability:
    sku: str
    requested: int
    reserved: int


@dataclass(frozen=True)
class ReserveStockResult:
    lines: list[LineAvailability]

    @property
    def complete(self) -> bool:
        return all(line.reserved >= line.requested for line in self.lines)

    @property
    def missing(self) -> list[LineAvailability]:
        return [line for line in self.lines if line.reserved < line.requested]


@dataclass(frozen=True)
class OrderRef:
    """The input of activities that need nothing but the order."""

    order_id: str


@dataclass(frozen=True)
class BackorderResult:
    expected_date: date


@dataclass(frozen=True)
class PaymentLink:
    payment_id: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class CreatePaymentInput:
    order_id: str
    expires_at: datetime


@dataclass(frozen=True)
class RefundInput:
    order_id: str
    payment_id: str
    amount: Decimal
    step: str = "refund"  # names this refund among the order's (its idempotency key)


@dataclass(frozen=True)
class PickTask:
    task_id: str


@dataclass(frozen=True)
class Shipment:
    carrier: str
    service: str
    tracking_number: str
    tracking_url: str


@dataclass(frozen=True)
class DocumentsResult:
    kinds: list[str]


class MessageKind(StrEnum):
    """Every message orderflow sends a customer or a manager (texts: activities/messages/)."""

    CONFIRMATION = "confirmation"
    AWAITING_REVIEW = "awaiting_review"
    REJECTED = "rejected"
    STOCK_PARTIAL = "stock_partial"
    ITEMS_UNAVAILABLE = "items_unavailable"  # picking failed: the rest is shipped
    BACKORDERED = "backordered"
    PAYMENT_REQUESTED = "payment_requested"
    PAYMENT_REMINDER = "payment_reminder"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_RECEIVED = "payment_received"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERY_PROBLEM = "delivery_problem"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKUP_REMINDER = "pickup_reminder"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    CANCELLED = "cancelled"
    INTERIM = "interim"
    FEEDBACK_REQUEST = "feedback_request"
    FEEDBACK_REMINDER = "feedback_reminder"
    FEEDBACK_THANKS = "feedback_thanks"  # the answer came: thanks, and the bonus if any
    # Not about one order: the "my orders" link, to the e-mail that asked for it
    ORDER_LIST = "order_list"
    # To the shop's managers, not the customer
    MANAGER_REVIEW_ESCALATED = "manager_review_escalated"
    MANAGER_PAYMENT_FAILED = "manager_payment_failed"
    MANAGER_INCIDENT = "manager_incident"


@dataclass(frozen=True)
class NotifyInput:
    order_id: str
    kind: MessageKind
    key: str  # unique per order: makes the message exactly-once
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderListInput:
    """The "my orders" link to the e-mail of one customer identity (read by the activity)."""

    customer_id: str
    locale: str  # uk | ru | en
    request_id: str  # the request that asked for it (one e-mail per request)


@dataclass(frozen=True)
class CustomerMessageInput:
    """A message the API sends, not an order's workflow (CustomerMessageWorkflow): exactly
    one of the two."""

    notify: NotifyInput | None = None  # an order's message: the thanks for an answer
    order_list: OrderListInput | None = None


class IncidentCause(StrEnum):
    HUMAN = "human"
    SYSTEM = "system"
    EXTERNAL = "external"


@dataclass(frozen=True)
class IncidentInput:
    order_id: str
    key: str
    stage: Stage
    cause: IncidentCause
    summary: str
    resolution: str = ""  # set when a person resolved it: how (e.g. "retry", "skip")


@dataclass(frozen=True)
class SlaBreach:
    at: datetime
    stage: Stage
    waiting_for: WaitingFor
