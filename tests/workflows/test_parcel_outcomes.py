"""After the parcel leaves: refused, unclaimed, returned, lost and damaged parcels
(AfterShip's tag and subtag) on the time-skipping server, with stand-in activities.

What a user sees: the status query (stage, status, what the order waits for, the actions
allowed), the messages in the order they went out, the incidents, and what was done and
undone (restock, refund, no booking cancelled after handover). Real-stack versions:
tests/test_after_delivery.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from schema.contracts import (
    CancelReason,
    CustomerStatus,
    IncidentCause,
    ParcelChoice,
    PaymentMethod,
    Stage,
    TrackingStatus,
    WarehouseEventKind,
)
from tests.workflows.order_run import OrderDesk, refusal, types
from tests.workflows.standins import TRACKING_NUMBER, OrderStandIns

DAY = timedelta(days=1)
EXCEPTION, EXPIRED = TrackingStatus.EXCEPTION, TrackingStatus.EXPIRED
REFUSED, RETURNING, RETURNED = "Exception_003", "Exception_010", "Exception_011"
DAMAGED, LOST = "Exception_012", "Exception_013"


def cod() -> OrderStandIns:
    return OrderStandIns(payment=PaymentMethod.COD)


async def test_a_refused_cod_parcel_comes_back_restocked_and_closes_the_order(
    desk: OrderDesk,
) -> None:
    order = await desk.place(cod())
    await order.shipped()
    await order.carrier(TrackingStatus.IN_TRANSIT)
    await order.carrier(EXCEPTION, "recipient refused", subtag=REFUSED)

    returning = await order.waiting_for("parcel_return")
    assert (returning.stage, returning.status) == (Stage.TRANSIT, CustomerStatus.RETURNING)
    assert returning.fulfilment_status == "returning"
    assert returning.allowed_actions == []  # nothing to cancel, nothing to mark delayed
    assert returning.next_deadline is not None  # a parcel not back in 21 days is flagged
    before = list(order.standins.sent())
    assert before[-2:] == ["in_transit", "parcel_returning"]

    await order.sleep(5 * DAY)  # a slow way back: no interim notice, no "delayed"
    await order.settled()
    assert order.standins.sent() == before
    assert "sla.silence_breached" not in types(await order.status())

    await order.warehouse(WarehouseEventKind.RETURNED)
    result = await order.result()

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].type == "order.cancelled"
    assert status.timeline[-1].detail["reason"] == CancelReason.DELIVERY_REFUSED
    assert status.payment_status == "not_requested"  # nothing was paid: nothing refunded
    assert status.fulfilment_status == "returned"
    [restock] = order.standins.inputs("restock")
    assert restock.lines is None  # every line of the order back on the shelf
    assert order.standins.compensations() == []  # no booking to cancel, no reservation to free
    [incident] = order.standins.inputs("record_incident")
    assert incident.cause == IncidentCause.HUMAN  # the customer refused it
    assert order.standins.sent()[-1] == "cancelled"
    cancelled = order.standins.inputs("notify")[-1]
    assert cancelled.params == {"reason": "delivery_refused"}  # no refund promised
    assert "interim" not in order.standins.sent()


async def test_an_unclaimed_prepaid_parcel_is_refunded_what_is_left_when_it_is_back(
    desk: OrderDesk,
) -> None:
    order = await desk.place()  # prepaid, 500.00
    await order.shipped()
    await order.refund_made("refund:goodwill", Decimal("100.00"))  # an operator's, earlier
    await order.carrier(EXPIRED, "not collected")  # AfterShip: Expired means unclaimed
    await order.waiting_for("parcel_return")
    await order.carrier(EXCEPTION, "back at the depot", subtag=RETURNED)
    result = await order.result()

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.NOT_COLLECTED
    assert order.standins.refunds() == [Decimal("400.00")]  # 500 paid, 100 refunded before
    [refund] = order.standins.inputs("refund_payment")
    assert refund.paid == Decimal("500.00")
    assert order.standins.compensations() == ["refund_payment"]
    [incident] = order.standins.inputs("record_incident")
    assert incident.cause == IncidentCause.EXTERNAL
    assert order.standins.inputs("notify")[-1].params == {
        "reason": "not_collected",
        "refund": "400.00",
    }
    assert status.payment_status == "refunded"


async def test_a_parcel_the_carrier_returns_straight_away_closes_the_order(
    desk: OrderDesk,
) -> None:
    order = await desk.place(cod())
    await order.shipped()
    await order.carrier(EXCEPTION, subtag=RETURNED)
    result = await order.result()

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.RETURNED_BY_CARRIER
    assert "parcel_returning" not in order.standins.sent()  # told once, at the close
    assert len(order.standins.inputs("restock")) == 1


async def test_the_way_back_is_flagged_when_the_parcel_is_not_back_in_three_weeks(
    desk: OrderDesk,
) -> None:
    order = await desk.place(cod())
    await order.shipped()
    await order.carrier(EXCEPTION, subtag=RETURNING)  # the carrier sends it back
    await order.waiting_for("parcel_return")
    await order.sleep(22 * DAY)
    status = await order.reached("incident.opened")
    assert status.waiting_for == "parcel_return"  # still waiting for it, flagged
    [late] = order.standins.inputs("record_incident")
    assert "not back after 21 days" in late.summary
    assert "interim" not in order.standins.sent()

    await order.warehouse(WarehouseEventKind.RETURNED)
    result = await order.result()
    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.RETURNED_BY_CARRIER


async def test_a_lost_parcel_is_reshipped_under_its_own_booking_and_delivered(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.shipped()
    await order.carrier(EXCEPTION, "no trace at the hub", subtag=LOST)

    deciding = await order.waiting_for("parcel_decision")
    assert deciding.status == CustomerStatus.DELAYED
    assert deciding.allowed_actions == ["mark_delayed", "decide_parcel"]
    assert order.standins.sent()[-1] == "delivery_problem"
    [incident] = order.standins.inputs("record_incident")
    assert incident.cause == IncidentCause.EXTERNAL and "lost" in incident.summary

    reshipped = await order.decide_parcel(ParcelChoice.RESHIP)
    assert reshipped.stage == Stage.TRANSIT
    status = await order.reached("order.reshipped")
    first, second = order.standins.inputs("book_shipment")
    assert (first.parcel, second.parcel) == (1, 2)  # each under its own key
    assert status.tracking_number == "TRK-STANDIN-2"
    assert len(order.standins.inputs("generate_documents")) == 2  # a label for the new parcel
    await order.waiting_for("carrier")
    assert order.standins.sent()[-1] == "parcel_reshipped"
    reship = order.standins.inputs("notify")[-1]
    assert reship.params["tracking_url"].endswith("TRK-STANDIN-2")

    # A late scan of the lost parcel is not this order's parcel any more.
    await order.carrier(TrackingStatus.IN_TRANSIT, tracking_number=TRACKING_NUMBER)
    await order.carrier(TrackingStatus.DELIVERED, tracking_number="TRK-STANDIN-2")
    delivered = await order.reached("order.delivered")
    assert delivered.fulfilment_status == "delivered"
    assert order.standins.refunds() == []


async def test_a_lost_cod_parcel_cannot_be_refunded_and_is_cancelled(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.shipped()
    await order.carrier(EXCEPTION, subtag=LOST)
    await order.waiting_for("parcel_decision")

    why = await refusal(order.decide_parcel(ParcelChoice.REFUND))
    assert "nothing is left to refund" in why
    closed = await order.decide_parcel(ParcelChoice.CANCEL)  # answers once the order is closed

    assert closed.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.PARCEL_LOST
    assert status.timeline[-1].actor == "key:operator"
    assert order.standins.compensations() == []
    assert order.standins.inputs("restock") == []  # lost: nothing comes back
    assert order.standins.inputs("notify")[-1].params == {"reason": "parcel_lost"}


async def test_a_damaged_prepaid_parcel_is_refunded_not_cancelled_without_a_refund(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.shipped()
    await order.carrier(EXCEPTION, "box crushed", subtag=DAMAGED)
    await order.waiting_for("parcel_decision")

    why = await refusal(order.decide_parcel(ParcelChoice.CANCEL))
    assert "owed a refund" in why
    closed = await order.decide_parcel(ParcelChoice.REFUND)

    assert closed.stage == Stage.CANCELLED
    assert order.standins.refunds() == [Decimal("500.00")]
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.PARCEL_DAMAGED
    assert order.standins.inputs("notify")[-1].params == {
        "reason": "parcel_damaged",
        "refund": "500.00",
    }


async def test_a_second_parcel_decision_is_refused_once_the_first_is_taken(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.shipped()
    await order.carrier(EXCEPTION, subtag=LOST)
    await order.waiting_for("parcel_decision")
    held = order.standins.hold("book_shipment", lambda input: input.parcel == 2)
    await order.decide_parcel(ParcelChoice.RESHIP)
    await held.reached()

    why = await refusal(order.decide_parcel(ParcelChoice.REFUND))
    assert "no lost or damaged parcel waits for a decision" in why
    held.release()
    await order.reached("order.reshipped")
    assert order.standins.refunds() == []


async def test_an_exception_without_a_subtag_still_waits_for_the_delivery(
    desk: OrderDesk,
) -> None:
    """A carrier's exception that says nothing more is an incident, as before."""
    order = await desk.place(cod())
    await order.shipped()
    await order.carrier(EXCEPTION, "address unclear")
    await order.reached("incident.opened")
    status = await order.waiting_for("carrier")
    assert status.status == CustomerStatus.DELAYED
    await order.carrier(TrackingStatus.DELIVERED)
    await order.reached("order.delivered")


async def test_an_outside_refund_leaves_compensation_only_what_is_left(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.paid()
    await order.refund_made("refund:op-1", Decimal("150.00"))
    await order.refund_made("refund:op-1", Decimal("150.00"))  # the same refund told twice
    await order.cancel()
    assert order.standins.refunds() == [Decimal("350.00")]
