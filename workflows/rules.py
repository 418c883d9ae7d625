"""Pure rules of an order, as tables: what an operator may do now, what a carrier's status
means to the customer (and, with AfterShip's subtag, what became of the parcel), the payment
and fulfilment status the `status` query reports, what a customer's return needs and what an
operator may do with it.

No workflow API and no clock here: every function answers from the facts it is given, so
the workflow's validators, its query and the tests share one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schema.contracts import (
    CancelReason,
    CustomerStatus,
    FulfilmentStatus,
    IncidentCause,
    MessageKind,
    ParcelChoice,
    ParcelOutcome,
    PaymentMethod,
    PaymentStatus,
    ReturnDecline,
    ReturnLine,
    ReturnPolicy,
    Stage,
    TrackingStatus,
    WaitingFor,
)
from schema.vocabulary import Action, ReturnAction


@dataclass(frozen=True)
class OrderSituation:
    """What the rules need to know about an order right now."""

    stage: Stage
    waiting_for: WaitingFor | None
    cancelling: bool  # a cancellation is decided (and compensation runs or ran)
    handed_over: bool  # the parcel is with the carrier, or collected at the counter
    delivered: bool
    in_review: bool = False  # an operator's confirmation is awaited (escalated or not)
    review_decided: bool = False  # ... and one has been taken, not yet acted on
    stock_decided: bool = False  # a stock decision has been taken, not yet acted on
    returning: bool = False  # refused or unclaimed: the parcel goes back to the shop
    parcel_decided: bool = False  # a decision about a lost parcel has been taken


def allowed_actions(facts: OrderSituation) -> dict[Action, str | None]:
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
    if facts.waiting_for != WaitingFor.PARCEL_DECISION:
        parcel: str | None = "no lost or damaged parcel waits for a decision"
    else:
        parcel = "a decision about the parcel was already taken" if facts.parcel_decided else None
    returning = "the parcel is on its way back to the shop" if facts.returning else None
    return {
        Action.CONFIRM: done or reviewing,
        Action.REJECT: done or reviewing,
        Action.DECIDE_STOCK: done or deciding,
        Action.MARK_DELAYED: done or delivered or returning,
        Action.CANCEL: done or handed,
        # Also while compensating: a failed compensation step waits for it.
        Action.RESOLVE_STEP: failed,
        Action.DECIDE_PARCEL: done or parcel,
    }


def parcel_choice_refusal(choice: ParcelChoice, *, refundable: bool) -> str | None:
    """A refund needs money left to refund; closing without one is only for an order that
    has none left (cash on delivery, or refunded already): the customer is never left out."""
    if choice == ParcelChoice.REFUND and not refundable:
        return "nothing is left to refund: choose cancel (or reship)"
    if choice == ParcelChoice.CANCEL and refundable:
        return "the customer paid and is owed a refund: choose refund (or reship)"
    return None


# AfterShip's (tag, subtag) -> what became of the parcel. A tag alone (subtag "") means what
# its row with "" says; a (tag, subtag) not listed is an ordinary event of that tag.
# https://www.aftership.com/docs/tracking/enum/subtags
PARCEL_OUTCOMES: dict[tuple[TrackingStatus, str], ParcelOutcome] = {
    (TrackingStatus.EXCEPTION, "Exception_003"): ParcelOutcome.REFUSED,  # customer refused
    (TrackingStatus.EXCEPTION, "Exception_008"): ParcelOutcome.UNCLAIMED,  # pick-up missed
    (TrackingStatus.EXCEPTION, "Exception_010"): ParcelOutcome.RETURNING,  # returning to sender
    (TrackingStatus.EXCEPTION, "Exception_011"): ParcelOutcome.RETURNED,  # returned to sender
    (TrackingStatus.EXCEPTION, "Exception_012"): ParcelOutcome.DAMAGED,
    (TrackingStatus.EXCEPTION, "Exception_013"): ParcelOutcome.LOST,
    (TrackingStatus.EXPIRED, ""): ParcelOutcome.UNCLAIMED,  # AfterShip: no update for 30 days
    (TrackingStatus.EXPIRED, "Expired_001"): ParcelOutcome.UNCLAIMED,
}

# The parcel goes back to the shop: the order waits for it, then closes with this reason;
# the incident's cause is the customer's when they refused it.
GOING_BACK: dict[ParcelOutcome, tuple[CancelReason, IncidentCause]] = {
    ParcelOutcome.REFUSED: (CancelReason.DELIVERY_REFUSED, IncidentCause.HUMAN),
    ParcelOutcome.UNCLAIMED: (CancelReason.NOT_COLLECTED, IncidentCause.EXTERNAL),
    ParcelOutcome.RETURNING: (CancelReason.RETURNED_BY_CARRIER, IncidentCause.EXTERNAL),
    ParcelOutcome.RETURNED: (CancelReason.RETURNED_BY_CARRIER, IncidentCause.EXTERNAL),
}
# The parcel will not arrive: an operator decides (re-ship, refund or cancel).
GONE: dict[ParcelOutcome, CancelReason] = {
    ParcelOutcome.LOST: CancelReason.PARCEL_LOST,
    ParcelOutcome.DAMAGED: CancelReason.PARCEL_DAMAGED,
}


def parcel_outcome(status: TrackingStatus, subtag: str) -> ParcelOutcome | None:
    """What a carrier event says became of the parcel (None: an ordinary event)."""
    return PARCEL_OUTCOMES.get((status, subtag))


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
    *,
    method: PaymentMethod,
    requested: bool,
    paid: bool,
    cancelled: bool,
    delivered: bool,
    awaiting_payout: bool = False,
) -> PaymentStatus:
    if paid:
        return PaymentStatus.REFUNDED if cancelled else PaymentStatus.PAID
    if method == PaymentMethod.EXCHANGE:
        return PaymentStatus.COVERED_BY_RETURN
    if method == PaymentMethod.COD:
        if cancelled:
            return PaymentStatus.NOT_REQUESTED
        if awaiting_payout:  # the carrier collected it and has not paid the shop yet
            return PaymentStatus.AWAITING_PAYOUT
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
    returning: bool = False,
    returned: bool = False,
) -> FulfilmentStatus:
    if returned:
        return FulfilmentStatus.RETURNED
    if returning:
        return FulfilmentStatus.RETURNING
    if delivered:
        return FulfilmentStatus.DELIVERED
    if handed_over:
        return FulfilmentStatus.SHIPPED
    if stage in (Stage.HANDOVER, Stage.DOCUMENTS) or status == CustomerStatus.PACKED:
        return FulfilmentStatus.PACKED
    if picking:
        return FulfilmentStatus.PICKING
    return FulfilmentStatus.RESERVED if reserved else FulfilmentStatus.PENDING


# --- Customer returns ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnAssessment:
    """What policy says of a return request: declined at once, or let through (with the
    reasons a person must approve it, if any)."""

    decline: ReturnDecline | None = None
    window_closes: datetime | None = None
    needs_approval: tuple[str, ...] = ()  # e.g. "SET-01: part of a set", "HYG-02: non-returnable"


@dataclass(frozen=True)
class ReturnSituation:
    """What the rules need to know about a return right now."""

    awaiting_approval: bool  # policy sent it to a person
    approval_decided: bool  # ... and one has decided, not yet acted on
    step_failed: bool  # a step failed for good and waits for a person
    step_resolved: bool  # ... and one has decided, not yet acted on


def allowed_return_actions(facts: ReturnSituation) -> dict[ReturnAction, str | None]:
    """Each operator action on a return and, when it is refused now, why (None: allowed).
    As with an order's, a decision taken is final."""
    approving = facts.awaiting_approval and not facts.approval_decided
    resolving = facts.step_failed and not facts.step_resolved
    return {
        ReturnAction.DECIDE: None if approving else "the return is not awaiting approval",
        ReturnAction.RESOLVE_STEP: None if resolving else "no failed step waits for a decision",
    }


def assess_return(
    lines: list[ReturnLine], *, delivered_at: datetime, now: datetime, policy: ReturnPolicy
) -> ReturnAssessment:
    """Within the window (from delivery, on the workflow's clock), anything may be sent
    back; a non-returnable SKU, or part of a set, needs a person's approval."""
    closes = delivered_at + policy.window
    if now > closes:
        return ReturnAssessment(ReturnDecline.WINDOW_CLOSED, closes)
    reasons = []
    for line in lines:
        if line.sku.startswith(policy.non_returnable):
            reasons.append(f"{line.sku}: non-returnable")
        # A set is one line whose SKU starts with a set prefix, its quantity the pieces of
        # the set (SET-CUPS × 6): fewer pieces back than were ordered breaks it.
        if line.sku.startswith(policy.sets) and line.quantity < line.ordered:
            reasons.append(f"{line.sku}: part of a set ({line.quantity} of {line.ordered})")
    return ReturnAssessment(None, closes, tuple(reasons))
