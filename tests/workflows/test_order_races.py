"""OrderWorkflow's races on the time-skipping server, one test each.

A stand-in activity is held mid-flight (`OrderStandIns.hold`) so that a signal, an update or
a timer lands exactly in the window under test; then the end state is asserted, and that no
compensation ran twice. Where today's workflow gets a race wrong, the test asserts the right
behaviour and is marked xfail(strict=True) with the defect: fixing it turns the test green
(and strict xfail red, as a reminder to drop the marker).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest

from schema.contracts import (
    CancelReason,
    MessageKind,
    PaymentMethod,
    PaymentOutcome,
    Stage,
    StockChoice,
    TrackingStatus,
)
from tests.workflows.order_run import OrderDesk, refusal, types
from tests.workflows.standins import OrderStandIns

DAY = timedelta(days=1)
SILENT_DAY = DAY + timedelta(minutes=1)  # the silence guard's first interim notice is due


def reviewed(**setup: Any) -> OrderStandIns:
    return OrderStandIns(review_reasons=["customer note: call before delivery"], **setup)


def cod(**setup: Any) -> OrderStandIns:
    return OrderStandIns(payment=PaymentMethod.COD, **setup)


# --- cancellation against the workflow's own steps ------------------------------------------


async def test_cancel_while_an_invalid_order_is_validated_ends_the_order(desk: OrderDesk) -> None:
    standins = OrderStandIns(problems=["no e-mail and no phone: nobody to tell"])
    validating = standins.hold("validate_order")
    order = await desk.place(standins)
    await validating.reached()
    cancelling = await order.cancel_accepted()

    validating.release()

    answer = await asyncio.wait_for(cancelling.result(), 3)  # today: waits for ever
    assert answer.stage == Stage.CANCELLED
    result = await order.result(timeout=3)
    assert result.stage == Stage.CANCELLED
    assert order.standins.inputs("send_confirmation") == []
    assert order.standins.compensations() == []  # nothing was done, nothing to undo


async def test_second_cancel_while_compensating_is_refused_and_refunds_once(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns()
    refunding = standins.hold("refund_payment")
    order = await desk.place(standins)
    await order.paid()
    first = await order.cancel_accepted()
    await refunding.reached()
    assert "cancel" not in (await order.status()).allowed_actions

    reason = await refusal(order.cancel(note="asked again"))

    assert reason.startswith("cancel is not allowed now")
    refunding.release()
    assert (await first.result()).stage == Stage.CANCELLED
    assert (await order.result()).stage == Stage.CANCELLED
    assert standins.refunds() == [standins.total]
    assert standins.compensations() == ["refund_payment", "release_stock"]
    assert standins.sent().count("cancelled") == 1
    cancelled = [e for e in (await order.status()).timeline if e.type == "order.cancelled"]
    assert [e.detail["note"] for e in cancelled] == ["changed mind"]


async def test_second_cancel_while_compensating_says_a_cancellation_is_under_way(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns()
    refunding = standins.hold("refund_payment")
    order = await desk.place(standins)
    await order.paid()
    await order.cancel_accepted()
    await refunding.reached()

    reason = await refusal(order.cancel(note="asked again"))

    explanation = reason.split(":", 1)[-1]
    assert "cancel" in explanation, reason


@pytest.mark.parametrize(
    ("activity", "setup", "undone"),
    [
        ("validate_order", reviewed, []),  # then: awaiting_review
        # then: payment_requested, with a link to pay for a cancelled order
        ("create_payment_link", OrderStandIns, ["cancel_payment_link", "release_stock"]),
        ("create_pick_task", cod, ["release_stock"]),  # then: picking
    ],
)
async def test_after_a_cancel_is_accepted_the_only_message_is_cancelled(
    desk: OrderDesk, activity: str, setup: Any, undone: list[str]
) -> None:
    standins: OrderStandIns = setup()
    running = standins.hold(activity)
    order = await desk.place(standins)
    await running.reached()
    before = len(standins.sent())
    cancelling = await order.cancel_accepted()

    running.release()

    assert (await cancelling.result()).stage == Stage.CANCELLED
    assert standins.compensations() == undone
    assert standins.sent()[before:] == ["cancelled"]


async def test_cancel_while_stock_is_reserved_releases_it_once(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    reserving = standins.hold("reserve_stock")
    order = await desk.place(standins)
    await reserving.reached()
    cancelling = await order.cancel_accepted()

    reserving.release()  # the reservation succeeds after the cancel was accepted

    assert (await cancelling.result()).stage == Stage.CANCELLED
    assert standins.compensations() == ["release_stock"]
    assert standins.inputs("create_payment_link") == []


async def test_cancel_while_the_shipment_is_booked_cancels_the_booking(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    booking = standins.hold("book_shipment")
    order = await desk.place(standins)
    await order.paid()
    await order.pack()
    await booking.reached()
    cancelling = await order.cancel_accepted()

    booking.release()  # the carrier confirms the booking after the cancel was accepted

    assert (await cancelling.result()).stage == Stage.CANCELLED
    assert standins.compensations() == ["cancel_shipment", "refund_payment", "release_stock"]
    assert standins.refunds() == [standins.total]
    assert "shipped" not in standins.sent()
    assert (await order.status()).tracking_number is not None  # booked, then cancelled


async def test_delay_notice_in_flight_does_not_follow_the_cancellation(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    telling = standins.hold_message(MessageKind.DELAYED)
    order = await desk.place(standins)
    await order.waiting_for("payment")
    delaying = order.meanwhile(order.delay("supplier_late", date(2030, 1, 15)))
    await telling.reached()
    cancelling = await order.cancel_accepted()
    # Compensation runs; the cancellation notice waits for the delay notice on its way.
    await order.reached("order.cancelled")
    assert "cancelled" not in standins.sent()

    telling.release()
    await delaying
    await cancelling.result()

    assert (await order.result()).stage == Stage.CANCELLED
    assert standins.compensations() == ["cancel_payment_link", "release_stock"]
    assert standins.sent()[-1] == "cancelled"


# --- timers against messages from outside ---------------------------------------------------


async def test_confirm_arriving_as_the_review_sla_escalates_is_accepted(desk: OrderDesk) -> None:
    standins = reviewed()
    escalating = standins.hold_message(MessageKind.MANAGER_REVIEW_ESCALATED)
    order = await desk.place(standins)
    await order.waiting_for("operator_confirmation")
    order.meanwhile(order.sleep(timedelta(hours=2, minutes=1)))
    await escalating.reached()  # the SLA timer has fired

    confirmed = await order.confirm(note="just in time")

    assert confirmed.accepted
    escalating.release()
    status = await order.waiting_for("payment")
    assert types(status).count("review.confirmed") == 1
    assert standins.compensations() == []


async def test_cancel_while_the_payment_expiry_compensates_is_refused_and_undoes_once(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns()
    unlinking = standins.hold("cancel_payment_link")
    order = await desk.place(standins)
    await order.waiting_for("payment")
    ending = order.meanwhile(order.result(timeout=20))  # 72 h pass: the link expires
    await unlinking.reached()

    reason = await refusal(order.cancel())

    assert reason.startswith("cancel is not allowed now")
    unlinking.release()
    assert (await ending).stage == Stage.CANCELLED
    last = (await order.status()).timeline[-1]
    assert (last.detail["reason"], last.actor) == (CancelReason.PAYMENT_EXPIRED, "system")
    assert standins.compensations() == ["cancel_payment_link", "release_stock"]
    assert standins.sent().count("cancelled") == 1


async def test_payment_arriving_as_the_link_expires_is_refunded(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    unlinking = standins.hold("cancel_payment_link")
    order = await desk.place(standins)
    await order.waiting_for("payment")
    ending = order.meanwhile(order.result(timeout=20))
    await unlinking.reached()

    await order.pay()  # the customer paid in the last second
    unlinking.release()

    assert (await ending).stage == Stage.CANCELLED
    assert standins.refunds() == [standins.total]
    assert standins.compensations().count("release_stock") == 1


async def test_silence_guard_stays_quiet_when_a_reminder_is_due_at_the_same_time(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.waiting_for("payment")

    await order.result()  # reminders at 24 h and 60 h, expiry at 72 h

    reminders = {at for kind, at in order.standins.messages() if kind == "payment_reminder"}
    interims = {at for kind, at in order.standins.messages() if kind == "interim"}
    assert not any(abs(i - r) < timedelta(minutes=1) for i in interims for r in reminders)


# --- messages from outside against each other -----------------------------------------------


async def test_payment_and_cancel_arriving_together_refund_the_payment(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    asking = standins.hold_message(MessageKind.PAYMENT_REQUESTED)
    order = await desk.place(standins)
    await asking.reached()
    await order.pay()  # both arrive while the payment request is still being sent
    cancelling = await order.cancel_accepted()

    asking.release()

    assert (await cancelling.result()).stage == Stage.CANCELLED
    assert standins.refunds() == [standins.total]
    assert standins.compensations().count("release_stock") == 1
    assert (await order.status()).payment_status == "refunded"


async def test_signals_before_the_first_workflow_task_are_kept_and_deduplicated(
    desk: OrderDesk,
) -> None:
    order = await desk.place(worker=False)
    paid = await order.pay()
    await order.pay(event_id=paid.event_id)  # the provider retried its webhook

    await desk.start_worker(order)

    status = await order.waiting_for("packing")
    assert status.payment_status == "paid"
    assert types(status).count("payment.succeeded") == 1
    assert order.standins.sent().count("payment_received") == 1
    assert order.standins.compensations() == []


async def test_duplicate_failed_payment_event_alerts_once(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.waiting_for("payment")
    failed = await order.pay(PaymentOutcome.FAILED, reason="card declined")
    await order.pay(PaymentOutcome.FAILED, reason="card declined", event_id=failed.event_id)
    await order.pay()

    status = await order.waiting_for("packing")

    assert types(status).count("payment.failed") == 1
    sent = order.standins.sent()
    assert (sent.count("manager_payment_failed"), sent.count("payment_failed")) == (1, 1)
    assert order.standins.compensations() == []


async def test_duplicate_carrier_exception_opens_one_incident(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.packed()
    await order.waiting_for("carrier")
    await order.carrier(TrackingStatus.EXCEPTION, "parcel damaged", event_id="carrier-exc-1")
    await order.carrier(TrackingStatus.EXCEPTION, "parcel damaged", event_id="carrier-exc-1")
    await order.carrier(TrackingStatus.DELIVERED)

    status = await order.reached("order.delivered")
    await order.settled()

    assert types(status).count("carrier.Exception") == 1
    assert len(order.standins.inputs("record_incident")) == 1
    assert order.standins.sent().count("delivery_problem") == 1


async def test_carrier_events_during_handover_are_kept_for_transit(desk: OrderDesk) -> None:
    standins = cod()
    printing = standins.hold("generate_documents")
    order = await desk.place(standins)
    await order.packed()
    await printing.reached()
    await order.carrier(TrackingStatus.IN_TRANSIT)  # the carrier scans before we say "shipped"
    await order.carrier(TrackingStatus.DELIVERED)

    printing.release()

    status = await order.reached("order.delivered")
    assert types(status).index("order.shipped") < types(status).index("carrier.InTransit")
    await order.settled()
    assert standins.sent()[-3:] == ["shipped", "in_transit", "delivered"]


async def test_second_stock_decision_is_refused_once_the_first_is_taken(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns(short={"MUG-01": 0}))
    await order.waiting_for("stock_decision")

    await order.decide_stock(StockChoice.BACKORDER)
    reason = await refusal(order.decide_stock(StockChoice.CANCEL))

    assert "no stock decision is pending" in reason
    status = await order.waiting_for("backorder_arrival")
    assert types(status).count("stock.decided") == 1
    assert order.standins.compensations() == []


async def test_two_stock_decisions_during_an_interim_notice_take_only_the_first(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns(short={"MUG-01": 0})
    interim = standins.hold_message(MessageKind.INTERIM)
    order = await desk.place(standins)
    await order.waiting_for("stock_decision")
    order.meanwhile(order.sleep(SILENT_DAY))
    await interim.reached()

    first = await order.decide_stock(StockChoice.BACKORDER)
    assert first.accepted
    await refusal(order.decide_stock(StockChoice.CANCEL))

    interim.release()
    status = await order.waiting_for("backorder_arrival")
    assert types(status).count("stock.decided") == 1
    assert order.standins.compensations() == []


async def test_confirm_after_an_accepted_reject_is_refused(desk: OrderDesk) -> None:
    standins = reviewed()
    interim = standins.hold_message(MessageKind.INTERIM)
    order = await desk.place(standins)
    await order.waiting_for("operator_confirmation")
    order.meanwhile(order.sleep(SILENT_DAY))  # escalated at 2 h, first interim notice at 24 h
    await interim.reached()
    rejecting = await order.reject_accepted("wholesale orders go through the B2B desk")

    await refusal(order.confirm(note="looks fine to me"))

    interim.release()
    assert (await asyncio.wait_for(rejecting.result(), 3)).stage == Stage.CANCELLED
    assert order.standins.inputs("send_confirmation") == []
    assert order.standins.compensations() == []
