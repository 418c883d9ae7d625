"""OrderWorkflow's lifecycle paths on the time-skipping server, one test each.

Stand-in activities under the real names (tests/workflows/standins.py): no Postgres, no SMTP,
no providers. Each test asserts what a user would see (the status query, the messages sent,
in order) and what was undone. The real-stack versions are tests/test_lifecycle.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType

from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DeliveryMethod,
    IncidentCause,
    LineEdit,
    MessageKind,
    OrderStatus,
    PaymentMethod,
    PaymentOutcome,
    Stage,
    StockChoice,
    TrackingStatus,
    WaitingFor,
    WarehouseEventKind,
)
from tests.workflows.order_run import OPERATOR, OrderDesk, refusal, types
from tests.workflows.standins import MUG, PAYMENT_ID, TRACKING_NUMBER, OrderStandIns
from workflows import search

DAY = timedelta(days=1)
KYIV = ZoneInfo("Europe/Kyiv")
GONE = LineEdit(sku="GONE-01", name="Sold out", quantity=2, unit_price=Decimal("100.00"))
TEA = LineEdit(sku="TEA-01", name="Green tea 100 g", quantity=2, unit_price=Decimal("60.00"))
ONE_MUG = LineEdit(sku="MUG-01", name="Mug", quantity=1, unit_price=Decimal("250.00"))


def cod(**setup: Any) -> OrderStandIns:
    return OrderStandIns(payment=PaymentMethod.COD, **setup)


def reviewed(**setup: Any) -> OrderStandIns:
    return OrderStandIns(review_reasons=["customer note: please deliver after 18:00"], **setup)


async def test_prepaid_courier_order_goes_from_intake_to_feedback_and_completes(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    status = await order.waiting_for("payment")
    assert (status.stage, status.status, status.payment_status) == (
        Stage.PAYMENT,
        CustomerStatus.PROCESSING,
        "awaiting_payment",
    )
    assert status.allowed_actions == ["mark_delayed", "cancel"]

    delivered = await order.delivered()
    assert delivered.tracking_number == TRACKING_NUMBER
    assert (delivered.payment_status, delivered.fulfilment_status) == ("paid", "delivered")
    assert delivered.allowed_actions == []  # with the carrier, then delivered: nothing to do

    await order.sleep(2 * DAY)  # the feedback request goes out 24-48 h after delivery
    asking = await order.waiting_for("feedback")
    delivered_at = next(e.at for e in asking.timeline if e.type == "order.delivered")
    asked_at = next(e.at for e in asking.timeline if e.type == "feedback.requested")
    assert DAY <= asked_at - delivered_at <= 2 * DAY
    assert 9 <= asked_at.astimezone(KYIV).hour < 21  # never in the customer's night
    await order.feedback(rating=5)

    result = await order.result()
    assert (result.stage, result.status) == (Stage.COMPLETED, CustomerStatus.DELIVERED)
    done = await order.status()
    assert types(done)[-2:] == ["feedback.received", "order.completed"]
    assert order.standins.sent() == [
        "confirmation",
        "payment_requested",
        "payment_received",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "feedback_request",
    ]
    assert order.standins.compensations() == []
    assert order.standins.inputs("record_incident") == []


async def test_the_payment_step_gives_the_refund_ledger_what_was_paid(desk: OrderDesk) -> None:
    """The ledger's limit (`orders.paid_amount`) comes with the step, as a typed field: what
    the verified payment brought in, never parsed out of the step's detail."""
    order = await desk.place(OrderStandIns(lines=[TEA]))
    await order.waiting_for("payment")
    await order.pay()
    await order.waiting_for("packing")

    paid = {
        record.entry.type: record.paid
        for record in order.standins.inputs("record_event")
        if record.paid is not None
    }
    assert paid == {"payment.succeeded": Decimal("120.00")}


