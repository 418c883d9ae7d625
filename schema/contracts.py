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


def return_workflow_id_for(return_id: str) -> str:
    """The id of a customer return's workflow (one per return, beside the order's)."""
    return f"return-{return_id}"


def refund_workflow_id_for(order_id: str, key: str) -> str:
    """The id of an operator's refund: one per order and idempotency key, so a retried
    request finds the refund it made."""
    return f"refund-{order_id}-{key}"


def order_id_of(workflow_id: str) -> str | None:
    """The order id inside a workflow id (None for a workflow that is not an order's)."""
    if not workflow_id.startswith(_WORKFLOW_ID_PREFIX):
        return None
    return workflow_id.removeprefix(_WORKFLOW_ID_PREFIX)


class Stage(StrEnum):
    """Where the order is in its lifecycle: the stages in their order (docs/architecture.md,
    Stages, numbers them so), then the two ends."""

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
    RETURNING = "returning"  # refused or unclaimed: the parcel goes back to the shop


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
    PARCEL_RETURN = "parcel_return"  # a refused or unclaimed parcel on its way back
    PARCEL_DECISION = "parcel_decision"  # lost or damaged: an operator re-ships, refunds or cancels
    COD_PAYOUT = "cod_payout"  # delivered, cash collected: the carrier's payout to the shop
    # A customer return's waits (ReturnWorkflow), named as its status query always said them.
    RETURN_APPROVAL = "approval"  # an item policy will not take back alone: an operator decides
    RETURN_PARCEL = "parcel"  # the return parcel: sent by the customer, carried to the warehouse
    RETURN_INSPECTION = "inspection"  # received: the warehouse inspects it


