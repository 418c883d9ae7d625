"""The HTTP API: for backend services (orders), providers (signed webhooks), staff (actions,
search, administration) and customers (their answers); the console and the customer pages
are mounted on the same app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from activities.payment_gateways.chosen import callback_reader
from activities.providers import make_http_client
from runtime import configure_logging
from schema.database import make_engine
from settings import Settings, get_settings
from starter import console, customer
from starter.api import access_log, errors
from starter.api.limits import BodySizeLimit, limiter, order_list_limits, sign_in_limits
from starter.api.routes import (
    actions,
    admin,
    connectors,
    customers,
    documents,
    email_events,
    health,
    intake,
    orders,
    payment_webhooks,
    refunds,
    reports,
    returns,
    sessions,
    subscriptions,
    webhooks,
)
from starter.services.temporal import OrderWorkflows


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.refuse_devstack_secrets()
    access_log.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        app.state.sign_in_limits = sign_in_limits(app.state.engine, settings)
        app.state.order_list_limits = order_list_limits(app.state.engine, settings)
        app.state.workflows = OrderWorkflows(settings)
        app.state.links = settings.customer_links()
        http = make_http_client(settings.provider_timeout_seconds)
        app.state.payment_callbacks = callback_reader(settings, http)  # Monobank's key: HTTP
        yield
        await http.aclose()
        await app.state.engine.dispose()

    app = FastAPI(
        title="orderflow",
        version="0.1.0",
        summary="Every order of an online shop as one durable Temporal workflow.",
        lifespan=lifespan,
    )
    app.state.limiter = limiter
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # The client's address behind the proxies we trust (none unless configured): the one way
    # the API learns it, so uvicorn's own proxy headers handling is off (`main`, tests).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    for router in (
        orders.router,
        actions.router,
        refunds.router,
        returns.router,
        documents.router,
        customers.router,
        customers.links_router,
        reports.router,
        subscriptions.router,
        payment_webhooks.router,  # before webhooks' /{provider}, which takes its three only
        email_events.router,
        webhooks.router,
        sessions.router,
        admin.router,
        connectors.router,
        intake.router,
        health.router,
        console.router,
        customer.router,
    ):
        app.include_router(router)
    errors.install(app)
    errors.document_edge_answers(app)
    console.install(app)
    customer.install(app)
    # Collected here, served by `main` on the metrics port: never beside the public API.
    Instrumentator().instrument(app)
    return app


def main() -> None:
    import uvicorn
    from prometheus_client import start_http_server

    settings = get_settings()
    configure_logging()
    app = create_app(settings)
    start_http_server(settings.api_metrics_port, settings.api_metrics_host)
    uvicorn.run(
        app, host=settings.api_host, port=settings.api_port, log_config=None, proxy_headers=False
    )
