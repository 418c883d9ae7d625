"""The HTTP API for backend services: accept orders, read them, report health."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from slowapi.errors import RateLimitExceeded
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from runtime import configure_logging
from schema.api import (
    ErrorBody,
    FieldError,
    OrderAccepted,
    OrderCreate,
    OrderOut,
    OrderPage,
)
from schema.contracts import (
    WORKFLOW_TYPE,
    CustomerStatus,
    OrderWorkflowInput,
    Stage,
    workflow_id_for,
)
from schema.database import make_engine
from schema.tables import Order
from settings import Settings, get_settings
from starter import admin, console, operators, webhooks
from starter.auth import Permission, Principal, audit, require
from starter.deps import AppSettings, Session, Temporal, TemporalClient, TemporalGateway
from starter.limits import BodySizeLimit, limiter
from starter.orders import OrderNumberConflict, find_orders, links_for, record_order, view_order

log = structlog.get_logger(__name__)

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The number is used by a different order"},
    422: {"model": ErrorBody, "description": "Invalid input; each bad field is named"},
    503: {"model": ErrorBody, "description": "Temporal unreachable; retry the same request"},
}


async def start_order_workflow(client: Client, order: Order, settings: Settings) -> None:
    """Start the order's workflow; a retried request finds it already there."""
    try:
        await client.start_workflow(
            WORKFLOW_TYPE,
            OrderWorkflowInput(
                order_id=str(order.id), number=order.number, policy=settings.order_policy()
            ),
            id=workflow_id_for(str(order.id)),
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran to its end already
    except RPCError as exc:
        raise HTTPException(
            503, f"order recorded, but its workflow could not start ({exc}); retry the request"
        ) from exc


@router.post(
    "/v1/orders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderAccepted,
    responses={200: {"model": OrderAccepted, "description": "The same order again"}, **ERRORS},
    summary="Accept an order and start its workflow (idempotent on `number`)",
)
async def create_order(
    body: OrderCreate,
    db: Session,
    client: TemporalClient,
    settings: AppSettings,
    response: Response,
    caller: Principal = require(Permission.ORDERS_CREATE),
) -> OrderAccepted:
    started = time.perf_counter()
    try:
        order, created = await record_order(db, body=body, created_by=caller.actor)
    except OrderNumberConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    if created:
        await audit(db, caller, "order.create", str(order.id))
        await db.commit()
    workflow_id = workflow_id_for(str(order.id))
    structlog.contextvars.bind_contextvars(order_id=str(order.id), workflow_id=workflow_id)
    await start_order_workflow(client, order, settings)
    if not created:
        response.status_code = status.HTTP_200_OK
    log.info(
        "order accepted" if created else "order request repeated",
        number=order.number,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return OrderAccepted(
        order_id=str(order.id),
        number=order.number,
        status=CustomerStatus(order.status),
        links=links_for(order.id, settings),
    )


@router.get(
    "/v1/orders/{order_id}",
    response_model=OrderOut,
    responses={404: {"model": ErrorBody}},
    summary="The order's read model with the workflow's live `status`",
)
async def get_order(
    order_id: uuid.UUID,
    db: Session,
    temporal: TemporalGateway,
    settings: AppSettings,
    caller: Principal = require(Permission.ORDERS_READ),
) -> OrderOut:
    """Personal data is shown to operators and admins (and each such read is audited), masked for others."""
    view = await view_order(
        db, caller=caller, order_id=order_id, temporal=temporal, settings=settings
    )
    if view is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    return view


@router.get(
    "/v1/orders",
    response_model=OrderPage,
    summary="Find orders by number, phone, e-mail or tracking number, with filters (newest first)",
)
async def list_orders(
    db: Session,
    caller: Annotated[Principal, require(Permission.ORDERS_SEARCH)],
    q: Annotated[
        str | None, Query(description="number, phone, e-mail or tracking number", max_length=200)
    ] = None,
    stage: Stage | None = None,
    needs_action: bool | None = None,
    sla_breached: bool | None = None,
    payment_failed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> OrderPage:
    return await find_orders(
        db,
        caller=caller,
        q=q,
        stage=stage,
        needs_action=needs_action,
        sla_breached=sla_breached,
        payment_failed=payment_failed,
        limit=limit,
        cursor=cursor,
    )


@router.get("/healthz", summary="Each component's health; 503 when any is down")
async def healthz(request: Request, settings: AppSettings) -> JSONResponse:
    checks = await asyncio.gather(
        _check_database(request.app.state.engine),
        _check_temporal(request.app.state.temporal, settings),
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


async def _check_temporal(temporal: Temporal, settings: Settings) -> tuple[str, dict[str, Any]]:
    """Temporal's health and the worker's presence: a workflow only moves if a worker polls."""
    queue = settings.temporal_task_queue
    try:
        client = await asyncio.wait_for(temporal.client(), 3)
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


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field=".".join(str(part) for part in err["loc"][1:]) or err["loc"][0],
            message=err["msg"].removeprefix("Value error, "),
        )
        for err in exc.errors()
    ]
    detail = f"invalid request: {', '.join(e.field for e in errors)}"
    return JSONResponse(
        status_code=422, content=ErrorBody(detail=detail, errors=errors).model_dump()
    )


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    body = ErrorBody(detail=f"too many requests: limit {exc.detail}; try again later")
    return JSONResponse(status_code=429, content=body.model_dump(), headers={"Retry-After": "60"})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        status_code=exc.status_code, content=ErrorBody(detail=str(exc.detail)).model_dump()
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        app.state.temporal = Temporal(settings)
        yield
        await app.state.engine.dispose()

    app = FastAPI(
        title="orderflow",
        version="0.1.0",
        summary="Every order of an online shop as one durable Temporal workflow.",
        lifespan=lifespan,
    )
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.include_router(router)
    app.include_router(operators.router)
    app.include_router(admin.router)
    app.include_router(console.router)
    app.add_exception_handler(console.SignInRequired, console.sign_in_redirect)
    app.include_router(webhooks.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    return app


def main() -> None:
    import uvicorn

    settings = get_settings()
    configure_logging()
    app = create_app(settings)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None)


if __name__ == "__main__":
    main()
