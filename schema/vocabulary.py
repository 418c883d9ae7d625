"""The words every layer shares: the timeline's event types, the operator's actions, the types
of the errors activities raise on purpose, and the ids of the workflows' patches.

Each is a StrEnum whose values are the strings already written everywhere — in Postgres
(`order_events.type`, the audit log, order notes), in Temporal's histories (update names,
failure types, patch markers) and in the SQL of the reports' triggers — so a member is its
string: stored rows, histories and contracts (which keep `str` fields) read the same. Every
table keyed by one of these uses its members, and `tests/test_vocabulary.py` proves it: each
key is a member, every event type the workflows write is handled where it must be, every
action is an update with its rule and its form, and the triggers' literals are members.
"""

from __future__ import annotations

from enum import StrEnum

from schema.contracts import ParcelOutcome, TrackingStatus


class EventType(StrEnum):
    """A step of an order's timeline (`TimelineEntry.type`, `order_events.type`), in the order
    the stages take them; a return's and a refund's steps are written beside the order's."""

    # intake and validation
    ORDER_RECEIVED = "order.received"
    ORDER_VALIDATION_STARTED = "order.validation_started"
    ORDER_INVALID = "order.invalid"  # the stored order is broken: cancelled at once
    ORDER_VALIDATED = "order.validated"
    REVIEW_REQUESTED = "review.requested"
    REVIEW_ESCALATED = "review.escalated"
    REVIEW_CONFIRMED = "review.confirmed"
    # confirmation
    ORDER_CONFIRMATION_STARTED = "order.confirmation_started"
    ORDER_CONFIRMED = "order.confirmed"
    # stock
    STOCK_RESERVATION_STARTED = "stock.reservation_started"
    STOCK_RESERVED = "stock.reserved"
    STOCK_PARTIAL = "stock.partial"
    STOCK_DECIDED = "stock.decided"
    STOCK_BACKORDERED = "stock.backordered"
    ORDER_CHANGED = "order.changed"  # lines or quantities changed by a decision
    # payment
    PAYMENT_ON_DELIVERY = "payment.on_delivery"
    PAYMENT_COVERED_BY_RETURN = "payment.covered_by_return"
    PAYMENT_REQUESTED = "payment.requested"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_PARTIALLY_REFUNDED = "payment.partially_refunded"
    # picking and packing
    PICKING_STARTED = "picking.started"
    PICKING_NEEDS_OPERATOR = "picking.needs_operator"
    ORDER_PACKED = "order.packed"
    # documents and handover
    SHIPMENT_BOOKING = "shipment.booking"
    DOCUMENTS_STARTED = "documents.started"
    DOCUMENTS_READY = "documents.ready"
    ORDER_SHIPPED = "order.shipped"
    # transit: the carrier's statuses (`carrier_step`), and a parcel that never arrives
    TRANSIT_STARTED = "transit.started"
    CARRIER_INFO_RECEIVED = "carrier.InfoReceived"
    CARRIER_IN_TRANSIT = "carrier.InTransit"
    CARRIER_OUT_FOR_DELIVERY = "carrier.OutForDelivery"
    CARRIER_ATTEMPT_FAIL = "carrier.AttemptFail"
    CARRIER_AVAILABLE_FOR_PICKUP = "carrier.AvailableForPickup"
    CARRIER_EXCEPTION = "carrier.Exception"
    CARRIER_EXPIRED = "carrier.Expired"
    TRANSIT_NO_NEWS = "transit.no_news"
    PARCEL_RETURNING = "parcel.returning"
    PARCEL_RETURNED = "parcel.returned"
    PARCEL_LOST = "parcel.lost"
    PARCEL_DAMAGED = "parcel.damaged"
    PARCEL_DECIDED = "parcel.decided"
    ORDER_RESHIPPED = "order.reshipped"
    STOCK_RESTOCKED = "stock.restocked"
    ORDER_DELIVERED = "order.delivered"
    PAYMENT_COLLECTED_ON_DELIVERY = "payment.collected_on_delivery"
    # cash on delivery with a carrier that reports paying it out (Nova Poshta)
    PAYMENT_AWAITING_PAYOUT = "payment.awaiting_payout"  # delivered: the carrier has the cash
    PAYMENT_COD_TRANSFER_PENDING = "payment.cod_transfer_pending"
    PAYMENT_COD_PAYOUT_MISMATCH = "payment.cod_payout_mismatch"  # not the order's total
    # pickup at the counter
    PICKUP_READY = "pickup.ready"
    ORDER_COLLECTED = "order.collected"
    # feedback, and the end
    FEEDBACK_SCHEDULED = "feedback.scheduled"
    FEEDBACK_REQUESTED = "feedback.requested"
    FEEDBACK_NONE = "feedback.none"
    FEEDBACK_RECEIVED = "feedback.received"
    ORDER_COMPLETED = "order.completed"
    ORDER_CANCELLED = "order.cancelled"
    # at any stage
    ORDER_DELAYED = "order.delayed"  # an operator's delay, with its reason and new date
    SLA_SILENCE_BREACHED = "sla.silence_breached"
    INCIDENT_OPENED = "incident.opened"
    STEP_FAILED = "step.failed"
    STEP_RESOLVED = "step.resolved"
    # a customer return, beside the order (workflows/returns.py)
    RETURN_REFUSED = "return.refused"  # asked outside the window
    RETURN_REQUESTED = "return.requested"
    RETURN_AWAITING_APPROVAL = "return.awaiting_approval"
    RETURN_APPROVED = "return.approved"
    RETURN_REJECTED = "return.rejected"
    RETURN_LABEL_CREATED = "return.label_created"
    RETURN_IN_TRANSIT = "return.in_transit"
    RETURN_RECEIVED = "return.received"
    RETURN_INSPECTED = "return.inspected"
    RETURN_RESTOCKED = "return.restocked"
    RETURN_REFUNDED = "return.refunded"
    RETURN_EXCHANGED = "return.exchanged"
    RETURN_EXCHANGE_REFUNDED = "return.exchange_refunded"
    RETURN_DECLINED = "return.declined"
    RETURN_STEP_RESOLVED = "return.step_resolved"