# Waits that only a person can end: the order shows in the operator queue while it waits.
WAITS_FOR_A_PERSON = frozenset(
    {
        WaitingFor.OPERATOR_CONFIRMATION,
        WaitingFor.STOCK_DECISION,
        WaitingFor.INCIDENT_RESOLUTION,
        WaitingFor.PARCEL_DECISION,
        WaitingFor.RETURN_APPROVAL,
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
    COVERED_BY_RETURN = "covered_by_return"  # an exchange: the goods sent back pay for it
    # Cash on delivery with a carrier that reports its payout (Nova Poshta): the customer
    # paid the carrier, the shop has not been paid yet.
    AWAITING_PAYOUT = "awaiting_payout"


class FulfilmentStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURNING = "returning"  # refused or unclaimed, on its way back
    RETURNED = "returned"  # back at the warehouse, on the shelf again


class DeliveryMethod(StrEnum):
    COURIER = "courier"
    POST = "post"
    PICKUP = "pickup"  # at the shop's own counter
    BRANCH = "branch"  # at a carrier's branch the customer chose (Nova Poshta's відділення)


class PaymentMethod(StrEnum):
    PREPAID = "prepaid"
    COD = "cod"
    # A replacement order of an exchange: paid for by the goods returned (never posted by a
    # shop: the API takes prepaid or cod).
    EXCHANGE = "exchange"


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
    # A refused or unclaimed parcel not back at the warehouse after this opens an incident
    parcel_return_wait: timedelta = timedelta(days=21)
    # An express courier order: delivered this many days after confirmation (0: the same day)
    # when confirmed before the cutoff hour in the customer's time, else a day later. Orders
    # started before these existed are standard ones (they carried no speed).
    express_delivery_days: int = 0
    express_cutoff_hour: int = 14
    # Cash on delivery a carrier collected and has not paid out this long after delivery
    # opens an incident (the carriers that report payouts: Nova Poshta)
    cod_payout_wait: timedelta = timedelta(days=3)
    # A parcel waiting at a carrier's branch: the customer is reminded this long before the
    # free storage ends (the carrier's DatePayedKeeping)
    branch_storage_reminder: timedelta = timedelta(days=1)
    # A pick task the warehouse has not packed by then opens an incident (an operator
    # re-creates the task or cancels; the order keeps waiting for the warehouse meanwhile)
    packing_wait: timedelta = timedelta(days=1)
    # A carrier silent about the parcel this long (in whole periods of `carrier_silence`)
    # opens an incident (the order keeps waiting for the carrier, delayed notices go on)
    carrier_news_wait: timedelta = timedelta(days=9)


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
    # False: a step beside the order (a customer return, a refund made outside its workflow)
    # written to its timeline under the order's current stage; the order's stage, status and
    # progress are left as they are (its own workflow keeps them).
    moves_order: bool = True
    # With the step that records the payment: what the verified payment brought in, kept as
    # the refund ledger's limit (`orders.paid_amount`, schema/ledger.py).
    paid: Decimal | None = None


@dataclass(frozen=True)
class RecordProgressInput:
    order_id: str
    progress: OrderProgress


@dataclass(frozen=True)
class RecordStepsInput:
    """The timeline steps one activation of the order's workflow took, written in order in one
    local activity; with `progress`, what the wait that follows them waits for (written after
    them, in the same activity). Each step keeps its own key: a retry writes nothing twice."""

    order_id: str
    steps: list[RecordEventInput]
    progress: OrderProgress | None = None


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
    delivery_speed: str = "standard"  # or "express" (the date promised follows it)


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


class PriceReason(StrEnum):
    """Why an operator's final price differs from the lines' sum, as the customer reads it
    beside the discount (or surcharge) line."""

    AGREED_BY_PHONE = "agreed_by_phone"
    WHOLESALE = "wholesale"
    REGULAR_CUSTOMER = "regular_customer"
    PRICE_CORRECTION = "price_correction"


@dataclass(frozen=True)
class ConfirmOrder:
    actor: str
    lines: list[LineEdit] | None = None  # replaces the order's lines when given
    final_price: Decimal | None = None  # the total to charge, when it could not be computed
    note: str = ""  # sent empty: the text is order note `note_id`
    note_id: int | None = None
    price_reason: PriceReason | None = None  # why final_price differs from the lines' sum


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
    DELIVERY_REFUSED = "delivery_refused"  # the customer refused the parcel at the door
    RETURNED_BY_CARRIER = "returned_by_carrier"  # the carrier sent it back (reason not given)
    PARCEL_LOST = "parcel_lost"
    PARCEL_DAMAGED = "parcel_damaged"


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


class ParcelChoice(StrEnum):
    """What an operator decides about a parcel the carrier lost or damaged."""

    RESHIP = "reship"  # send the order again: a second shipment, its own booking
    REFUND = "refund"  # close the order and refund what is left of the payment
    CANCEL = "cancel"  # close the order: nothing is left to refund (cash on delivery)


@dataclass(frozen=True)
class ParcelDecision:
    actor: str
    choice: ParcelChoice
    note_id: int | None = None  # the operator's text, an order note


@dataclass(frozen=True)
class RefundMade:
    """A refund made outside the order's workflow (an operator's, a return's): the order
    counts it, so that its own compensation refunds only what is left."""

    key: str  # the refund's step, unique per order (its idempotency key)
    amount: Decimal


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
    RETURNED = "returned"  # a refused or unclaimed parcel is back at the warehouse


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


class CodPayout(StrEnum):
    """Where the money a carrier collected on delivery is (Nova Poshta's 10 and 11)."""

    TRANSFER_PENDING = "transfer_pending"  # the customer paid; the transfer to the shop is due
    PAID_OUT = "paid_out"  # the carrier paid the shop


@dataclass(frozen=True)
class CarrierEvent:
    event_id: str
    tracking_number: str
    status: TrackingStatus
    at: datetime
    detail: str = ""
    # AfterShip's subtag, which says what the tag means: "Exception_003" (refused by the
    # recipient), "Exception_011" (returned to sender), … (workflows/rules.py reads them).
    subtag: str = ""
    code: str = ""  # the carrier's own status code (Nova Poshta's StatusCode), when polled
    storage_until: date | None = None  # at a branch: kept free until (DatePayedKeeping)
    cod: CodPayout | None = None  # cash on delivery: the money's way to the shop
    cod_amount: Decimal | None = None  # paid out (Nova Poshta's AmountPaid or RedeliverySum)


class ParcelOutcome(StrEnum):
    """What a carrier's (tag, subtag) means for the parcel, beyond "delivered"."""

    REFUSED = "refused"  # the customer refused it at the door
    UNCLAIMED = "unclaimed"  # nobody came for it
    RETURNING = "returning"  # the carrier sends it back to the shop
    RETURNED = "returned"  # it is back at the shop
    LOST = "lost"
    DAMAGED = "damaged"


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
    price_reason: PriceReason | None = None  # kept with a final price, shown to the customer


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
    # What the payment brought in, as the workflow verified it (None: as recorded when the
    # payment succeeded). The ledger never refunds more than that in all.
    paid: Decimal | None = None
    reason: str | None = None  # an operator's RefundReason, kept in the ledger
    actor: str | None = None  # who asked (None: the order's own workflow)


@dataclass(frozen=True)
class StockLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class RestockInput:
    """Goods back on the shelf: a parcel that came back, the accepted items of a return."""

    order_id: str
    step: str  # names the restock among the order's (its idempotency key)
    lines: list[StockLine] | None = None  # None: every line of the order


@dataclass(frozen=True)
class BookShipmentInput(OrderRef):
    """Which parcel of the order to book: the first, or a re-shipment after a loss (each
    under its own idempotency key). Orders in flight sent a bare OrderRef: parcel 1."""

    parcel: int = 1


@dataclass(frozen=True)
class PickTask:
    task_id: str


@dataclass(frozen=True)
class Shipment:
    carrier: str
    service: str
    tracking_number: str
    tracking_url: str
    expected_date: date | None = None  # the carrier's own estimate of the delivery date
    # Cash on delivery with a carrier that reports paying it out (Nova Poshta): the order's
    # money is collected only when the carrier says it paid the shop.
    reports_payout: bool = False


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
    PARCEL_RETURNING = "parcel_returning"  # refused or unclaimed: it goes back to the shop
    PARCEL_RESHIPPED = "parcel_reshipped"  # lost or damaged: a new parcel is on its way
    REFUND_MADE = "refund_made"  # an operator's refund (goodwill, an item missing)
    RETURN_REQUESTED = "return_requested"  # a return awaits the shop's approval
    RETURN_APPROVED = "return_approved"  # with the return label
    RETURN_DECLINED = "return_declined"  # outside the window, not approved, never sent
    RETURN_RECEIVED = "return_received"  # the parcel is back: inspection follows
    RETURN_REFUNDED = "return_refunded"  # the refund after inspection (full, partial, none)
    RETURN_EXCHANGED = "return_exchanged"  # the replacement order is on its way
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


# --- After delivery: customer returns, and refunds made outside the order's workflow -------
# A return runs as a `ReturnWorkflow` of its own (workflows/returns.py says why); an
# operator's refund as a `RefundWorkflow`. Both write to the order's timeline and tell the
# order's workflow, while it runs, what was refunded (`RefundMade`).


class ReturnReason(StrEnum):
    """Why the customer sends goods back (a list on the return form)."""

    CHANGED_MIND = "changed_mind"
    WRONG_SIZE = "wrong_size"
    DEFECTIVE = "defective"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    OTHER = "other"


class ReturnResolution(StrEnum):
    REFUND = "refund"  # money back for what the inspection accepts
    EXCHANGE = "exchange"  # a new order for the replacement lines instead


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting_approval"  # policy: a person decides (non-returnable, sets)
    APPROVED = "approved"  # label sent, the parcel is awaited
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"  # at the warehouse: inspection follows
    REFUNDED = "refunded"  # closed: refunded per inspection (possibly nothing, with reasons)
    EXCHANGED = "exchanged"  # closed: the replacement order runs
    DECLINED = "declined"  # closed: outside the window, not approved, or never sent


class ReturnDecline(StrEnum):
    """Why a return was declined, as the customer is told it."""

    WINDOW_CLOSED = "window_closed"
    NOT_APPROVED = "not_approved"
    NOT_SENT = "not_sent"  # the parcel never came within the policy's wait


class InspectionFinding(StrEnum):
    """Why the warehouse did not accept returned items (they are not refunded)."""

    DAMAGED = "damaged"  # damaged after delivery
    USED = "used"
    INCOMPLETE = "incomplete"  # parts or packaging missing
    MISSING = "missing"  # not in the parcel
    OTHER = "other"


class RefundReason(StrEnum):
    """Why an operator refunds part of an order, as the customer is told it."""

    GOODWILL = "goodwill"
    ITEM_MISSING = "item_missing"
    ITEM_DAMAGED = "item_damaged"
    PRICE_ADJUSTMENT = "price_adjustment"
    OTHER = "other"


@dataclass(frozen=True)
class ReturnPolicy:
    """What a return lives by, fixed at its start (settings ORDERFLOW_POLICY_RETURN_*)."""

    window: timedelta = timedelta(days=14)  # from delivery: EU and UA law's 14 days
    non_returnable: tuple[str, ...] = ()  # SKU prefixes a person must approve (hygiene, food)
    sets: tuple[str, ...] = ()  # SKU prefixes of sets: returning part of one needs approval
    shipping_wait: timedelta = timedelta(days=14)  # approved: the parcel must come by then
    inspection_wait: timedelta = timedelta(days=3)  # received: inspected by then, else flagged
    # The silence guard, as an order's: an interim notice when the customer heard nothing for
    # this long, repeated each period up to the bound.
    silence_period: timedelta = timedelta(hours=24)
    silence_max_notices: int = 7


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    quantity: int  # returned
    unit_price: Decimal
    ordered: int  # on the order (returning fewer items of a set is a partial set)


@dataclass(frozen=True)
class ReturnWorkflowInput:
    return_id: str
    order_id: str
    number: str  # the return's number, e.g. SHOP-1001-R1
    lines: list[ReturnLine]
    reason: ReturnReason
    resolution: ReturnResolution
    delivered_at: datetime  # the window counts from here
    payment_method: PaymentMethod
    policy: OrderPolicy  # retries and timeouts of its steps
    returns: ReturnPolicy
    actor: str  # who asked: "customer" or a staff member
    payment_id: str | None = None  # the order's payment (prepaid), refunded against
    paid: Decimal | None = None
    replacement: list[LineEdit] | None = None  # an exchange's new lines


@dataclass(frozen=True)
class ReturnResult:
    return_id: str
    status: ReturnStatus
    decline: ReturnDecline | None = None
    refunded: Decimal = Decimal("0")
    exchange_order_id: str | None = None


@dataclass(frozen=True)
class ReturnDecision:
    """An operator's approval (or not) of a return that needs one."""

    actor: str
    approve: bool
    note_id: int | None = None


@dataclass(frozen=True)
class InspectedLine:
    sku: str
    received: int
    accepted: int  # refunded (and back on the shelf unless the return is for a defect)
    finding: InspectionFinding | None = None  # why the rest was not accepted


@dataclass(frozen=True)
class ReturnInspection:
    """The warehouse's inspection of a returned parcel (a signed webhook)."""

    event_id: str
    lines: list[InspectedLine]


@dataclass(frozen=True)
class ReturnProgress:
    """Answer of the return workflow's `status` query."""

    return_id: str
    number: str
    status: ReturnStatus
    waiting_for: str | None = None  # a WaitingFor: approval, parcel, inspection, ...
    decline: ReturnDecline | None = None
    tracking_number: str | None = None
    refunded: Decimal = Decimal("0")
    exchange_order_id: str | None = None
    allowed_actions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReturnRef:
    """The input of return activities that need nothing but the return."""

    return_id: str


@dataclass(frozen=True)
class ReturnStepInput:
    """The return's row in Postgres follows its workflow (status, refund, the exchange)."""

    return_id: str
    status: ReturnStatus
    decline: ReturnDecline | None = None
    refunded: Decimal | None = None
    exchange_order_id: str | None = None
    needs_action: bool = False
    inspected: list[InspectedLine] | None = None  # what the warehouse accepted, per line


@dataclass(frozen=True)
class ExchangeOrderInput:
    return_id: str
    lines: list[LineEdit]


@dataclass(frozen=True)
class ExchangeOrder:
    order_id: str
    number: str


@dataclass(frozen=True)
class ExchangeOutcome:
    """How an exchange's replacement order ended: what it shipped, at what total."""

    cancelled: bool
    total: Decimal


@dataclass(frozen=True)
class RefundWorkflowInput:
    order_id: str
    key: str  # the caller's idempotency key (the refund's step: `refund:<key>`)
    payment_id: str
    amount: Decimal
    reason: RefundReason
    actor: str
    policy: OrderPolicy
    lines: list[StockLine] = field(default_factory=list)  # when refunded by line (told as such)


@dataclass(frozen=True)
class RefundResult:
    order_id: str
    step: str
    amount: Decimal


# --- Tracking by polling (carriers without webhooks: Nova Poshta, Ukrposhta) ---------------
# A Temporal schedule starts a short `CarrierTrackingWorkflow` every few minutes: it asks the
# carrier about the parcels in flight a page at a time, and tells each order what changed.


def tracking_workflow_id(task_queue: str) -> str:
    """The tracking rounds of one worker fleet (its task queue): one chain at a time."""
    return f"carrier-tracking-{task_queue}"


@dataclass(frozen=True)
class TrackingCursor:
    """Where the next page of parcels starts: after this one (order, then tracking number)."""

    order_id: str
    tracking_number: str


@dataclass(frozen=True)
class TrackingRound:
    """The input of one run of the tracking rounds: from the start, or after a page."""

    after: TrackingCursor | None = None
    asked: int = 0  # parcels asked about in this round's earlier pages
    changed: int = 0  # ... and changes told
    calls: int = 0  # ... and the carrier's tracking calls they took
    page: int = 500  # parcels a run asks about before it continues as new


@dataclass(frozen=True)
class PollTrackingInput:
    after: TrackingCursor | None = None
    limit: int = 500  # parcels in one page (the carrier is asked in its own batches)


@dataclass(frozen=True)
class ParcelNews:
    """A change of one parcel's status, for its order or, for a customer's return parcel, for
    the return (business facts, no personal data)."""

    order_id: str
    event: CarrierEvent
    return_id: str | None = None  # a return parcel's: its ReturnWorkflow is told


@dataclass(frozen=True)
class PollTrackingResult:
    news: list[ParcelNews]
    asked: int
    calls: int  # tracking calls to the carrier
    after: TrackingCursor | None = None  # None: the last page


@dataclass(frozen=True)
class RecordTrackingInput:
    """The changes the orders were told: their status codes are the parcels' last now."""

    news: list[ParcelNews]


# --- Marketplaces polled for their orders (Prom.ua) -------------------------------------------
# A Temporal schedule starts a short `MarketplacePollWorkflow` every few minutes: it polls each
# enabled polled connector for the orders modified since its cursor (activities/marketplaces).


def marketplace_poll_workflow_id(task_queue: str) -> str:
    """The marketplace polls of one worker fleet (its task queue): one at a time."""
    return f"marketplace-poll-{task_queue}"


@dataclass(frozen=True)
class PolledConnectors:
    connector_ids: list[str]


@dataclass(frozen=True)
class PollOrdersInput:
    connector_id: str


@dataclass(frozen=True)
class PollOrdersResult:
    """What one connector's poll took (counts only: nothing of an order passes here)."""

    listed: int = 0
    accepted: int = 0
    failed: int = 0  # intake failures (the operator queue)
    duplicate: int = 0  # taken before


@dataclass(frozen=True)
class MarketplacePoll:
    """A poll of every polled connector: the input (empty) and, filled in, the result."""

    connectors: int = 0
    listed: int = 0
    accepted: int = 0
    failed: int = 0
    refused: int = 0  # connectors whose poll failed (refused, or down past the retries)
