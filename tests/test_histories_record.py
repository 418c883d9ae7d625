"""Records the stored histories of tests/histories/ (see the README there): one test per path.

Skipped unless asked for, since stored histories are recorded once, not on every run:

    ORDERFLOW_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/test_histories_record.py -q

Each test drives one order with `Journey` on the time-skipping stack (real activities,
real providers) and writes `tests/histories/<name>.json`, named after the test without its
`test_` prefix. A race the real stack cannot line up — a message that must arrive while a
given activity runs — is driven on the fast layer instead (`desk`: stand-in activities under
the real names, one held mid-flight); its history is OrderWorkflow's all the same. A file that
exists is never overwritten — it stands for orders that already exist — so its test is
skipped. To add a path: add a test here, run it, commit the file and a row in the README's
table.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from schema.api.fields import Role
from schema.contracts import (
    MarketplacePoll,
    OrderStatus,
    PaymentMethod,
    Stage,
    TrackingRound,
    refund_workflow_id_for,
    return_workflow_id_for,
    workflow_id_for,
)
from schema.database import make_engine
from schema.links import LinkPurpose
from settings import Settings
from tests.conftest import database_of_its_own
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import eventually
from tests.test_novaposhta import BRANCH
from tests.test_workflow import HISTORIES
from tests.workflows.order_run import OrderDesk, OrderRun
from tests.workflows.standins import OrderStandIns
from workflows.intake import MarketplacePollWorkflow
from workflows.tracking import CarrierTrackingWorkflow

pytestmark = pytest.mark.skipif(
    os.environ.get("ORDERFLOW_RECORD_HISTORIES") != "1",
    reason="records stored histories: set ORDERFLOW_RECORD_HISTORIES=1",
)

DAY = timedelta(days=1)
Record = Callable[..., Awaitable[None]]


@pytest.fixture
def stack(ts_stack: Stack) -> Stack:
    return ts_stack


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """`await record(order)` saves the order's history, once: it refuses an existing file.
    `workflow_id`: another workflow of the order's (a return's, a refund's)."""
    path = HISTORIES / f"{request.node.name.removeprefix('test_')}.json"
    if path.exists():
        pytest.skip(f"{path.name} exists: a stored history is never regenerated")

    async def save(
        order: Journey | OrderRun, *, in_flight: bool = False, workflow_id: str | None = None
    ) -> None:
        client = order.stack.client if isinstance(order, Journey) else order.env.client
        handle = client.get_workflow_handle(workflow_id or workflow_id_for(order.order_id))
        if in_flight:
            await _settled(handle)
        else:
            await handle.result()  # finished: the scenario waited for its last stage
        history = await handle.fetch_history()
        with path.open("x") as file:  # "x": never over an existing file
            file.write(history.to_json())

    return save