# The steps that put the goods in the customer's hands: at the door, or at the counter.
DELIVERY_STEPS = (EventType.ORDER_DELIVERED, EventType.ORDER_COLLECTED)


def carrier_step(status: TrackingStatus) -> EventType:
    """The step a carrier's status is written as (`Delivered` is `ORDER_DELIVERED`)."""
    return EventType(f"carrier.{status.value}")


def parcel_step(outcome: ParcelOutcome) -> EventType:
    """The step a parcel that will not arrive (lost, damaged) is written as."""
    return EventType(f"parcel.{outcome.value}")


class Action(StrEnum):
    """An operator's action on an order: the name of `OrderWorkflow`'s update (recorded in
    histories: never renamed), its rule (`workflows.rules.allowed_actions`), its service and
    console form (`starter.services.actions.OPERATOR_ACTIONS`), and its word in the audit
    log, order notes and metrics."""

    CONFIRM = "confirm"
    REJECT = "reject"
    DECIDE_STOCK = "decide_stock"
    MARK_DELAYED = "mark_delayed"
    CANCEL = "cancel"
    RESOLVE_STEP = "resolve_step"
    DECIDE_PARCEL = "decide_parcel"


class ReturnAction(StrEnum):
    """An operator's action on a customer return: the name of `ReturnWorkflow`'s update
    (recorded in histories: never renamed) and its rule (`workflows.rules.allowed_return_actions`)."""

    DECIDE = "decide"  # approve (or not) a return policy sent to a person
    RESOLVE_STEP = "resolve_step"  # retry or skip a step that failed for good


class ErrorType(StrEnum):
    """The `type` of every ApplicationError an activity raises on purpose: the workflows and
    the API act on it, incidents and Temporal's history name it. Each is non-retryable but
    `PROVIDER_UNAVAILABLE` (its activity's retry policy backs off)."""

    ORDER_NOT_FOUND = "OrderNotFound"
    RETURN_NOT_FOUND = "ReturnNotFound"
    CONTACT_MISSING = "ContactMissing"
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"  # down, 5xx, 429, or its rate limit: retried
    PROVIDER_REJECTED = "ProviderRejected"  # a provider refused the request (other 4xx)
    NO_CARRIER = "NoCarrier"
    NO_ADDRESS = "NoAddress"
    REFUND_REFUSED = "RefundRefused"  # the ledger: it would exceed what was paid
    MESSAGE_BROKEN = "MessageBroken"  # a message that cannot be rendered
    NO_ANSWER = "NoAnswer"  # no activity's: a provider silent past the policy's wait (workflows)


class PatchId(StrEnum):
    """The id of each `workflow.patched(...)` change: recorded as a marker in the history of
    every order that took the new path, so never renamed. What each changed, when it came
    and which stored history covers it: `workflows/patches.py`."""

    PROGRESS_IN_READ_MODEL = "progress-in-read-model"
    QUIET_ONCE_CANCELLED = "quiet-once-cancelled"
    DEADLINE_BEFORE_GUARD = "deadline-before-silence-guard"
    VERIFY_PAYMENT_EVENTS = "verify-payment-events"
    REFUND_LATE_PAYMENTS = "refund-late-payments"
    SHIP_WHAT_WAS_PACKED = "ship-what-was-packed"
    VERIFY_CARRIER_EVENTS = "verify-carrier-events"
    CARRIER_OUTCOMES = "carrier-outcomes"
    BRANCH_STORAGE = "branch-storage"
    COD_PAYOUT = "cod-payout"
    EARLY_FEEDBACK_ENDS_REQUEST = "early-feedback-ends-request"
    PACKING_DEADLINE = "packing-deadline"
    CARRIER_NEWS_DEADLINE = "carrier-news-deadline"
    RETURN_ON_ORDER_MACHINERY = "return-on-order-machinery"
    SEARCH_ATTRIBUTES_ON_CHANGE = "search-attributes-on-change"
    TRACKING_TELLS_RETURNS = "tracking-tells-returns"
    ONE_WRITE_PER_ACTIVATION = "one-write-per-activation"
