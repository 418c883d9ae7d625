"""`/healthz`: each component's health (database and its schema, Temporal and whether a
worker polls the task queue, SMTP); 503 when any is down."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from schema.api.admin import Health
from settings import Settings
from starter.api.deps import AppSettings, Workflows
from starter.services.temporal import OrderWorkflows

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A component is down"}},
    summary="Each component's health; 503 when any is down",
)
async def healthz(request: Request, settings: AppSettings, workflows: Workflows) -> JSONResponse:
    checks = await asyncio.gather(
        _check_database(request.app.state.engine),
        _check_temporal(workflows, settings),
        _check_smtp(settings),
    )
    components = dict(checks)
    healthy = all(c["status"] == "ok" for c in components.values())
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={"status": "ok" if healthy else "degraded", "components": components},
    )


async def _check_database(engine: AsyncEngine) -> tuple[str, dict[str, Any]]:
    try:
        async with engine.connect() as conn:
            revision = (
                await conn.execute(text("select version_num from alembic_version"))
            ).scalar()
    except Exception as exc:
        return "database", {"status": "down", "error": str(exc)[:200]}
    return "database", {"status": "ok", "schema": revision}


async def _check_temporal(
    workflows: OrderWorkflows, settings: Settings
) -> tuple[str, dict[str, Any]]:
    """Temporal's health and the worker's presence: a workflow only moves if a worker polls."""
    queue = settings.temporal_task_queue
    try:
        client = await asyncio.wait_for(workflows.client(), 3)
        await client.service_client.check_health(timeout=timedelta(seconds=3))
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except Exception as exc:
        return "temporal", {
            "status": "down",
            "address": settings.temporal_address,
            "error": str(exc)[:200],
        }
    workers = len(described.pollers)
    report: dict[str, Any] = {
        "status": "ok" if workers else "down",
        "address": settings.temporal_address,
        "task_queue": queue,
        "workers": workers,
    }
    if not workers:
        report["error"] = f"no worker polls task queue {queue}"
    return "temporal", report


async def _check_smtp(settings: Settings) -> tuple[str, dict[str, Any]]:
    address = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        connect = asyncio.open_connection(settings.smtp_host, settings.smtp_port)
        reader, writer = await asyncio.wait_for(connect, 3)
        banner = await asyncio.wait_for(reader.readline(), 3)
        writer.write(b"QUIT\r\n")
        writer.close()
    except Exception as exc:
        return "smtp", {"status": "down", "address": address, "error": str(exc)[:200]}
    return "smtp", {"status": "ok" if banner.startswith(b"220") else "down", "address": address}
