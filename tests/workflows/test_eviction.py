"""A worker whose cache holds fewer orders than it runs: orders are evicted and replayed in
turn, each still answers, and throwing a cached order away calls no workflow API (no
`_NotInWorkflowEventLoopError`, neither logged nor raised while its coroutines close)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schema.contracts import OrderWorkflowInput, WaitingFor, workflow_id_for
from settings import Settings
from tests.workflows.standins import OrderStandIns
from worker import WORKFLOW_RUNNER
from workflows.order import OrderWorkflow

ORDERS = 4


async def test_orders_evicted_from_a_small_cache_answer_and_leave_cleanly(
    time_skipping_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    client, task_queue = time_skipping_env.client, f"evict-{uuid.uuid4().hex[:8]}"
    policy = Settings().order_policy()
    unraisable: list[Any] = []
    default_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with caplog.at_level(logging.WARNING):
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=[OrderWorkflow],
                activities=OrderStandIns().activities(),
                workflow_runner=WORKFLOW_RUNNER,
                max_cached_workflows=1,  # every other order is evicted to run the next
                # A task for an order this worker evicted waits this long on its sticky queue
                # before the server offers it to the normal one (the SDK's default is 10 s).
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
            ):
                handles = []
                for _ in range(ORDERS):
                    order_id = str(uuid.uuid4())
                    handles.append(
                        await client.start_workflow(
                            OrderWorkflow.run,
                            OrderWorkflowInput(order_id, f"T-{order_id[:6]}", policy),
                            id=workflow_id_for(order_id),
                            task_queue=task_queue,
                        )
                    )
                for _ in range(2):  # each query replays its order and evicts the one before
                    for handle in handles:
                        status = await _parked(handle)
                        assert status.waiting_for == WaitingFor.PAYMENT
                for handle in handles:
                    await handle.terminate(reason="test over")
            gc.collect()  # coroutines of evicted orders are closed by now, or here
    finally:
        sys.unraisablehook = default_hook
    assert not [u for u in unraisable if "NotInWorkflowEventLoop" in repr(u.exc_value)]
    assert "NotInWorkflowEventLoop" not in caplog.text
    assert not [r for r in caplog.records if "evict" in r.getMessage().lower()], caplog.text


async def _parked(handle: Any) -> Any:
    """The order's status once it waits for its payment (it gets there on its own)."""
    for _ in range(200):
        status = await handle.query(OrderWorkflow.status)
        if status.waiting_for == WaitingFor.PAYMENT:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} did not reach its payment wait")
