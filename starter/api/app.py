"""The HTTP API: for backend services (orders), providers (signed webhooks), staff (actions,
search, administration) and customers (their answers); the console and the customer pages
are mounted on the same app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from runtime import configure_logging
from schema.database import make_engine
from settings import Settings, get_settings
from starter import console, customer
from starter.api import errors
from starter.api.limits import BodySizeLimit, limiter
from starter.api.routes import (
    actions,
    admin,
    customers,
    documents,
    health,
    orders,
    reports,
    sessions,
    webhooks,
)
from starter.services.temporal import OrderWorkflows


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        app.state.workflows = OrderWorkflows(settings)
        yield
        await app.state.engine.dispose()

    app = FastAPI(
        title="orderflow",
        version="0.1.0",
        summary="Every order of an online shop as one durable Temporal workflow.",
        lifespan=lifespan,
    )
    app.state.limiter = limiter
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    for router in (
        orders.router,
        actions.router,
        documents.router,
        customers.router,
        reports.router,
        webhooks.router,
        sessions.router,
        admin.router,
        health.router,
        console.router,
        customer.router,
    ):
        app.include_router(router)
    errors.install(app)
    console.install(app)
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    return app


def main() -> None:
    import uvicorn

    settings = get_settings()
    configure_logging()
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )
