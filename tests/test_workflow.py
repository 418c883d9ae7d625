"""OrderWorkflow on the time-skipping server with real activities, and replay of stored histories."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from devstack.mailsink import MailSink
from schema.api import OrderCreate
from schema.contracts import (
    WORKFLOW_TYPE,
    CustomerStatus,
    OrderResult,
    OrderStatus,
    OrderWorkflowInput,
    Stage,
)
from schema.database import open_session
from schema.tables import Order, OrderEvent
from settings import Settings
from starter.orders import record_order
from tests.support import mail_to, sample_order
from worker import build_worker
from workflows.order import OrderWorkflow

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
    async with build_worker(client, settings, engine, task_queue=queue):
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            OrderWorkflowInput(
                order_id=str(order.id), number=order.number, policy=settings.order_policy()
            ),
            id=f"order-{order.id}",
            task_queue=queue,
            result_type=OrderResult,
        )
        result = await handle.result()
        return result, await handle.query("status", result_type=OrderStatus)


async def test_order_is_confirmed_with_expected_date_from_policy(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> None:
    order = await _recorded_order(engine, delivery={"method": "pickup"})
    started = await time_skipping_env.get_current_time()

    result, status = await _run(time_skipping_env.client, settings, engine, order)

    assert result == OrderResult(str(order.id), Stage.CONFIRMATION, CustomerStatus.PROCESSING)
    assert status.stage == Stage.CONFIRMATION
    days = settings.policy_delivery_days_pickup
    assert status.expected_date is not None
    assert (status.expected_date - started.date()).days in (days, days + 1)  # around midnight
    async with open_session(engine) as session:
        stored = await session.get(Order, order.id)
    assert stored is not None and stored.expected_date == status.expected_date
    customer_email = sample_order()["customer"]["email"]  # another address: nothing leaks across
    assert mail_to(mail_sink.maildir, customer_email) == []


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


async def test_a_fresh_history_replays(
    time_skipping_env: WorkflowEnvironment, settings: Settings, engine: AsyncEngine
) -> None:
    order = await _recorded_order(engine)
    await _run(time_skipping_env.client, settings, engine, order)
    history = await time_skipping_env.client.get_workflow_handle(
        f"order-{order.id}"
    ).fetch_history()

    await Replayer(
        workflows=[OrderWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    """Orders already in flight must survive every change of OrderWorkflow (rule 6)."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(
        workflows=[OrderWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)
