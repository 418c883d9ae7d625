"""Pure rules of an order, as tables: what an operator may do now, what a carrier's status
means to the customer, and the payment and fulfilment status the `status` query reports.

No workflow API and no clock here: every function answers from the facts it is given, so
the workflow's validators, its query and the tests share one source.
"""

from __future__ import annotations

from dataclasses import dataclass

from schema.contracts import (
    CustomerStatus,
    FulfilmentStatus,
    MessageKind,
    PaymentMethod,
    PaymentStatus,
    Stage,
    TrackingStatus,
    WaitingFor,
)


@dataclass(frozen=True)
class OrderFacts:
    """What the rules need to know about an order right now."""

    stage: Stage
    waiting_for: WaitingFor | None
    cancelling: bool  # a cancellation is decided (and compensation runs or ran)
    handed_over: bool  # the parcel is with the carrier, or collected at the counter
    delivered: bool
    in_review: bool = False  # an operator's confirmation is awaited (escalated or not)
    review_decided: bool = False  # ... and one has been taken, not yet acted on
    stock_decided: bool = False  # a stock decision has been taken, not yet acted on


def allowed_actions(facts: OrderFacts) -> dict[str, str | None]:
    """Each operator action and, when it is refused now, why (None: allowed).

    A decision taken is final: while the order acts on it (e.g. sends a notice first), a
    second one is refused, not silently put in its place."""
    if facts.stage in (Stage.COMPLETED, Stage.CANCELLED):
        done: str | None = f"the order is {facts.stage.value}"
    else:
        done = "the order is being cancelled" if facts.cancelling else None
    if not facts.in_review:
        reviewing: str | None = "the order is not awaiting confirmation"
    else:
        reviewing = (
            "a decision about this order was already taken" if facts.review_decided else None
        )
    if facts.waiting_for != WaitingFor.STOCK_DECISION:
        deciding: str | None = "no stock decision is pending"
    else:
        deciding = "a stock decision was already taken" if facts.stock_decided else None
    handed = "the parcel is already with the carrier" if facts.handed_over else None
    delivered = "the order is already delivered" if facts.delivered else None
    failed = (
        None
        if facts.waiting_for == WaitingFor.INCIDENT_RESOLUTION
        else "no failed step waits for a decision"
    )
    return {
        "confirm": done or reviewing,
        "reject": done or reviewing,
        "decide_stock": done or deciding,
        "mark_delayed": done or delivered,
        "cancel": done or handed,
        # Also while compensating: a failed compensation step waits for it.
        "resolve_step": failed,
    }


# A carrier's tracking status (after AfterShip's) -> what the customer sees and is told.
# Delivered is handled by the transit stage itself (it ends the wait).
CARRIER_STATUS: dict[TrackingStatus, tuple[CustomerStatus, MessageKind | None]] = {
    TrackingStatus.INFO_RECEIVED: (CustomerStatus.SHIPPED, None),
    TrackingStatus.IN_TRANSIT: (CustomerStatus.IN_TRANSIT, MessageKind.IN_TRANSIT),
    TrackingStatus.OUT_FOR_DELIVERY: (CustomerStatus.IN_TRANSIT, MessageKind.OUT_FOR_DELIVERY),
    TrackingStatus.ATTEMPT_FAIL: (CustomerStatus.IN_TRANSIT, MessageKind.DELIVERY_FAILED),
    TrackingStatus.AVAILABLE_FOR_PICKUP: (
        CustomerStatus.READY_FOR_PICKUP,
        MessageKind.READY_FOR_PICKUP,
    ),
    TrackingStatus.EXCEPTION: (CustomerStatus.DELAYED, MessageKind.DELIVERY_PROBLEM),
    TrackingStatus.EXPIRED: (CustomerStatus.DELAYED, MessageKind.DELIVERY_PROBLEM),
}

# Carrier statuses that mean something went wrong outside the shop: an incident is opened.
CARRIER_TROUBLE = frozenset({TrackingStatus.EXCEPTION, TrackingStatus.EXPIRED})


def payment_status(
    *, method: PaymentMethod, requested: bool, paid: bool, cancelled: bool, delivered: bool
) -> PaymentStatus:
    if paid:
        return PaymentStatus.REFUNDED if cancelled else PaymentStatus.PAID
    if method == PaymentMethod.COD:
        if cancelled:
            return PaymentStatus.NOT_REQUESTED
        return PaymentStatus.COLLECTED_ON_DELIVERY if delivered else PaymentStatus.CASH_ON_DELIVERY
    if requested:
        return PaymentStatus.LINK_CANCELLED if cancelled else PaymentStatus.AWAITING_PAYMENT
    return PaymentStatus.NOT_REQUESTED


def fulfilment_status(
    *,
    stage: Stage,
    status: CustomerStatus,
    reserved: bool,
    picking: bool,
    handed_over: bool,
    delivered: bool,
) -> FulfilmentStatus:
    if delivered:
        return FulfilmentStatus.DELIVERED
    if handed_over:
        return FulfilmentStatus.SHIPPED
    if stage in (Stage.HANDOVER, Stage.DOCUMENTS) or status == CustomerStatus.PACKED:
        return FulfilmentStatus.PACKED
    if picking:
        return FulfilmentStatus.PICKING
    return FulfilmentStatus.RESERVED if reserved else FulfilmentStatus.PENDING