async def _settled(handle: WorkflowHandle) -> None:
    """Wait until a running order rests in a wait: no task or activity open, history unchanged."""
    busy = ("WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "ACTIVITY_TASK_")
    before = -1
    while True:
        history = await handle.fetch_history()
        name = EventType.Name(history.events[-1].event_type).removeprefix("EVENT_TYPE_")
        if len(history.events) == before and not name.startswith(busy):
            break
        before = len(history.events)
        await asyncio.sleep(0.5)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def _run_out_feedback(order: Journey) -> None:
    """From delivery to the end: nobody answers the feedback request or its reminder."""
    await order.sleep(10 * DAY)
    status = await order.until(lambda s: s.stage == Stage.COMPLETED)
    assert "feedback.none" in Journey.types(status)


async def _feedback(order: Journey, **answer: object) -> None:
    await order.sleep(2 * DAY)  # the request goes out 24-48 h after delivery
    await order.reached("feedback.requested")
    response = await order.answer("feedback", answer)
    assert response.status_code == 200 and response.json()["accepted"], response.text
    await order.until(lambda s: s.stage == Stage.COMPLETED)


async def test_payment_expired_cancelled(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    await order.sleep(timedelta(hours=73))  # reminders at 24 h and 60 h, expiry at 72 h
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "payment_expired"
    assert (await order.sent()).count("payment_reminder") == 2
    assert "stock released" in status.timeline[-1].detail["undone"]
    await record(order)


async def test_payment_failed_then_paid(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    await order.pay("fail", reason="insufficient funds")
    await order.reached("payment.failed")
    await order.waiting_for("payment")
    await order.pay()
    await order.waiting_for("packing")
    assert {"manager_payment_failed", "payment_failed"} <= set(await order.sent())
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_partial_stock_backordered_arrived(stack: Stack, record: Record) -> None:
    teapots = [{"sku": "RARE-01", "name": "Teapot", "quantity": 3, "unit_price": "900.00"}]
    order = await Journey.place(stack, lines=teapots)
    await order.waiting_for("stock_decision")
    decided = await order.act("stock-decision", choice="backorder")
    assert decided.status_code == 200, decided.text
    await order.waiting_for("backorder_arrival")
    backorders = (await stack.sim.get("/warehouse/v1/backorders")).json()
    [backorder_id] = [key for key, b in backorders.items() if b["order_ref"] == order.order_id]
    arrived = await stack.sim.post(f"/warehouse/sim/backorders/{backorder_id}/arrive")
    assert arrived.json()["webhook_status"] == 202
    await order.waiting_for("payment")
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_pickup_not_collected_refunded(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, delivery={"method": "pickup", "pickup_point": "KYIV-01"})
    await order.until_paid()
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("collection")
    await order.sleep(8 * DAY)  # reminder on day 5, the hold ends on day 7
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.payment_status == "refunded"
    assert status.timeline[-1].detail["reason"] == "not_collected"
    assert (await order.sent()).count("pickup_reminder") == 1
    await record(order)


async def test_silent_days_interim_notices(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.until_paid()
    await order.waiting_for("packing")
    await order.sleep(3 * DAY + timedelta(hours=1))  # the warehouse says nothing for three days
    status = await order.until(lambda s: len(s.sla_breaches) == 3)
    assert [b.waiting_for for b in status.sla_breaches] == ["packing"] * 3
    await order.to_delivery()
    await _run_out_feedback(order)
    assert (await order.sent()).count("interim") == 3
    await record(order)


async def test_operator_delay_marked(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    delayed = await order.act("delay", reason="supplier_late", new_date="2030-01-15")
    assert delayed.status_code == 200, delayed.text
    await order.reached("order.delayed")
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_cancelled_after_payment_refunded(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.until_paid()
    await order.waiting_for("packing")
    cancelled = await order.act("cancel", reason="customer_request", note="changed mind")
    assert cancelled.status_code == 200, cancelled.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.payment_status == "refunded"
    assert "stock released" in status.timeline[-1].detail["undone"]
    await record(order)


async def test_negative_feedback_incident(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.to_delivery()
    await _feedback(order, rating=1, comment="Box was wet")
    [incident] = await order.incidents()
    assert incident.stage == "feedback"
    await record(order)


async def test_review_escalated_then_confirmed(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, note="Please deliver after 18:00")
    await order.waiting_for("operator_confirmation")
    await order.sleep(timedelta(hours=3))  # nobody decides within the 2 h review SLA
    await order.reached("review.escalated")
    confirmed = await order.act("confirm")
    assert confirmed.status_code == 200, confirmed.text
    await order.waiting_for("payment")
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_partial_stock_ship_available(stack: Stack, record: Record) -> None:
    lines = [
        {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "250.00"},
        {"sku": "GONE-01", "name": "Sold out", "quantity": 2, "unit_price": "100.00"},
    ]
    order = await Journey.place(stack, lines=lines, payment={"method": "cod"})
    await order.waiting_for("stock_decision")
    decided = await order.act("stock-decision", choice="ship_available")
    assert decided.status_code == 200, decided.text
    await order.waiting_for("packing")
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_picking_defect_repicked(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack(defects=["MUG-01: cracked handle"])
    await order.until(
        lambda s: Journey.types(s).count("picking.started") == 2 and s.waiting_for == "packing"
    )
    await order.to_delivery()
    await _run_out_feedback(order)
    assert len(await order.incidents()) == 1
    await record(order)


async def test_carrier_exception_incident(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    await order.carrier("Exception", "parcel damaged at hub")
    await order.reached("incident.opened")
    await order.waiting_for("carrier")
    await order.carrier("Delivered")
    await order.reached("order.delivered")
    await _run_out_feedback(order)
    [incident] = await order.incidents()
    assert incident.cause == "external"
    await record(order)


async def test_carrier_silence_awaiting_carrier(stack: Stack, record: Record) -> None:
    """In flight on purpose: an order in transit that the carrier has gone quiet about."""
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    await order.carrier("InTransit")
    await order.reached("carrier.InTransit")
    await order.sleep(timedelta(days=3, hours=1))  # the carrier's silence limit is 3 days
    status = await order.reached("transit.no_news")
    assert status.status == "delayed"
    await order.waiting_for("carrier")
    await record(order, in_flight=True)


async def test_feedback_none_reminded(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await _run_out_feedback(order)
    sent = await order.sent()
    assert sent.count("feedback_request") == 1 and sent.count("feedback_reminder") == 1
    await record(order)


async def test_feedback_answered_before_the_request(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.reached("feedback.scheduled")
    answer = await order.answer("feedback", {"rating": 2}, token=order.link(LinkPurpose.STATUS))
    assert answer.status_code == 200, answer.text
    await order.until(lambda s: s.stage == Stage.COMPLETED)
    assert "feedback_request" not in await order.sent()
    await record(order)


async def test_pick_task_not_packed_in_time_retried(stack: Stack, record: Record) -> None:
    """The warehouse does not pack within the policy's day: an incident, the order flagged;
    an operator retries (the task asked again), it is packed, delivered, no feedback
    (`PatchId.PACKING_DEADLINE`)."""
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.sleep(timedelta(days=1, hours=1))
    await order.waiting_for("incident_resolution")
    answer = await order.act("resolve", choice="retry")
    assert answer.status_code == 200, answer.text
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    for event in ("InTransit", "OutForDelivery", "Delivered"):
        await order.carrier(event)
    await order.reached("order.delivered")
    await _run_out_feedback(order)
    await record(order)


async def test_carrier_silent_past_the_wait_incident(stack: Stack, record: Record) -> None:
    """In transit, the carrier silent for the policy's 9 days (delayed notices on days 3, 6
    and 9): an incident, the order flagged; the carrier's news closes it, delivered, no
    feedback (`PatchId.CARRIER_NEWS_DEADLINE`)."""
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    await order.carrier("InTransit")
    await order.reached("carrier.InTransit")
    await order.sleep(timedelta(days=9, hours=1))
    await order.waiting_for("incident_resolution")
    await order.carrier("Delivered")
    await order.reached("order.delivered")
    [incident] = await order.incidents()
    assert incident.cause == "external"
    await _run_out_feedback(order)
    await record(order)


async def test_reviewed_cod_order_search_attributes_on_change(stack: Stack, record: Record) -> None:
    """COD with a customer's note: waits for an operator (flagged), confirmed, delivered, no
    feedback; each search attribute upserted only when it changes
    (`PatchId.SEARCH_ATTRIBUTES_ON_CHANGE`)."""
    order = await Journey.place(stack, note="Please deliver after 18:00", payment={"method": "cod"})
    await order.waiting_for("operator_confirmation")
    confirmed = await order.act("confirm")
    assert confirmed.status_code == 200, confirmed.text
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_cod_order_one_write_per_activation(stack: Stack, record: Record) -> None:
    """COD courier, delivered, no feedback: the steps of each activation written in one local
    activity, a wait's progress with the step before it (`one-write-per-activation`)."""
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await _run_out_feedback(order)
    await record(order)


async def test_customer_cancels_missing_stock(stack: Stack, record: Record) -> None:
    lines = [{"sku": "GONE-03", "name": "Sold out", "quantity": 1, "unit_price": "10.00"}]
    order = await Journey.place(stack, lines=lines)
    await order.waiting_for("stock_decision")
    async with httpx.AsyncClient(base_url=stack.api.base_url) as anonymous:  # the e-mail's link
        chosen = await anonymous.post(
            f"/v1/orders/{order.order_id}/stock-choice", json={"choice": "cancel"}
        )
    assert chosen.status_code == 200, chosen.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "out_of_stock"
    await record(order)


# --- After the parcel leaves ---------------------------------------------------------------


async def test_refused_cod_parcel_returned(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.shipped()
    await order.carrier("InTransit")
    await order.carrier("Exception", "recipient refused", subtag="Exception_003")
    await order.waiting_for("parcel_return")
    await order.sleep(2 * DAY)
    await order.parcel_back()
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "delivery_refused"
    await record(order)


async def test_unclaimed_prepaid_parcel_refunded(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.shipped()
    await order.carrier("Expired", "not collected")
    await order.waiting_for("parcel_return")
    await order.carrier("Exception", "back at the depot", subtag="Exception_011")
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.payment_status == "refunded"
    await record(order)


async def test_refused_parcel_on_its_way_back(stack: Stack, record: Record) -> None:
    """In flight on purpose: a refused parcel the order waits for (no interim notices)."""
    order = await Journey.place(stack)
    await order.shipped()
    await order.carrier("Exception", "recipient refused", subtag="Exception_003")
    await order.waiting_for("parcel_return")
    await record(order, in_flight=True)


async def test_lost_parcel_reshipped(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.shipped()
    await order.carrier("Exception", "no trace at the hub", subtag="Exception_013")
    await order.waiting_for("parcel_decision")
    decided = await order.act("parcel-decision", choice="reship")
    assert decided.status_code == 200, decided.text
    await order.reached("order.reshipped")
    await order.waiting_for("carrier")
    await order.carrier("Delivered")
    await order.reached("order.delivered")
    await _run_out_feedback(order)
    await record(order)


async def test_damaged_parcel_refunded(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.shipped()
    await order.carrier("Exception", "box crushed", subtag="Exception_012")
    await order.waiting_for("parcel_decision")
    decided = await order.act("parcel-decision", choice="refund")
    assert decided.status_code == 200, decided.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "parcel_damaged"
    await record(order)


async def test_partial_refund_then_cancelled(stack: Stack, record: Record) -> None:
    """An operator's refund while the order runs: it learns of it (refund_made), and its
    compensation refunds only the rest."""
    order = await Journey.place(stack)
    await order.until_paid()
    await order.waiting_for("packing")
    refunded = await order.stack.as_role[Role.OPERATOR].post(
        f"/v1/orders/{order.order_id}/refunds",
        json={"amount": "100.00", "reason": "goodwill"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refunded.status_code == 201, refunded.text
    cancelled = await order.act("cancel", reason="customer_request")
    assert cancelled.status_code == 200, cancelled.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert "refunded 400.00" in status.timeline[-1].detail["undone"]
    await record(order)


async def test_operator_refund_made(stack: Stack, record: Record) -> None:
    """The refund's own workflow: the ledger, the timeline, the customer told, the order told."""
    order = await Journey.place(stack)
    await order.to_delivery()
    key = uuid.uuid4().hex
    refunded = await order.stack.as_role[Role.OPERATOR].post(
        f"/v1/orders/{order.order_id}/refunds",
        json={"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "item_damaged"},
        headers={"Idempotency-Key": key},
    )
    assert refunded.status_code == 201, refunded.text
    await record(order, workflow_id=refund_workflow_id_for(order.order_id, key))


async def test_return_refunded_after_inspection(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack)
    await order.to_delivery()
    await order.sleep(13 * DAY)
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 2}], "reason": "wrong_size"}
    )
    opened = asked.json()
    assert opened["status"] == "approved", opened
    for status in ("InTransit", "Delivered"):
        await order.parcel_event(str(opened["tracking_number"]), status)
    await order.return_reached("received")
    inspected = await stack.sim.post(
        f"/warehouse/sim/returns/{opened['return_id']}/inspect",
        json={"lines": [{"sku": "MUG-01", "received": 2, "accepted": 1, "finding": "used"}]},
    )
    assert inspected.json()["webhook_status"] == 202
    await order.return_reached("refunded")
    await record(order, workflow_id=return_workflow_id_for(str(opened["return_id"])))


async def test_return_refused_outside_the_window(stack: Stack, record: Record) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.sleep(15 * DAY)
    await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "changed_mind"}
    )
    [declined] = (await stack.api.get(f"/v1/orders/{order.order_id}/returns")).json()
    assert declined["decline"] == "window_closed"
    await record(order, workflow_id=return_workflow_id_for(declined["return_id"]))


async def test_return_awaiting_approval(stack: Stack, record: Record) -> None:
    """In flight on purpose: a return of part of a set, waiting for an operator."""
    cups = [
        {"sku": "SET-CUPS", "name": "Cups of a set of six", "quantity": 6, "unit_price": "40.00"}
    ]
    order = await Journey.place(stack, lines=cups, payment={"method": "cod"})
    await order.to_delivery()
    asked = await order.ask_for_return(
        {"lines": [{"sku": "SET-CUPS", "quantity": 2}], "reason": "defective"}
    )
    opened = asked.json()
    assert opened["status"] == "awaiting_approval", opened
    await record(
        order, in_flight=True, workflow_id=return_workflow_id_for(str(opened["return_id"]))
    )


async def test_return_exchanged(stack: Stack, record: Record) -> None:
    """In flight on purpose: an exchange whose replacement order (its child) runs."""
    order = await Journey.place(stack)
    await order.to_delivery()
    asked = await order.ask_for_return(
        {
            "lines": [{"sku": "MUG-01", "quantity": 1}],
            "reason": "defective",
            "resolution": "exchange",
        }
    )
    opened = asked.json()
    for status in ("InTransit", "Delivered"):
        await order.parcel_event(str(opened["tracking_number"]), status)
    await order.return_reached("received")
    await stack.sim.post(f"/warehouse/sim/returns/{opened['return_id']}/inspect")
    exchanged = await order.return_reached("exchanged")
    replacement = Journey(stack, str(exchanged["exchange_order_id"]), {})
    await replacement.waiting_for("packing")
    await record(
        order, in_flight=True, workflow_id=return_workflow_id_for(str(opened["return_id"]))
    )


async def test_return_watched_approved_inspected_late_retried(stack: Stack, record: Record) -> None:
    """A return on the order's machinery (`return-on-order-machinery`): part of a set waits a
    day for approval (an interim notice), approved through the API; the warehouse does not
    inspect within 3 days (an incident, flagged), an operator retries, inspected, refunded."""
    cups = [
        {"sku": "SET-CUPS", "name": "Cups of a set of six", "quantity": 6, "unit_price": "40.00"}
    ]
    order = await Journey.place(stack, lines=cups)
    await order.to_delivery()
    opened = (
        await order.ask_for_return(
            {"lines": [{"sku": "SET-CUPS", "quantity": 2}], "reason": "changed_mind"}
        )
    ).json()
    assert opened["status"] == "awaiting_approval", opened
    await order.sleep(DAY + timedelta(hours=1))
    await eventually(lambda: _sent(order, "interim"), what="an interim notice")
    operator = stack.as_role[Role.OPERATOR]
    path = f"/v1/orders/{order.order_id}/returns/{opened['return_id']}"
    approved = await operator.post(f"{path}/decision", json={"approve": True})
    assert approved.status_code == 200, approved.text
    approved = await order.return_reached("approved")
    for status in ("InTransit", "Delivered"):
        await order.parcel_event(str(approved["tracking_number"]), status)
    await order.return_reached("received")
    await order.sleep(4 * DAY)
    await eventually(lambda: _flagged(order), what="the return flagged")
    retried = await operator.post(f"{path}/resolve", json={"choice": "retry"})
    assert retried.status_code == 200, retried.text
    await stack.sim.post(f"/warehouse/sim/returns/{opened['return_id']}/inspect")
    await order.return_reached("refunded")
    await record(order, workflow_id=return_workflow_id_for(str(opened["return_id"])))


async def _sent(order: Journey, kind: str) -> bool | None:
    return kind in await order.sent() or None


async def _flagged(order: Journey) -> bool | None:
    return any(r["needs_action"] for r in await order.returns()) or None


# --- Nova Poshta: tracked by polling, cash on delivery paid out ----------------------------


@pytest.fixture
async def novaposhta(
    stack_time_skipping_env: WorkflowEnvironment,
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    """The time-skipping stack with `ORDERFLOW_CARRIER=novaposhta`, on a database of its own
    (its rounds ask about every parcel in flight there)."""
    with database_of_its_own(postgres, "record") as url:
        engine = make_engine(url)
        settings = base_settings.model_copy(update={"database_url": url, "carrier": "novaposhta"})
        async with run_stack(stack_time_skipping_env, settings, engine, mail_sink.maildir) as stack:
            yield stack
        await engine.dispose()


async def _nova_poshta(stack: Stack, order: Journey, code: str, **more: str) -> str:
    """Nova Poshta's status for the order's waybill, and a tracking round that tells it (its
    workflow id). The round is waited for by polling (waiting on its result would let the
    server skip time)."""
    number = (await order.refs()).tracking_number
    answer = await stack.sim.post(
        f"/novaposhta/sim/documents/{number}/status", json={"code": code, **more}
    )
    assert answer.status_code == 200, answer.text
    round = await stack.client.start_workflow(
        CarrierTrackingWorkflow.run,
        TrackingRound(),
        id=f"round-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal_task_queue,
    )
    while (await round.describe()).status == WorkflowExecutionStatus.RUNNING:
        await asyncio.sleep(0.1)
    return round.id


async def test_novaposhta_branch_cod_paid_out(novaposhta: Stack, record: Record) -> None:
    order = await Journey.place(
        novaposhta, delivery={"method": "branch", "branch": BRANCH}, payment={"method": "cod"}
    )
    await order.shipped()
    await _nova_poshta(novaposhta, order, "5")
    await order.reached("carrier.InTransit")
    kept_until = ((await order.stored_events())[-1].at + 5 * DAY).date().isoformat()
    await _nova_poshta(novaposhta, order, "7", storage_until=kept_until)
    await order.waiting_for("collection")
    await _nova_poshta(novaposhta, order, "10")
    await order.reached("payment.cod_transfer_pending")
    await _nova_poshta(novaposhta, order, "11")
    await order.reached("payment.collected_on_delivery")


async def test_ship_what_was_packed_after_failed_picking(stack: Stack, record: Record) -> None:
    """Picking fails three times (a mug missing): an operator ships what was packed; the
    lines, total and payment follow it (`PatchId.SHIP_WHAT_WAS_PACKED`)."""
    lines = [
        {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "250.00"},
        {"sku": "TEA-01", "name": "Green tea", "quantity": 2, "unit_price": "60.00"},
    ]
    order = await Journey.place(stack, lines=lines)
    await order.until_paid()
    for attempt in (1, 2, 3):

        def picking(status: OrderStatus, attempt: int = attempt) -> bool:
            started = Journey.types(status).count("picking.started")
            return status.waiting_for == "packing" and started == attempt

        await order.until(picking)
        await order.pack(missing=["MUG-01"])
    await order.waiting_for("stock_decision")
    decided = await order.act("stock-decision", choice="ship_available", note="ship the tea")
    assert decided.status_code == 200, decided.text
    status = await order.waiting_for("carrier")
    assert "payment.partially_refunded" in Journey.types(status)
    for event in ("InTransit", "OutForDelivery", "Delivered"):
        await order.carrier(event)
    await order.reached("order.delivered")
    await _run_out_feedback(order)
    await record(order)


async def test_novaposhta_cod_payout_late(novaposhta: Stack, record: Record) -> None:
    order = await Journey.place(novaposhta, payment={"method": "cod"})
    await order.shipped()
    await _nova_poshta(novaposhta, order, "10")
    await order.reached("payment.cod_transfer_pending")
    await order.sleep(10 * DAY)  # feedback runs out; the payout is 7 days late
    await order.waiting_for("cod_payout")
    [late] = await order.incidents()
    assert late.key == "cod-payout-late"
    await _nova_poshta(novaposhta, order, "11")
    status = await order.until(lambda s: s.stage == Stage.COMPLETED)
    assert status.payment_status == "collected_on_delivery"
    await record(order)


async def test_novaposhta_cod_payout_mismatch(novaposhta: Stack, record: Record) -> None:
    order = await Journey.place(novaposhta, payment={"method": "cod"})
    await order.shipped()
    await _nova_poshta(novaposhta, order, "11", paid_out="450")
    await order.reached("payment.cod_payout_mismatch")
    await _run_out_feedback(order)
    assert (await order.status()).payment_status == "awaiting_payout"
    await record(order)


async def test_novaposhta_branch_storage_ended(novaposhta: Stack, record: Record) -> None:
    """In flight on purpose: not collected while the branch kept it free; on its way back."""
    order = await Journey.place(novaposhta, delivery={"method": "branch", "branch": BRANCH})
    await order.shipped()
    kept_until = ((await order.stored_events())[-1].at + 3 * DAY).date().isoformat()
    await _nova_poshta(novaposhta, order, "7", storage_until=kept_until)
    await order.waiting_for("collection")
    await order.sleep(4 * DAY)  # the reminder the day before, then the end of the storage
    await order.waiting_for("parcel_return")
    assert "pickup_reminder" in await order.sent()
    await record(order, in_flight=True)


async def test_carrier_tracking_round(novaposhta: Stack, record: Record) -> None:
    """A `CarrierTrackingWorkflow` run: one page, one order told its parcel's news, recorded."""
    order = await Journey.place(novaposhta, payment={"method": "cod"})
    await order.shipped()
    round_id = await _nova_poshta(novaposhta, order, "5")
    await order.reached("carrier.InTransit")
    await record(order, workflow_id=round_id)


async def test_carrier_tracking_round_tells_a_return(novaposhta: Stack, record: Record) -> None:
    """A `CarrierTrackingWorkflow` run telling a customer's return parcel's news (Nova
    Poshta's return order, 5) to its `ReturnWorkflow` (`PatchId.TRACKING_TELLS_RETURNS`)."""
    order = await Journey.place(novaposhta, payment={"method": "cod"})
    await order.shipped()
    await _nova_poshta(novaposhta, order, "9")
    await order.reached("order.delivered")
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}
    )
    opened = asked.json()
    assert opened["status"] == "approved", opened
    answer = await novaposhta.sim.post(
        f"/novaposhta/sim/documents/{opened['tracking_number']}/status", json={"code": "5"}
    )
    assert answer.status_code == 200, answer.text
    round = await novaposhta.client.start_workflow(
        CarrierTrackingWorkflow.run,
        TrackingRound(),
        id=f"round-{uuid.uuid4().hex[:8]}",
        task_queue=novaposhta.settings.temporal_task_queue,
    )
    while (await round.describe()).status == WorkflowExecutionStatus.RUNNING:
        await asyncio.sleep(0.1)
    await order.return_reached("in_transit")
    await record(order, workflow_id=round.id)


async def test_marketplace_poll_round(stack: Stack, record: Record) -> None:
    """A `MarketplacePollWorkflow` run: a Prom connector's order listed and taken (counts
    only in its history), recorded."""
    token = f"prom-token-{uuid.uuid4().hex}"
    made = await stack.api.post(
        "/v1/admin/connectors",
        json={
            "kind": "prom",
            "name": f"rec-{uuid.uuid4().hex[:6]}",
            "credentials": {"api_token": token},
        },
    )
    assert made.status_code == 201, made.text
    await stack.sim.post(
        "/prom/sim/orders",
        json={"token": token, "fixture": "order_courier_card", "changes": {"client_notes": ""}},
    )
    poll = await stack.client.start_workflow(
        MarketplacePollWorkflow.run,
        MarketplacePoll(),
        id=f"poll-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal_task_queue,
    )
    while (await poll.describe()).status == WorkflowExecutionStatus.RUNNING:
        await asyncio.sleep(0.1)  # waiting on its result would let the server skip time
    assert (await poll.result()).accepted >= 1
    await record(Journey(stack, "", {}), workflow_id=poll.id)


async def test_cancel_accepted_as_picking_starts(desk: OrderDesk, record: Record) -> None:
    """A cancellation accepted while the pick task is created: the picking notice that was
    next is not sent, only the cancellation (`PatchId.QUIET_ONCE_CANCELLED`)."""
    standins = OrderStandIns(payment=PaymentMethod.COD)
    creating = standins.hold("create_pick_task")
    order = await desk.place(standins)
    await creating.reached()
    cancelling = await order.cancel_accepted()
    creating.release()
    assert (await cancelling.result()).stage == Stage.CANCELLED
    assert "picking" not in standins.sent() and standins.sent()[-1] == "cancelled"
    await record(order)


async def test_paid_as_the_link_expired_refunded(desk: OrderDesk, record: Record) -> None:
    """The link expires and is being cancelled when the payment arrives: the order is
    cancelled and the payment refunded (`PatchId.REFUND_LATE_PAYMENTS`)."""
    standins = OrderStandIns()
    unlinking = standins.hold("cancel_payment_link")
    order = await desk.place(standins)
    await order.waiting_for("payment")
    ending = order.meanwhile(order.result(timeout=20))  # 72 h pass: the link expires
    await unlinking.reached()
    await order.pay()
    unlinking.release()
    assert (await ending).stage == Stage.CANCELLED
    assert standins.refunds() == [standins.total]
    await record(order)
