"""Customer returns, exchanges and outside refunds on the time-skipping server, with stand-in
activities: ReturnWorkflow and RefundWorkflow, paths and races, on the real 14-day window.

What a user sees: the return's status query, its steps on the order's timeline (`return.*`),
the messages it sent, the refunds, restocks and bookings asked for. Real-stack versions:
tests/test_after_delivery.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from schema.contracts import (
    CancelOrder,
    CancelReason,
    ExchangeOutcome,
    InspectedLine,
    InspectionFinding,
    LineEdit,
    MessageKind,
    OrderResult,
    PaymentMethod,
    RefundReason,
    RefundWorkflowInput,
    ReturnDecline,
    ReturnLine,
    ReturnReason,
    ReturnResolution,
    ReturnStatus,
    Stage,
    StepChoice,
    TrackingStatus,
    refund_workflow_id_for,
    workflow_id_for,
)
from schema.vocabulary import ErrorType, ReturnAction
from tests.workflows.order_run import OrderDesk, refusal
from tests.workflows.standins import PAYMENT_ID, OrderStandIns
from workflows import rules
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow

DAY = timedelta(days=1)
MUGS = InspectedLine("MUG-01", received=2, accepted=2)


async def test_a_return_within_the_window_is_refunded_after_inspection(desk: OrderDesk) -> None:
    ret = await desk.open_return(delivered_ago=13 * DAY)  # a day left of the 14
    approved = await ret.waiting_for("parcel")
    assert approved.status == ReturnStatus.APPROVED and approved.tracking_number
    assert ret.standins.inputs("book_return_shipment")[0].return_id == ret.input.return_id
    assert len(ret.standins.inputs("generate_return_label")) == 1
    assert ret.told() == ["return_approved"]
    label = ret.standins.inputs("notify")[-1]
    assert label.params["return_id"] == ret.input.return_id  # the message links to the label

    received = await ret.delivered()
    assert received.status == ReturnStatus.RECEIVED
    await ret.inspect(MUGS)
    result = await ret.result()

    assert (result.status, result.refunded) == (ReturnStatus.REFUNDED, Decimal("500.00"))
    [refund] = ret.standins.inputs("refund_payment")
    assert (refund.amount, refund.step) == (Decimal("500.00"), f"return:{ret.input.return_id}")
    assert refund.paid == Decimal("500.00")
    [restock] = ret.standins.inputs("restock")
    assert [(line.sku, line.quantity) for line in restock.lines or []] == [("MUG-01", 2)]
    assert ret.steps() == [
        "return.requested",
        "return.approved",
        "return.label_created",
        "return.in_transit",
        "return.received",
        "return.inspected",
        "return.restocked",
        "return.refunded",
    ]
    assert ret.told() == ["return_approved", "return_received", "return_refunded"]
    # Written beside the order: its stage and status stay its own workflow's.
    assert all(not i.moves_order for i in ret.standins.inputs("record_event"))


async def test_a_return_after_the_window_is_refused_at_once(desk: OrderDesk) -> None:
    ret = await desk.open_return(delivered_ago=14 * DAY + timedelta(minutes=1))
    result = await ret.result()

    assert (result.status, result.decline) == (ReturnStatus.DECLINED, ReturnDecline.WINDOW_CLOSED)
    assert ret.steps() == ["return.refused"]  # not a return: the reports do not count it
    assert ret.told() == []  # the API that asked says so at once
    assert ret.standins.inputs("book_return_shipment") == []


async def test_the_real_window_counts_from_delivery_on_the_workflows_clock(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.delivered()
    status = await order.status()
    delivered_at = next(e.at for e in status.timeline if e.type == "order.delivered")
    await order.sleep(15 * DAY)  # the order's feedback stage has long ended
    await order.result()
    ret = await desk.open_return(order, delivered_at=delivered_at)
    result = await ret.result()
    assert result.decline == ReturnDecline.WINDOW_CLOSED


async def test_a_non_returnable_item_waits_for_approval_and_may_be_refused(
    desk: OrderDesk,
) -> None:
    soap = ReturnLine("HYG-02", 1, Decimal("90.00"), 1)
    ret = await desk.open_return(lines=[soap])
    waiting = await ret.waiting_for("approval")
    assert waiting.status == ReturnStatus.AWAITING_APPROVAL
    assert waiting.allowed_actions == ["decide"]
    assert ret.told() == ["return_requested"]
    flagged = ret.standins.inputs("record_return_step")[-1]
    assert flagged.needs_action  # the console's queue shows it

    await ret.decide(approve=False)
    result = await ret.result()

    assert (result.status, result.decline) == (ReturnStatus.DECLINED, ReturnDecline.NOT_APPROVED)
    assert ret.told() == ["return_requested", "return_declined"]
    assert ret.steps()[-2:] == ["return.rejected", "return.declined"]
    assert ret.standins.inputs("book_return_shipment") == []


async def test_an_approval_nobody_gives_is_watched_by_the_silence_guard(desk: OrderDesk) -> None:
    """As an order's wait: a day without news, the customer hears what the return waits for
    (an interim notice keyed by the return), and again the next day."""
    soap = ReturnLine("HYG-02", 1, Decimal("90.00"), 1)
    ret = await desk.open_return(lines=[soap])
    await ret.waiting_for("approval")
    await ret.sleep(DAY + timedelta(hours=1))
    await ret.until(lambda s: "interim" in ret.told(), "an interim notice")
    [interim] = [i for i in ret.standins.inputs("notify") if i.kind == MessageKind.INTERIM]
    assert interim.key == f"interim:{ret.input.number}:1"
    assert interim.params["waiting_for"] == "approval"
    assert ret.steps()[-1] == "sla.silence_breached"
    assert (await ret.status()).waiting_for == "approval"  # still an operator's

    await ret.sleep(DAY)
    await ret.until(lambda s: ret.told().count("interim") == 2, "a second notice")
    await ret.decide(approve=True)
    await ret.waiting_for("parcel")


async def test_a_parcel_not_sent_yet_is_not_chased_one_with_the_carrier_is(
    desk: OrderDesk,
) -> None:
    ret = await desk.open_return()
    await ret.waiting_for("parcel")
    await ret.sleep(3 * DAY)  # the customer sends it when they like (within the policy's wait)
    assert ret.told() == ["return_approved"]
    await ret.carrier(TrackingStatus.IN_TRANSIT)
    await ret.until(lambda s: s.status == ReturnStatus.IN_TRANSIT, "in transit")
    await ret.sleep(DAY + timedelta(hours=1))
    await ret.until(lambda s: "interim" in ret.told(), "an interim notice")
    assert ret.standins.inputs("notify")[-1].params["waiting_for"] == "parcel"


def test_a_decision_about_a_return_is_final() -> None:
    def allowed(*facts: bool) -> list[ReturnAction]:
        actions = rules.allowed_return_actions(rules.ReturnSituation(*facts))
        return [action for action, refusal in actions.items() if refusal is None]

    assert allowed(True, False, False, False) == [ReturnAction.DECIDE]
    assert allowed(True, True, False, False) == []
    assert allowed(False, False, True, False) == [ReturnAction.RESOLVE_STEP]
    assert allowed(False, False, True, True) == []


async def test_part_of_a_set_is_approved_by_an_operator_and_goes_on(desk: OrderDesk) -> None:
    cups = ReturnLine("SET-CUPS-6", 2, Decimal("40.00"), 6)
    ret = await desk.open_return(lines=[cups])
    await ret.waiting_for("approval")
    why = next(i for i in ret.standins.inputs("record_event") if i.entry.type.endswith("approval"))
    assert why.entry.detail["why"] == "SET-CUPS-6: part of a set (2 of 6)"

    await ret.decide(approve=True)
    assert "decide is not allowed now" in await refusal(ret.decide(approve=False))
    await ret.waiting_for("parcel")
    assert ret.steps()[-3:] == [
        "return.awaiting_approval",
        "return.approved",
        "return.label_created",
    ]


async def test_inspection_decides_the_refund_partial_or_none(desk: OrderDesk) -> None:
    partial = await desk.open_return()
    await partial.delivered()
    await partial.inspect(InspectedLine("MUG-01", 2, 1, InspectionFinding.DAMAGED))
    result = await partial.result()
    assert result.refunded == Decimal("250.00")
    refunded = partial.standins.inputs("notify")[-1]
    assert refunded.params["refund"] == "250.00" and refunded.params["findings"] == "damaged"

    none = await desk.open_return(reason=ReturnReason.DEFECTIVE)
    await none.delivered()
    await none.inspect(InspectedLine("MUG-01", 2, 0, InspectionFinding.USED))
    result = await none.result()
    assert (result.status, result.refunded) == (ReturnStatus.REFUNDED, Decimal("0"))
    assert none.standins.inputs("refund_payment") == []
    assert Decimal(none.standins.inputs("notify")[-1].params["refund"]) == 0
    assert none.standins.inputs("restock") == []  # nothing accepted: nothing restocked


async def test_a_defect_is_refunded_but_not_put_back_on_the_shelf(desk: OrderDesk) -> None:
    ret = await desk.open_return(reason=ReturnReason.DEFECTIVE)
    await ret.delivered()
    await ret.inspect(MUGS)
    result = await ret.result()
    assert result.refunded == Decimal("500.00")
    assert ret.standins.inputs("restock") == []


async def test_a_parcel_never_sent_closes_the_return_after_the_policys_wait(
    desk: OrderDesk,
) -> None:
    ret = await desk.open_return()
    await ret.waiting_for("parcel")
    result = await ret.result()  # the time-skipping server runs the 14 days out
    assert (result.status, result.decline) == (ReturnStatus.DECLINED, ReturnDecline.NOT_SENT)
    assert ret.told() == ["return_approved", "return_declined"]


async def test_a_parcel_with_the_carrier_is_waited_for_past_the_policys_wait(
    desk: OrderDesk,
) -> None:
    ret = await desk.open_return()
    await ret.waiting_for("parcel")
    await ret.carrier(TrackingStatus.IN_TRANSIT)
    await ret.until(lambda s: s.status == ReturnStatus.IN_TRANSIT, "in transit")
    await ret.sleep(20 * DAY)
    assert (await ret.status()).waiting_for == "parcel"
    await ret.carrier(TrackingStatus.DELIVERED)
    await ret.waiting_for("inspection")


async def test_an_uninspected_return_is_flagged_after_three_days(desk: OrderDesk) -> None:
    """Overdue as an order's packing is (failures.overdue): an incident, the return flagged in
    the operator queue, and the inspection that comes after all closes the incident."""
    ret = await desk.open_return()
    await ret.delivered()
    await ret.sleep(4 * DAY)
    flagged = await ret.waiting_for("incident_resolution")
    assert flagged.allowed_actions == ["resolve_step"]
    assert ret.standins.inputs("record_return_step")[-1].needs_action
    [incident] = ret.standins.inputs("record_incident")
    assert "not inspected after 3 days" in incident.summary
    assert incident.key == f"return-{ret.input.number}-step-1-inspection"
    assert "step.failed" in ret.steps() and "manager_incident" in ret.told()

    await ret.inspect(MUGS)
    assert (await ret.result()).refunded == Decimal("500.00")
    assert ret.standins.inputs("record_incident")[-1].resolution == "answered"
    assert ret.standins.inputs("record_return_step")[-1].needs_action is False


async def test_an_operators_retry_waits_for_the_inspection_another_three_days(
    desk: OrderDesk,
) -> None:
    ret = await desk.open_return()
    await ret.delivered()
    await ret.sleep(4 * DAY)
    await ret.waiting_for("incident_resolution")
    await ret.resolve(StepChoice.RETRY)
    waiting = await ret.waiting_for("inspection")
    assert "resolve_step" not in waiting.allowed_actions
    assert ret.standins.inputs("record_incident")[-1].resolution == "retry"
    await ret.sleep(4 * DAY)
    await ret.waiting_for("incident_resolution")  # flagged again
    keys = [incident.key for incident in ret.standins.inputs("record_incident")]
    assert keys[-1] == f"return-{ret.input.number}-step-2-inspection"


async def test_a_cash_on_delivery_return_is_refunded_by_hand(desk: OrderDesk) -> None:
    ret = await desk.open_return(standins=OrderStandIns(payment=PaymentMethod.COD))
    await ret.delivered()
    await ret.inspect(MUGS)
    result = await ret.result()
    assert result.refunded == Decimal("0")  # nothing went back through the provider
    assert ret.standins.inputs("refund_payment") == []
    [incident] = ret.standins.inputs("record_incident")
    assert "refund 500.00 by hand" in incident.summary
    assert ret.standins.inputs("notify")[-1].params["by_hand"] == "yes"


async def test_an_exchange_places_a_replacement_order_and_refunds_it_if_cancelled(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns(payment=PaymentMethod.EXCHANGE)  # as the replacement will be
    big_mug = LineEdit("MUG-02", "Big mug", 2, Decimal("200.00"))
    ret = await desk.open_return(
        standins=standins,
        resolution=ReturnResolution.EXCHANGE,
        replacement=[big_mug],
        payment_method=PaymentMethod.PREPAID,
        payment_id=PAYMENT_ID,
        paid=Decimal("500.00"),
    )
    await ret.delivered()
    await ret.inspect(MUGS)
    exchanged = await ret.until(lambda s: "return_exchanged" in ret.told(), "told exchanged")
    assert exchanged.status == ReturnStatus.EXCHANGED
    assert exchanged.exchange_order_id == standins.exchange_order_id
    [placed] = standins.inputs("create_exchange_order")
    assert placed.lines == [big_mug]
    # 500.00 came back, the replacement is worth 400.00: the difference is refunded now.
    [difference] = standins.inputs("refund_payment")
    assert difference.amount == Decimal("100.00")

    # The replacement is a real order with a workflow of its own.
    child = desk.env.client.get_workflow_handle_for(
        OrderWorkflow.run, workflow_id_for(standins.exchange_order_id)
    )
    status = await child.query(OrderWorkflow.status)
    assert status.number.endswith("-X")
    await _until_waiting(child, "packing")
    assert (await child.query(OrderWorkflow.status)).payment_status == "covered_by_return"
    standins.exchange_outcome_is = ExchangeOutcome(cancelled=True, total=Decimal("400.00"))
    await child.execute_update(
        OrderWorkflow.cancel,  # type: ignore[arg-type]
        CancelOrder("key:operator", CancelReason.OUT_OF_STOCK),
    )
    result = await ret.result()
    assert result.refunded == Decimal(
        "500.00"
    )  # 100 at once, 400 when the replacement fell through
    assert [r.amount for r in standins.inputs("refund_payment")] == [
        Decimal("100.00"),
        Decimal("400.00"),
    ]


async def _until_waiting(handle: WorkflowHandle[OrderWorkflow, OrderResult], what: str) -> None:
    for _ in range(200):
        status = await handle.query(OrderWorkflow.status)
        if status.waiting_for == what:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the replacement order is not waiting for {what}")


async def test_an_exchange_whose_items_are_not_all_accepted_is_refunded_instead(
    desk: OrderDesk,
) -> None:
    ret = await desk.open_return(
        resolution=ReturnResolution.EXCHANGE,
        replacement=[LineEdit("MUG-01", "Mug", 2, Decimal("250.00"))],
    )
    await ret.delivered()
    await ret.inspect(InspectedLine("MUG-01", 2, 1, InspectionFinding.DAMAGED))
    result = await ret.result()
    assert (result.status, result.refunded) == (ReturnStatus.REFUNDED, Decimal("250.00"))
    assert ret.standins.inputs("create_exchange_order") == []


async def test_a_refund_refused_by_the_ledger_waits_for_an_operator(desk: OrderDesk) -> None:
    ret = await desk.open_return()
    ret.standins.refused[f"return:{ret.input.return_id}"] = "refund of 500.00 exceeds what is left"
    await ret.delivered()
    await ret.inspect(MUGS)
    waiting = await ret.waiting_for("incident_resolution")
    assert waiting.allowed_actions == ["resolve_step"]
    [incident] = ret.standins.inputs("record_incident")
    assert "RefundRefused" in incident.summary and incident.cause == "system"
    assert ret.standins.inputs("record_return_step")[-1].needs_action

    await ret.resolve(StepChoice.SKIP)  # refunded by hand
    result = await ret.result()
    assert result.status == ReturnStatus.REFUNDED
    assert ret.standins.inputs("record_return_step")[-1].needs_action is False
    assert ret.standins.inputs("record_incident")[-1].resolution == "skip"
    assert ret.steps()[-3:] == ["step.failed", "step.resolved", "return.refunded"]


async def test_a_label_that_cannot_be_booked_is_retried_by_an_operator(desk: OrderDesk) -> None:
    """The order's failures.settle: an incident, the managers told, the return flagged; a
    booking cannot be skipped, a retry books it once the carrier is back."""
    ret = await desk.open_return()
    outage = ret.standins.fail("book_return_shipment", ErrorType.PROVIDER_UNAVAILABLE)
    waiting = await ret.waiting_for("incident_resolution")
    assert waiting.allowed_actions == ["resolve_step"]
    [incident] = ret.standins.inputs("record_incident")
    assert incident.key == f"return-{ret.input.number}-step-1-book_return_shipment"
    assert incident.cause == "external"
    assert ret.told() == ["manager_incident"]
    assert ret.standins.inputs("record_return_step")[-1].needs_action
    assert "cannot be skipped" in await refusal(ret.resolve(StepChoice.SKIP))

    outage.heal()
    await ret.resolve(StepChoice.RETRY)
    approved = await ret.waiting_for("parcel")
    assert approved.status == ReturnStatus.APPROVED and approved.tracking_number
    assert ret.standins.inputs("record_incident")[-1].resolution == "retry"
    assert ret.standins.inputs("record_return_step")[-1].needs_action is False
    assert ret.steps()[-3:] == ["step.failed", "step.resolved", "return.label_created"]
    assert ret.told() == ["manager_incident", "return_approved"]


async def test_an_operators_refund_is_counted_by_the_running_order(desk: OrderDesk) -> None:
    order = await desk.place()
    await order.paid()
    key = uuid.uuid4().hex
    result = await desk.env.client.execute_workflow(
        RefundWorkflow.run,
        RefundWorkflowInput(
            order.order_id,
            key,
            PAYMENT_ID,
            Decimal("120.00"),
            RefundReason.GOODWILL,
            "key:operator",
            desk.policy,
        ),
        id=refund_workflow_id_for(order.order_id, key),
        task_queue=order.task_queue,
    )
    assert result.amount == Decimal("120.00") and result.step == f"refund:{key}"
    told = order.standins.inputs("notify")[-1]
    assert (told.kind.value, told.params) == (
        "refund_made",
        {"amount": "120.00", "reason": "goodwill"},
    )

    await order.cancel()  # compensation refunds only what is left
    assert order.standins.refunds() == [Decimal("120.00"), Decimal("380.00")]
    assert (await order.status()).stage == Stage.CANCELLED


async def test_an_operators_refund_beyond_the_payment_fails_with_the_ledgers_reason(
    desk: OrderDesk,
) -> None:
    order = await desk.place()
    await order.paid()
    key = uuid.uuid4().hex
    order.standins.refused[f"refund:{key}"] = "refund of 900.00 exceeds what is left (500.00)"
    with pytest.raises(WorkflowFailureError) as failed:
        await desk.env.client.execute_workflow(
            RefundWorkflow.run,
            RefundWorkflowInput(
                order.order_id,
                key,
                PAYMENT_ID,
                Decimal("900.00"),
                RefundReason.OTHER,
                "key:operator",
                desk.policy,
            ),
            id=refund_workflow_id_for(order.order_id, key),
            task_queue=order.task_queue,
        )
    assert "exceeds what is left" in str(failed.value.cause.cause)  # type: ignore[union-attr]
    assert "refund_made" not in order.standins.sent()
