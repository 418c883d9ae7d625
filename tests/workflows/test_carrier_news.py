"""What a polled carrier (Nova Poshta) adds to an order, on the time-skipping server with
stand-in activities: the carrier's own delivery date, a parcel waiting at a branch until its
free storage ends, and cash on delivery that is the shop's only once the carrier pays it out
(Nova Poshta's 10 and 11) — late, or in the wrong amount, an incident.

What a user sees: the status query (payment status, what the order waits for), the messages
in the order they went out, the incidents, the timeline. Real-stack versions:
tests/test_novaposhta.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from schema.contracts import (
    CodPayout,
    CustomerStatus,
    IncidentCause,
    PaymentMethod,
    Stage,
    TrackingStatus,
)
from tests.workflows.order_run import OrderDesk, OrderRun, types
from tests.workflows.standins import OrderStandIns

DAY = timedelta(days=1)
DELIVERED, AT_BRANCH = TrackingStatus.DELIVERED, TrackingStatus.AVAILABLE_FOR_PICKUP
TOTAL = Decimal("500.00")  # the stand-ins' order: two mugs at 250.00


def nova_poshta(payment: PaymentMethod = PaymentMethod.COD, **given: object) -> OrderStandIns:
    return OrderStandIns(payment=payment, carrier_reports_payout=True, **given)  # type: ignore[arg-type]


def server_now(order: OrderRun) -> datetime:
    """The time-skipping server's clock, as the latest activity it scheduled saw it (a
    local activity's is the worker's own clock, which the server has left behind)."""
    local = ("record_event", "record_progress")
    return [call.at for call in order.standins.calls if call.name not in local][-1]


async def delivered_cod(desk: OrderDesk) -> OrderRun:
    order = await desk.place(nova_poshta())
    await order.shipped()
    await order.carrier(DELIVERED, "received", code="10", cod=CodPayout.TRANSFER_PENDING)
    await order.reached("payment.cod_transfer_pending")
    return order


async def test_cash_on_delivery_is_collected_only_when_the_carrier_pays_it_out(
    desk: OrderDesk,
) -> None:
    order = await delivered_cod(desk)
    status = await order.status()
    assert status.payment_status == "awaiting_payout"  # delivered, the shop not yet paid
    assert status.fulfilment_status == "delivered"
    assert "payment.collected_on_delivery" not in types(status)

    await order.carrier(DELIVERED, "paid out", code="11", cod=CodPayout.PAID_OUT, cod_amount=TOTAL)
    status = await order.reached("payment.collected_on_delivery")
    assert status.payment_status == "collected_on_delivery"
    assert status.timeline[-1].detail == {"amount": "500.00", "paid_out_by": "carrier"}
    assert order.standins.inputs("record_incident") == []
    assert order.standins.sent().count("delivered") == 1  # 10 and 11: one delivery told

    await order.sleep(10 * DAY)  # feedback goes unanswered; the order ends, paid
    result = await order.result()
    assert result.stage == Stage.COMPLETED


async def test_an_order_waits_for_a_payout_beyond_its_feedback_stage(desk: OrderDesk) -> None:
    order = await delivered_cod(desk)
    await order.sleep(10 * DAY)  # the feedback stage is over; the money is not
    status = await order.waiting_for("cod_payout")
    assert status.stage == Stage.FEEDBACK and status.payment_status == "awaiting_payout"
    [late] = order.standins.inputs("record_incident")
    assert late.key == "cod-payout-late" and late.cause == IncidentCause.EXTERNAL
    assert "not paid out by the carrier 3 days after delivery" in late.summary

    await order.carrier(DELIVERED, "paid out", code="11", cod=CodPayout.PAID_OUT, cod_amount=TOTAL)
    result = await order.result()
    assert result.stage == Stage.COMPLETED
    status = await order.status()
    assert status.payment_status == "collected_on_delivery"
    late, resolved = order.standins.inputs("record_incident")
    assert (resolved.key, resolved.resolution) == ("cod-payout-late", "paid out")


async def test_a_payout_late_by_the_policy_opens_an_incident_and_waits_on(
    desk: OrderDesk,
) -> None:
    order = await delivered_cod(desk)
    await order.sleep(2 * DAY)
    assert order.standins.inputs("record_incident") == []  # within the 3 days: nothing
    await order.sleep(DAY + timedelta(hours=1))
    status = await order.reached("incident.opened")
    assert status.payment_status == "awaiting_payout"
    assert [i.key for i in order.standins.inputs("record_incident")] == ["cod-payout-late"]


async def test_a_payout_in_another_amount_is_an_incident_and_not_counted_as_paid(
    desk: OrderDesk,
) -> None:
    order = await delivered_cod(desk)
    await order.carrier(
        DELIVERED, "paid out", code="11", cod=CodPayout.PAID_OUT, cod_amount=Decimal("450")
    )
    status = await order.reached("payment.cod_payout_mismatch")
    assert status.payment_status == "awaiting_payout"  # never "collected"
    [mismatch] = order.standins.inputs("record_incident")
    assert mismatch.key == "cod-payout-mismatch"
    assert "paid out as 450" in mismatch.summary and "500.00 UAH" in mismatch.summary
    assert "payment.collected_on_delivery" not in types(status)

    await order.sleep(10 * DAY)  # nothing more will come: the order ends, flagged
    result = await order.result()
    assert result.stage == Stage.COMPLETED
    assert (await order.status()).payment_status == "awaiting_payout"


async def test_delivered_and_paid_out_in_one_piece_of_news(desk: OrderDesk) -> None:
    """A round that finds the parcel at 11 already (10 was missed between two rounds)."""
    order = await desk.place(nova_poshta())
    await order.shipped()
    await order.carrier(DELIVERED, code="11", cod=CodPayout.PAID_OUT, cod_amount=TOTAL)
    status = await order.reached("payment.collected_on_delivery")
    assert types(status).count("order.delivered") == 1
    assert status.payment_status == "collected_on_delivery"


async def test_a_prepaid_order_with_the_same_carrier_knows_no_payout(desk: OrderDesk) -> None:
    order = await desk.place(nova_poshta(PaymentMethod.PREPAID))
    await order.shipped()
    await order.carrier(DELIVERED, code="9")
    status = await order.reached("order.delivered")
    assert status.payment_status == "paid"
    await order.sleep(10 * DAY)
    assert (await order.result()).stage == Stage.COMPLETED


async def test_the_carriers_date_becomes_the_orders_expected_date(desk: OrderDesk) -> None:
    promised = date(2030, 1, 15)
    order = await desk.place(nova_poshta(carrier_date=promised))
    status = await order.shipped()
    assert status.expected_date == promised
    shipped = [n for n in order.standins.inputs("notify") if n.kind == "shipped"]
    assert shipped[0].params["expected_date"] == "2030-01-15"


async def test_a_parcel_at_a_branch_is_reminded_and_goes_back_when_its_storage_ends(
    desk: OrderDesk,
) -> None:
    order = await desk.place(nova_poshta())
    await order.shipped()
    kept_until = (server_now(order) + 3 * DAY).date()
    await order.carrier(AT_BRANCH, "at the branch", code="7", storage_until=kept_until)

    ready = await order.waiting_for("collection")
    assert ready.status == CustomerStatus.READY_FOR_PICKUP
    told = [n for n in order.standins.inputs("notify") if n.kind == "ready_for_pickup"]
    assert told[0].params["kept_until"] == kept_until.isoformat()

    await order.sleep(2 * DAY + timedelta(hours=1))  # the day before the storage ends
    await order.until(lambda s: "pickup_reminder" in order.standins.sent(), "a reminder")
    [reminder] = [n for n in order.standins.inputs("notify") if n.kind == "pickup_reminder"]
    assert reminder.params == {"kept_until": kept_until.isoformat()}

    await order.sleep(DAY)
    returning = await order.waiting_for("parcel_return")
    assert returning.status == CustomerStatus.RETURNING
    assert order.standins.sent()[-1] == "parcel_returning"
    assert "parcel.returning" in types(returning)


async def test_a_parcel_collected_at_the_branch_in_time_is_delivered(desk: OrderDesk) -> None:
    order = await desk.place(nova_poshta(PaymentMethod.PREPAID))
    await order.shipped()
    kept_until = (server_now(order) + 5 * DAY).date()
    await order.carrier(AT_BRANCH, code="7", storage_until=kept_until)
    await order.waiting_for("collection")
    await order.sleep(DAY)
    await order.carrier(DELIVERED, code="9")
    status = await order.reached("order.delivered")
    assert "pickup_reminder" not in order.standins.sent()
    assert "parcel.returning" not in types(status)