async def test_cash_on_delivery_skips_the_payment_wait(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    status = await order.waiting_for("packing")
    assert status.payment_status == "cash_on_delivery"
    assert "payment.on_delivery" in types(status)

    delivered = await order.delivered()
    assert delivered.payment_status == "collected_on_delivery"
    status = await order.reached("payment.collected_on_delivery")
    collected = next(e for e in status.timeline if e.type == "payment.collected_on_delivery")
    assert collected.actor == "carrier"
    assert collected.detail == {"amount": str(order.standins.total)}
    assert order.standins.inputs("create_payment_link") == []
    assert "payment_requested" not in order.standins.sent()


async def test_pickup_order_is_collected_at_the_counter(desk: OrderDesk) -> None:
    order = await desk.place(cod(delivery=DeliveryMethod.PICKUP))
    await order.packed()
    ready = await order.waiting_for("collection")
    assert ready.status == CustomerStatus.READY_FOR_PICKUP
    assert "cancel" in ready.allowed_actions  # still at the shop: it can be cancelled

    await order.warehouse(WarehouseEventKind.COLLECTED)
    collected = await order.reached("order.collected")
    assert collected.status == CustomerStatus.DELIVERED
    await order.settled()
    assert "cancel" not in collected.allowed_actions
    sent = order.standins.sent()
    assert sent[-2:] == ["ready_for_pickup", "delivered"] and "shipped" not in sent
    assert order.standins.inputs("book_shipment") == []


async def test_uncollected_pickup_is_cancelled_with_a_refund(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns(delivery=DeliveryMethod.PICKUP))
    await order.paid()
    await order.packed()
    await order.waiting_for("collection")

    result = await order.result()  # reminder on day 5, the hold ends on day 7

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.payment_status == "refunded"
    assert status.timeline[-1].detail["reason"] == CancelReason.NOT_COLLECTED
    ready_at = next(e.at for e in status.timeline if e.type == "pickup.ready")
    assert abs(status.timeline[-1].at - ready_at - desk.policy.pickup_hold) < timedelta(seconds=5)
    sent = order.standins.sent()
    assert sent.count("pickup_reminder") == 1 and sent[-1] == "cancelled"
    reminder = next(n for n in order.standins.inputs("notify") if n.kind == "pickup_reminder")
    assert reminder.order_id == order.handle.id.removeprefix("order-")
    assert order.standins.compensations() == ["refund_payment", "release_stock"]
    assert order.standins.refunds() == [order.standins.total]


async def test_unpaid_order_gets_two_reminders_then_expires(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.waiting_for("payment")

    result = await order.result()  # reminders at 24 h and 60 h, expiry at 72 h

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    cancelled = status.timeline[-1]
    assert cancelled.type == "order.cancelled"
    assert cancelled.detail["reason"] == CancelReason.PAYMENT_EXPIRED
    requested = next(e.at for e in status.timeline if e.type == "payment.requested")
    assert abs(cancelled.at - requested - timedelta(hours=72)) < timedelta(seconds=5)
    sent = order.standins.sent()
    assert sent[:2] == ["confirmation", "payment_requested"] and sent[-1] == "cancelled"
    reminders = [n for n in order.standins.inputs("notify") if n.kind == "payment_reminder"]
    assert [n.key for n in reminders] == ["payment_reminder:1", "payment_reminder:2"]
    reminded_at = [at for kind, at in order.standins.messages() if kind == "payment_reminder"]
    assert [round((at - requested) / timedelta(hours=1)) for at in reminded_at] == [24, 60]
    assert order.standins.compensations() == ["cancel_payment_link", "release_stock"]


async def test_expired_order_no_longer_shows_payment_awaited(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.waiting_for("payment")
    await order.result()
    assert (await order.status()).payment_status != "awaiting_payment"


async def test_failed_payment_alerts_a_manager_first_then_the_customer_pays(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.waiting_for("payment")
    await order.pay(PaymentOutcome.FAILED, reason="insufficient funds")
    failed = await order.reached("payment.failed")
    assert failed.timeline[-1].detail["reason"] == "insufficient_funds"  # a code, not the text
    await order.waiting_for("payment")  # the link still works: the customer tries again
    await order.pay()
    paid = await order.waiting_for("packing")

    assert paid.payment_status == "paid"
    sent = order.standins.sent()
    assert sent[sent.index("payment_requested") + 1 :][:4] == [
        "manager_payment_failed",
        "payment_failed",
        "payment_received",
        "picking",
    ]
    told = next(n for n in order.standins.inputs("notify") if n.kind == MessageKind.PAYMENT_FAILED)
    assert told.params["url"].endswith(PAYMENT_ID)


async def test_partial_stock_is_backordered_and_arrives(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns(short={"MUG-01": 1}))
    deciding = await order.waiting_for("stock_decision")
    assert "decide_stock" in deciding.allowed_actions
    assert deciding.timeline[-1].detail == {"MUG-01": "1 missing"}

    await order.decide_stock(StockChoice.BACKORDER)
    waiting = await order.waiting_for("backorder_arrival")
    assert waiting.status == CustomerStatus.DELAYED
    assert waiting.expected_date == order.standins.backorder_date
    await order.warehouse(WarehouseEventKind.STOCK_ARRIVED)
    status = await order.waiting_for("payment")

    assert types(status).count("stock.reserved") == 1
    assert order.standins.sent()[1:3] == ["stock_partial", "backordered"]
    reservations = order.standins.inputs("reserve_stock")
    assert [r.only_skus for r in reservations] == [None, None]  # every line's wish, each time
    assert len(order.standins.inputs("request_backorder")) == 1


async def test_backorder_that_never_arrives_cancels_the_order(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns(short={"MUG-01": 0}))
    await order.waiting_for("stock_decision")
    await order.decide_stock(StockChoice.BACKORDER)
    await order.waiting_for("backorder_arrival")

    result = await order.result()  # the back-order deadline is 14 days

    assert result.stage == Stage.CANCELLED
    status = await order.status()
    assert status.timeline[-1].detail["reason"] == CancelReason.OUT_OF_STOCK
    backordered = next(e.at for e in status.timeline if e.type == "stock.backordered")
    waited = status.timeline[-1].at - backordered
    assert abs(waited - desk.policy.backorder_deadline) < timedelta(seconds=5)
    sent = order.standins.sent()
    # Fourteen silent days: an interim notice a day, up to the policy's bound.
    assert sent.count("interim") == desk.policy.silence_max_notices
    assert sent[-1] == "cancelled"
    assert order.standins.compensations() == ["release_stock"]  # no payment was asked yet


async def test_partial_stock_ships_what_is_there(desk: OrderDesk) -> None:
    order = await desk.place(cod(lines=[ONE_MUG, GONE], short={"GONE-01": 0}))
    await order.waiting_for("stock_decision")

    decided = await order.decide_stock(StockChoice.SHIP_AVAILABLE)

    assert decided.accepted
    status = await order.waiting_for("packing")
    changed = next(e for e in status.timeline if e.type == "order.changed")
    assert changed.detail == {"total": "250.00", "lines": "1"} and changed.actor == OPERATOR
    [change] = order.standins.inputs("apply_decision")
    assert change.quantities == {"MUG-01": 1, "GONE-01": 0}
    assert len(order.standins.inputs("reserve_stock")) == 1


async def test_partial_stock_takes_an_alternative(desk: OrderDesk) -> None:
    gone = LineEdit(sku="GONE-02", name="Sold out", quantity=1, unit_price=Decimal("100.00"))
    order = await desk.place(cod(lines=[gone], short={"GONE-02": 0}))
    await order.waiting_for("stock_decision")
    reason = await refusal(order.decide_stock(StockChoice.ALTERNATIVE))
    assert "alternative_lines" in reason

    await order.decide_stock(StockChoice.ALTERNATIVE, alternative_lines=[TEA])

    status = await order.waiting_for("packing")
    assert types(status).count("stock.reserved") == 1
    changed = next(e for e in status.timeline if e.type == "order.changed")
    assert changed.detail["total"] == "120.00"
    assert [r.only_skus for r in order.standins.inputs("reserve_stock")] == [None, None]


async def test_manual_review_confirmed_with_a_final_price(desk: OrderDesk) -> None:
    order = await desk.place(reviewed())
    status = await order.waiting_for("operator_confirmation")
    assert set(status.allowed_actions) == {"confirm", "reject", "mark_delayed", "cancel"}
    assert order.standins.sent() == ["awaiting_review"]  # told at once, before any promise
    assert "must be positive" in await refusal(order.confirm(final_price=Decimal("0")))

    await order.confirm(final_price=Decimal("450.00"), note="discount")

    status = await order.waiting_for("payment")
    review = next(e for e in status.timeline if e.type == "review.confirmed")
    assert review.actor == OPERATOR and review.detail == {"total": "450.00", "note": "discount"}
    assert order.standins.inputs("apply_decision")[0].final_price == Decimal("450.00")
    requested = next(n for n in order.standins.inputs("notify") if n.kind == "payment_requested")
    assert requested.params["amount"] == "450.00"
    assert order.standins.sent() == ["awaiting_review", "confirmation", "payment_requested"]


async def test_manual_review_rejected(desk: OrderDesk) -> None:
    order = await desk.place(reviewed())
    await order.waiting_for("operator_confirmation")
    assert "needs a reason" in await refusal(order.reject("  "))

    rejected = await order.reject("wholesale orders go through the B2B desk")

    assert rejected.stage == Stage.CANCELLED  # answered once the order is cancelled
    assert (await order.result()).stage == Stage.CANCELLED
    last = (await order.status()).timeline[-1]
    assert last.detail["reason"] == CancelReason.REJECTED and last.actor == OPERATOR
    assert order.standins.sent() == ["awaiting_review", "rejected"]
    assert order.standins.inputs("send_confirmation") == []
    assert order.standins.compensations() == []


async def test_manual_review_escalates_after_the_sla_and_can_still_be_confirmed(
    desk: OrderDesk,
) -> None:
    order = await desk.place(reviewed())
    waiting = await order.waiting_for("operator_confirmation")
    assert waiting.next_deadline is not None
    assert waiting.next_deadline.waiting_for == "operator_confirmation"

    await order.sleep(timedelta(hours=3))

    await order.reached("review.escalated")
    status = await order.waiting_for("operator_confirmation")  # again, now without a deadline
    requested = next(e.at for e in status.timeline if e.type == "review.requested")
    escalated = next(e.at for e in status.timeline if e.type == "review.escalated")
    assert timedelta(hours=2) <= escalated - requested < timedelta(hours=2, seconds=5)
    assert "confirm" in status.allowed_actions
    assert status.next_deadline is None  # escalated: it waits for a human without a deadline
    assert order.standins.sent() == ["awaiting_review", "manager_review_escalated"]
    await order.confirm()
    await order.waiting_for("payment")


async def test_three_silent_days_give_exactly_three_interim_notices(desk: OrderDesk) -> None:
    order = await desk.place(reviewed())
    await order.waiting_for("operator_confirmation")

    await order.sleep(3 * DAY + timedelta(hours=1))

    status = await order.status()
    assert [b.waiting_for for b in status.sla_breaches] == ["operator_confirmation"] * 3
    gaps = [b.at - a.at for a, b in zip(status.sla_breaches, status.sla_breaches[1:], strict=False)]
    assert all(abs(gap - DAY) < timedelta(seconds=5) for gap in gaps), gaps
    assert order.standins.sent().count("interim") == 3
    assert types(status).count("sla.silence_breached") == 3
    notices = [n for n in order.standins.inputs("notify") if n.kind == MessageKind.INTERIM]
    assert [n.params["waiting_for"] for n in notices] == ["operator_confirmation"] * 3


async def test_operator_delay_is_told_to_the_customer(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.waiting_for("payment")
    assert "needs a reason" in await refusal(order.delay(" ", date(2030, 1, 15)))

    delayed = await order.delay("supplier is late", date(2030, 1, 15))

    assert delayed.status == CustomerStatus.DELAYED
    status = await order.status()
    assert (status.status, status.expected_date) == (CustomerStatus.DELAYED, date(2030, 1, 15))
    assert types(status)[-1] == "order.delayed" and status.timeline[-1].actor == OPERATOR
    told = order.standins.inputs("notify")[-1]
    assert told.kind == MessageKind.DELAYED
    assert told.params == {"reason": "supplier is late", "new_date": "2030-01-15"}


@pytest.mark.parametrize(
    ("stage", "undone"),
    [
        ("review", []),
        ("payment", ["cancel_payment_link", "release_stock"]),
        ("packing", ["refund_payment", "release_stock"]),
        ("documents", ["cancel_shipment", "refund_payment", "release_stock"]),
    ],
)
async def test_cancellation_before_handover_undoes_in_reverse_order(
    desk: OrderDesk, stage: str, undone: list[str]
) -> None:
    standins = reviewed() if stage == "review" else OrderStandIns()
    documents = standins.hold("generate_documents")
    order = await desk.place(standins)
    if stage == "review":
        await order.waiting_for("operator_confirmation")
    elif stage == "payment":
        await order.waiting_for("payment")
    else:
        await order.paid()
    if stage == "documents":  # the shipment is booked, the label is being printed
        await order.pack()
        await documents.reached()
        cancelling = await order.cancel_accepted()
        documents.release()
        cancelled = await cancelling.result()
    else:
        cancelled = await order.cancel()

    assert (cancelled.stage, cancelled.status) == (Stage.CANCELLED, CustomerStatus.CANCELLED)
    assert (await order.result()).stage == Stage.CANCELLED
    status = await order.status()
    last = status.timeline[-1]
    assert last.type == "order.cancelled" and last.actor == OPERATOR
    assert last.detail["reason"] == CancelReason.CUSTOMER_REQUEST
    assert order.standins.compensations() == undone
    paid = stage in ("packing", "documents")
    assert order.standins.refunds() == ([standins.total] if paid else [])
    if paid:
        assert status.payment_status == "refunded"
    assert order.standins.sent()[-1] == "cancelled"
    told = order.standins.inputs("notify")[-1]
    assert told.params.get("refund") == (str(standins.total) if paid else None)


async def test_cancellation_after_handover_is_refused(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.packed()
    status = await order.waiting_for("carrier")
    assert "cancel" not in status.allowed_actions

    reason = await refusal(order.cancel())

    assert "the parcel is already with the carrier" in reason
    assert (await order.status()).stage == Stage.TRANSIT
    assert order.standins.compensations() == []


async def test_picking_defect_opens_an_incident_and_picks_again(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.waiting_for("packing")
    await order.pack(defects=["MUG-01: cracked handle"])
    await order.until(
        lambda s: types(s).count("picking.started") == 2 and s.waiting_for == "packing",
        "a second pick",
    )
    await order.pack()
    status = await order.waiting_for("carrier")

    assert "incident.opened" in types(status)
    [incident] = order.standins.inputs("record_incident")
    assert (incident.stage, incident.cause) == (Stage.PICKING, IncidentCause.HUMAN)
    assert "cracked handle" in incident.summary
    assert order.standins.sent()[1:4] == ["picking", "manager_incident", "packed"]
    assert len(order.standins.inputs("create_pick_task")) == 2


async def _fail_picking(order: Any, desk: OrderDesk, missing: list[str]) -> OrderStatus:
    for attempt in range(1, desk.policy.picking_attempts + 1):

        def picking(status: OrderStatus, attempt: int = attempt) -> bool:
            return (
                status.waiting_for == "packing"
                and types(status).count("picking.started") == attempt
            )

        await order.until(picking, f"pick {attempt}")
        await order.pack(missing=missing)
    return await order.waiting_for("stock_decision")


async def test_picking_that_keeps_failing_ships_what_was_packed(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns(lines=[MUG, TEA]))
    await order.paid()
    deciding = await _fail_picking(order, desk, missing=["MUG-01"])
    assert deciding.stage == Stage.PICKING and types(deciding)[-1] == "picking.needs_operator"
    assert "decide_stock" in deciding.allowed_actions
    reason = await refusal(order.decide_stock(StockChoice.BACKORDER))
    assert "ship_available or cancel" in reason

    await order.decide_stock(StockChoice.SHIP_AVAILABLE, note="ship the tea")

    status = await order.waiting_for("carrier")
    packed = next(e for e in status.timeline if e.type == "order.packed")
    assert packed.actor == OPERATOR
    assert len(order.standins.inputs("record_incident")) == desk.policy.picking_attempts
    assert order.standins.sent().count("picking") == 1
    # The lines, the total and the payment follow what was packed; the customer is told.
    [change] = order.standins.inputs("apply_decision")
    assert change.quantities == {"MUG-01": 0}
    assert [line.sku for line in order.standins.lines] == ["TEA-01"]
    told = [n for n in order.standins.inputs("notify") if n.kind == "items_unavailable"]
    assert [n.params for n in told] == [{"missing": "MUG-01"}]
    [refund] = order.standins.inputs("refund_payment")
    assert (refund.amount, refund.step) == (MUG.unit_price * MUG.quantity, "refund:not-packed")
    assert "payment.partially_refunded" in types(status)


async def test_picking_that_finds_nothing_cancels_instead_of_shipping(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await _fail_picking(order, desk, missing=["MUG-01"])

    await order.decide_stock(StockChoice.SHIP_AVAILABLE)

    assert (await order.result()).stage == Stage.CANCELLED
    assert "items_unavailable" not in order.standins.sent()
    assert order.standins.compensations() == ["release_stock"]


async def test_carrier_silence_marks_the_order_delayed(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.packed()
    await order.waiting_for("carrier")
    await order.carrier(TrackingStatus.IN_TRANSIT)
    await order.reached("carrier.InTransit")

    await order.sleep(timedelta(days=3, hours=1))

    status = await order.reached("transit.no_news")
    await order.settled()
    assert status.status == CustomerStatus.DELAYED
    told = order.standins.inputs("notify")[-1]
    assert (told.kind, told.params["reason"]) == (MessageKind.DELAYED, "carrier_silent")
    await order.carrier(TrackingStatus.DELIVERED)
    delivered = await order.reached("order.delivered")
    assert delivered.status == CustomerStatus.DELIVERED


async def test_carrier_exception_opens_an_external_incident(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.packed()
    await order.waiting_for("carrier")

    await order.carrier(TrackingStatus.EXCEPTION, "parcel damaged at hub")

    status = await order.reached("incident.opened")
    await order.waiting_for("carrier")
    assert status.status == CustomerStatus.DELAYED
    [incident] = order.standins.inputs("record_incident")
    assert (incident.stage, incident.cause) == (Stage.TRANSIT, IncidentCause.EXTERNAL)
    assert "parcel damaged at hub" in incident.summary
    assert order.standins.sent()[-2:] == ["manager_incident", "delivery_problem"]


async def test_negative_feedback_opens_an_incident(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.delivered()
    await order.sleep(2 * DAY)
    await order.waiting_for("feedback")

    incident = order.standins.hold("record_incident")
    await order.feedback(nps=3)
    await incident.reached()
    await order.feedback(nps=9)  # a second answer changes nothing
    incident.release()

    result = await order.result()
    assert result.stage == Stage.COMPLETED
    status = await order.status()
    received = next(e for e in status.timeline if e.type == "feedback.received")
    assert received.detail["nps"] == "3" and received.actor == "customer"
    [incident] = order.standins.inputs("record_incident")
    assert incident.stage == Stage.FEEDBACK and "negative" in incident.summary
    assert order.standins.sent()[-2:] == ["feedback_request", "manager_incident"]


async def test_an_answer_before_the_request_ends_the_stage_at_once(desk: OrderDesk) -> None:
    """Rated from the status page before the request's time: no request, no reminder, and
    the negative answer's incident opened then, not 24-48 h later."""
    order = await desk.place(cod())
    delivered = await order.delivered()
    await order.waiting_for("feedback_request")

    await order.feedback(rating=1)

    result = await order.result()
    assert result.stage == Stage.COMPLETED
    status = await order.status()
    assert types(status)[-4:] == [
        "feedback.scheduled",
        "feedback.received",
        "incident.opened",
        "order.completed",
    ]
    delivered_at = next(e.at for e in delivered.timeline if e.type == "order.delivered")
    opened_at = next(e.at for e in status.timeline if e.type == "incident.opened")
    assert opened_at - delivered_at < timedelta(minutes=1)
    [incident] = order.standins.inputs("record_incident")
    assert incident.stage == Stage.FEEDBACK and "negative" in incident.summary
    sent = order.standins.sent()
    assert "feedback_request" not in sent and "feedback_reminder" not in sent
    assert sent[-1] == "manager_incident"


async def test_no_feedback_gets_exactly_one_reminder(desk: OrderDesk) -> None:
    order = await desk.place(cod())
    await order.delivered()

    result = await order.result()

    assert result.stage == Stage.COMPLETED
    status = await order.status()
    assert types(status)[-2:] == ["feedback.none", "order.completed"]
    sent = order.standins.sent()
    assert sent[-2:] == ["feedback_request", "feedback_reminder"]
    assert sent.count("feedback_reminder") == 1


async def test_invalid_order_is_cancelled_and_never_confirmed(desk: OrderDesk) -> None:
    problem = "total 1 does not match the lines (500.00)"
    order = await desk.place(OrderStandIns(problems=[problem]))

    result = await order.result()

    assert (result.stage, result.status) == (Stage.CANCELLED, CustomerStatus.CANCELLED)
    status = await order.status()
    assert types(status) == ["order.received", "order.validation_started", "order.invalid"]
    assert status.timeline[-1].detail == {"problems": problem}
    assert status.allowed_actions == []
    assert order.standins.sent() == []  # broken contacts: nobody to tell
    assert [c.name for c in order.standins.calls if c.name != "record_event"] == ["validate_order"]


async def test_the_search_attributes_follow_the_order_each_change_upserted_once(
    desk: OrderDesk,
) -> None:
    """Temporal's visibility (the Web UI, `temporal workflow list --query`) finds an order by
    its stage and its flags; the order's history holds an upsert only where a value changes
    (`PatchId.SEARCH_ATTRIBUTES_ON_CHANGE`: waits that need no one no longer re-set the flag)."""
    order = await desk.place(reviewed(payment=PaymentMethod.COD))
    await order.waiting_for("operator_confirmation")
    waiting = (await order.handle.describe()).typed_search_attributes
    assert waiting.get(search.ORDER_NEEDS_ACTION) is True
    assert waiting.get(search.ORDER_STAGE) == Stage.VALIDATION.value
    await order.confirm()
    await order.delivered()
    await order.until(lambda s: s.stage == Stage.FEEDBACK, "the feedback stage")
    shown = (await order.handle.describe()).typed_search_attributes
    assert shown.get(search.ORDER_NEEDS_ACTION) is False
    assert shown.get(search.ORDER_SLA_BREACHED) is False
    assert shown.get(search.ORDER_STAGE) == Stage.FEEDBACK.value

    history = await order.handle.fetch_history()
    upserts = (
        event.upsert_workflow_search_attributes_event_attributes.search_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    )
    # The order's own (the SDK upserts TemporalChangeVersion with each patch it records).
    upserted = [
        dict(attributes.indexed_fields)
        for attributes in upserts
        if "TemporalChangeVersion" not in attributes.indexed_fields
    ]
    seen: dict[str, bytes] = {}
    for fields in upserted:
        changed = {name for name, value in fields.items() if seen.get(name) != value.data}
        assert changed == set(fields), f"{set(fields) - changed} upserted unchanged"
        seen.update({name: value.data for name, value in fields.items()})
    # Set at the start; then each stage, and the review wait's flag raised and lowered.
    assert set(upserted[0]) == {"OrderNumber", "OrderStage", "OrderNeedsAction", "OrderSlaBreached"}
    assert [set(fields) for fields in upserted[1:]].count({"OrderNeedsAction"}) == 2


async def test_an_activations_steps_are_written_together_with_the_wait_that_follows(
    desk: OrderDesk,
) -> None:
    """`one-write-per-activation`: the steps taken between two activities are one write,
    before the next activity or wait; a wait that follows a step goes in the same write."""
    order = await desk.place(cod())
    await order.delivered()
    status = await order.until(lambda s: s.stage == Stage.FEEDBACK, "the feedback stage")
    batches = order.standins.batches
    written = [[step.entry.type for step in batch.steps] for batch in batches]
    assert written[:4] == [
        ["order.received", "order.validation_started"],  # then validate_order
        ["order.validated", "order.confirmation_started"],  # then the confirmation
        ["order.confirmed", "stock.reservation_started"],  # then reserve_stock
        ["stock.reserved", "payment.on_delivery", "picking.started"],  # then the pick task
    ]
    assert ["order.delivered", "payment.collected_on_delivery"] in written
    # Every step written once, in order; the status page's timeline is what was written.
    assert [step for steps in written for step in steps] == types(status)
    assert len(order.standins.inputs("record_event")) == len(types(status))
    assert len(batches) < len(types(status))
    # The waits for the carrier and for the feedback request: their progress in the write of
    # the step before them, no write of their own.
    waits = {batch.steps[-1].entry.type: batch.progress for batch in batches if batch.progress}
    assert {step: progress.waiting_for for step, progress in waits.items()} == {
        "transit.started": WaitingFor.CARRIER,
        "feedback.scheduled": WaitingFor.FEEDBACK_REQUEST,
    }
