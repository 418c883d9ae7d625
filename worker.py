"""The worker process: builds dependencies once, registers the workflow and activities, runs."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notifications import Mailer, NotificationActivities
from activities.orders import OrderActivities
from runtime import configure_logging, connect_temporal, metrics_runtime
from schema.database import make_engine
from settings import Settings, get_settings
from workflows.order import SEARCH_ATTRIBUTES, OrderWorkflow

log = structlog.get_logger(__name__)


class _BindOrderToLogs(Interceptor):
    """Every activity's log lines carry the order's workflow id (and so its order id)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BoundActivity(next)


class _BoundActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            order_id=(info.workflow_id or "").removeprefix("order-"),
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register the order's search attributes where they are missing (the dev server has them)."""
    wanted = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in SEARCH_ATTRIBUTES
    }
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=wanted)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def build_worker(
    client: Client, settings: Settings, engine: AsyncEngine, task_queue: str | None = None
) -> Worker:
    orders = OrderActivities(engine)
    notifications = NotificationActivities(engine, Mailer(settings), settings)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[OrderWorkflow],
        interceptors=[_BindOrderToLogs()],
        activities=[orders.record_event, orders.validate_order, notifications.send_confirmation],
        # Contracts are plain dataclasses; pydantic is only the converter: pass both through.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("pydantic", "schema")
        ),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def main() -> None:
    settings = get_settings()
    configure_logging()
    client = await connect_temporal(
        settings, metrics_runtime(settings.worker_metrics_host, settings.worker_metrics_port)
    )
    try:
        await ensure_search_attributes(client, settings.temporal_namespace)
    except RPCError as exc:  # e.g. no permission on a managed cluster: an operator registers them
        log.warning("could not register search attributes", error=str(exc))
    engine = make_engine(settings.database_url)
    worker = build_worker(client, settings, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started",
        task_queue=settings.temporal_task_queue,
        temporal=settings.temporal_address,
        metrics=f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics",
    )
    async with worker:
        await stop.wait()
        log.info("worker stopping")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
