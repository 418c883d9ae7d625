"""OrderWorkflow on the time-skipping server with real activities, and replay of stored histories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.providers import make_http_client
from devstack.mailsink import MailSink
from runtime import DATA_CONVERTER
from schema.api.orders import SAMPLE_ORDER, OrderCreate
from schema.contracts import (
    CarrierEvent,
    CustomerStatus,
    OrderResult,
    OrderStatus,
    OrderWorkflowInput,
    Stage,
    TrackingStatus,
    workflow_id_for,
)
from schema.database import open_session
from schema.tables import Order, OrderEvent
from settings import Settings
from starter.services.orders import record_order
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import decoded_history, order_handle, sample_order
from worker import WORKFLOW_RUNNER, build_worker
from workflows.intake import MarketplacePollWorkflow
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow
from workflows.tracking import CarrierTrackingWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


async def _recorded_order(engine: AsyncEngine, **overrides: object) -> Order:
    async with open_session(engine) as session:
        order, _ = await record_order(
            session, body=OrderCreate.model_validate(sample_order(**overrides))
        )
    return order


async def _run(
    client: Client, settings: Settings, engine: AsyncEngine, order: Order
) -> tuple[OrderResult, OrderStatus]:
    """Run the order's workflow to its end; its result and its last `status` answer."""
    queue = f"ts-{uuid.uuid4().hex[:8]}"
    async with (
        make_http_client(5) as http,
        build_worker(client, settings, engine, http, task_queue=queue),
    ):
        handle = await client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(
                order_id=str(order.id), number=order.number, policy=settings.order_policy()
            ),
            id=workflow_id_for(str(order.id)),
            task_queue=queue,
        )
        result = await handle.result()
        return result, await handle.query(OrderWorkflow.status)


async def test_expected_date_follows_the_policy(ts_stack: Stack) -> None:
    order = await Journey.place(ts_stack, delivery={"method": "pickup"})
    status = await order.reached("order.confirmed")
    confirmed_at = next(e.at for e in status.timeline if e.type == "order.confirmed")
    days = ts_stack.settings.policy_delivery_days_pickup
    assert status.expected_date == (confirmed_at + timedelta(days=days)).date()
    view = (await ts_stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["expected_date"] == status.expected_date.isoformat()


async def test_inconsistent_order_is_cancelled_and_never_confirmed(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> None:
    order = await _recorded_order(engine)
    async with open_session(engine) as session:  # the stored total no longer matches its lines
        await session.execute(update(Order).where(col(Order.id) == order.id).values(total=1))
        await session.commit()

    result, status = await _run(time_skipping_env.client, settings, engine, order)

    assert status.timeline[-1].type == "order.invalid"
    assert result.stage == Stage.CANCELLED
    assert result.status == CustomerStatus.CANCELLED
    async with open_session(engine) as session:
        events = (
            await session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id))
        ).all()
        stored = await session.get(Order, order.id)
    invalid = [e for e in events if e.type == "order.invalid"]
    assert len(invalid) == 1
    assert "does not match the lines" in invalid[0].detail["problems"]
    assert stored is not None and stored.stage == "cancelled"
    assert not [e for e in events if e.type.startswith("order.confirm")]


async def test_a_whole_lifecycle_history_replays(ts_stack: Stack) -> None:
    order = await Journey.place(ts_stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.sleep(timedelta(days=10))
    await order.until(lambda s: s.stage == Stage.COMPLETED)
    history = await order_handle(ts_stack.client, order.order_id).fetch_history()

    await Replayer(workflows=[OrderWorkflow], data_converter=DATA_CONVERTER).replay_workflow(
        history
    )


async def test_history_stays_small_with_hundreds_of_carrier_events(ts_stack: Stack) -> None:
    """Temporal's limits are 51,200 events and 50 MB per history; an order is far below both."""
    order = await Journey.place(ts_stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    status = await order.waiting_for("carrier")
    handle = order_handle(ts_stack.client, order.order_id)
    now = datetime.now(UTC)
    for n in range(300):
        event = CarrierEvent(
            f"scan-{n}", status.tracking_number or "", TrackingStatus.IN_TRANSIT, now, f"hub {n}"
        )
        await handle.signal(OrderWorkflow.carrier_event, event)
    await order.until(lambda s: Journey.types(s).count("carrier.InTransit") == 300, timeout=120)
    history = await handle.fetch_history()
    size = len(history.to_json())
    print(
        f"\nhistory after 300 carrier events: {len(history.events)} events, {size / 1024:.0f} KiB"
    )
    assert len(history.events) < 51_200 / 10
    assert size < 50 * 1024 * 1024 / 10
    assert (await order.sent()).count("in_transit") == 1  # one message, not three hundred


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    """Orders (and returns, refunds) already in flight must survive every change of their
    workflows (rule 6)."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(
        workflows=[
            OrderWorkflow,
            ReturnWorkflow,
            RefundWorkflow,
            CarrierTrackingWorkflow,
            MarketplacePollWorkflow,
        ],
        data_converter=DATA_CONVERTER,
        workflow_runner=WORKFLOW_RUNNER,  # the worker's sandbox, as orders in flight meet it
    ).replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_stored_history_holds_no_personal_data(path: Path) -> None:
    """Stored histories are kept in the repository, so they must hold no personal data (rule 1)."""
    text = decoded_history(path.read_text())
    # The search sees decoded payloads, not only base64 (a poll's history holds connectors').
    assert '"order_id"' in text or '"connector_id"' in text
    customer, address = SAMPLE_ORDER["customer"], SAMPLE_ORDER["delivery"]["address"]
    for personal in (
        customer["name"],
        "Iryna",
        "Koval",
        "@example.com",
        customer["phone"],
        "501234567",
        address["line1"],
        "Khreshchatyk",
    ):
        assert personal not in text, f"{personal!r} found in {path.name}"
