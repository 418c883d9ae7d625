"""The worker process: builds dependencies once, registers the workflow and activities, runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.carriers import make_carrier
from activities.documents import DocumentActivities, Shop
from activities.inventory import InventoryActivities
from activities.marketplaces import MarketplaceActivities
from activities.notifications import (
    Channel,
    EmailChannel,
    Mailer,
    NotificationActivities,
    PushChannel,
    SmsChannel,
)
from activities.orders import OrderActivities
from activities.payment_gateways.chosen import chosen_gateway
from activities.payments import PaymentActivities
from activities.providers import Provider, SharedRate, make_http_client
from activities.returns import ReturnActivities
from activities.shipping import ShippingActivities
from activities.shop_events import ShopEventDispatcher
from activities.turbosms import TurboSms, TurboSmsChannel, TurboSmsDeliveries
from activities.warehouse import WarehouseActivities
from runtime import configure_logging, connect_temporal, metrics_runtime
from schema.contracts import (
    MarketplacePoll,
    TrackingRound,
    marketplace_poll_workflow_id,
    order_id_of,
    tracking_workflow_id,
)
from schema.database import make_engine
from settings import Settings, get_settings
from starter.services.intake import take_source_order
from starter.services.temporal import OrderWorkflows
from workflows.intake import MarketplacePollWorkflow
from workflows.messages import CustomerMessageWorkflow
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow
from workflows.search import SEARCH_ATTRIBUTES
from workflows.tracking import CarrierTrackingWorkflow

log = structlog.get_logger(__name__)

# Contracts are plain dataclasses and pydantic only the converter. The workflow's own modules
# are deterministic code with no state of their own: passed through, they are imported once
# per process instead of once per workflow the worker starts or replays, which cost 16% of
# the worker's CPU and most of a cached workflow's memory (README, Speed). The sandbox's
# runtime checks of the workflow's calls stay.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "pydantic", "schema", "zoneinfo", "workflows"
    )
)


class _BindOrderToLogs(Interceptor):
    """Every activity's log lines carry the order's workflow id (and so its order id)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BoundActivity(next)


class _BoundActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            order_id=order_id_of(info.workflow_id or ""),
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            return await super().execute_activity(input)


async def ensure_schedule(
    client: Client,
    schedule_id: str,
    action: ScheduleActionStartWorkflow | None,
    every: timedelta,
) -> None:
    """A schedule created once and kept at the interval settings give; none (deleted, if
    there was one) when there is no `action` to schedule."""
    handle = client.get_schedule_handle(schedule_id)
    if action is None:
        with contextlib.suppress(RPCError):  # none there: nothing to stop
            await handle.delete()
        return
    schedule = Schedule(
        action=action,
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # One run at a time: a slow one (its pages continue as new) is not overtaken.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))


async def ensure_tracking_schedule(client: Client, settings: Settings, polls: bool) -> None:
    """The schedule of tracking rounds (workflows/tracking.py) for a carrier without webhooks
    (`polls`); none for one that calls back."""
    schedule_id = tracking_workflow_id(settings.temporal_task_queue)
    action = ScheduleActionStartWorkflow(
        CarrierTrackingWorkflow.run,
        TrackingRound(),
        id=schedule_id,
        task_queue=settings.temporal_task_queue,
    )
    await ensure_schedule(
        client, schedule_id, action if polls else None, settings.carrier_poll_interval
    )


async def ensure_marketplace_schedule(client: Client, settings: Settings) -> None:
    """The schedule of marketplace polls (workflows/intake.py): every enabled polled
    connector, each time."""
    schedule_id = marketplace_poll_workflow_id(settings.temporal_task_queue)
    action = ScheduleActionStartWorkflow(
        MarketplacePollWorkflow.run,
        MarketplacePoll(),
        id=schedule_id,
        task_queue=settings.temporal_task_queue,
    )
    await ensure_schedule(client, schedule_id, action, settings.marketplace_poll_interval)


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


def client_meter(client: Client) -> MetricMeter:
    """The metric meter of the client's runtime: what it counts comes out of the worker's
    Prometheus endpoint beside the activities' metrics."""
    return (client.service_client.config.runtime or Runtime.default()).metric_meter


def text_channels(
    settings: Settings, engine: AsyncEngine, http: httpx.AsyncClient
) -> list[Channel]:
    """SMS through the chosen provider; with TurboSMS, Viber too (the SMS its fallback)."""
    if settings.sms_provider == "turbosms":
        rate = SharedRate(engine, "turbosms", settings.sms_rate_per_second)
        turbosms = TurboSms.of(settings, http, rate)
        return [TurboSmsChannel("sms", turbosms), TurboSmsChannel("viber", turbosms)]
    rate = SharedRate(engine, "sms", settings.sms_rate_per_second)
    return [SmsChannel(Provider("sms", http, settings.sms_url, rate), settings.sms_sender)]


def delivery_reports(
    settings: Settings, engine: AsyncEngine, http: httpx.AsyncClient
) -> TurboSmsDeliveries | None:
    """Who asks the text provider what became of its messages (TurboSMS only)."""
    if settings.sms_provider != "turbosms":
        return None
    return TurboSmsDeliveries(engine, TurboSms.of(settings, http), settings)


def build_worker(
    client: Client,
    settings: Settings,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    task_queue: str | None = None,
) -> Worker:
    """The worker with every activity, its dependencies built once and shared."""
    webhooks = f"{settings.public_url}/v1/webhooks"
    warehouse = Provider("warehouse", http, settings.warehouse_url)
    carrier = make_carrier(settings, http)
    orders = OrderActivities(engine, settings, carrier)
    channels = [
        EmailChannel(Mailer(settings)),
        *text_channels(settings, engine, http),
        PushChannel(
            Provider(
                "push",
                http,
                settings.push_url,
                SharedRate(engine, "push", settings.push_rate_per_second),
            )
        ),
    ]
    notifications = NotificationActivities(engine, channels, settings)
    inventory = InventoryActivities(engine, warehouse)
    picking = WarehouseActivities(engine, warehouse, f"{webhooks}/warehouse")
    gateway = chosen_gateway(settings, http)
    payments = PaymentActivities(
        engine,
        gateway,
        f"{webhooks}/{'payment' if gateway.name == 'sim' else gateway.name}",
        settings.public_url,
        settings.customer_links(),
    )
    shipping = ShippingActivities(engine, carrier, f"{webhooks}/carrier")
    documents = DocumentActivities(engine, Shop.of(settings), carrier)
    returns = ReturnActivities(engine)
    # Orders polled from marketplaces go through the intake the API's webhooks use.
    marketplaces = MarketplaceActivities(
        engine,
        http,
        settings,
        functools.partial(take_source_order, workflows=OrderWorkflows(settings, client)),
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[
            OrderWorkflow,
            ReturnWorkflow,
            RefundWorkflow,
            CustomerMessageWorkflow,
            CarrierTrackingWorkflow,
            MarketplacePollWorkflow,
        ],
        interceptors=[_BindOrderToLogs()],
        activities=[
            orders.record_event,
            orders.record_steps,
            orders.record_progress,
            orders.validate_order,
            orders.apply_decision,
            orders.record_incident,
            notifications.send_confirmation,
            notifications.notify,
            notifications.send_order_list,
            inventory.reserve_stock,
            inventory.release_stock,
            inventory.request_backorder,
            picking.create_pick_task,
            payments.create_payment_link,
            payments.refund_payment,
            payments.cancel_payment_link,
            shipping.book_shipment,
            shipping.cancel_shipment,
            documents.generate_documents,
            inventory.restock,
            shipping.book_return_shipment,
            documents.generate_return_label,
            returns.record_return_step,
            returns.create_exchange_order,
            returns.exchange_outcome,
            shipping.poll_tracking,
            shipping.record_tracking,
            marketplaces.polled_connectors,
            marketplaces.poll_orders,
        ],
        workflow_runner=WORKFLOW_RUNNER,
        max_cached_workflows=settings.worker_max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def main() -> None:
    settings = get_settings()
    configure_logging()
    settings.refuse_devstack_secrets()
    client = await connect_temporal(
        settings, metrics_runtime(settings.worker_metrics_host, settings.worker_metrics_port)
    )
    try:
        await ensure_search_attributes(client, settings.temporal_namespace)
    except RPCError as exc:  # e.g. no permission on a managed cluster: an operator registers them
        log.warning("could not register search attributes", error=str(exc))
    engine = make_engine(settings.database_url, pre_ping=False)  # activities retry
    http = make_http_client(settings.provider_timeout_seconds)
    await ensure_tracking_schedule(client, settings, make_carrier(settings, http).polls)
    await ensure_marketplace_schedule(client, settings)
    worker = build_worker(client, settings, engine, http)
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
    # Order events to the shop's backend: every worker process delivers the outbox.
    # Its own connections: a slow receiver never takes the providers' pool.
    shop_http = make_http_client(settings.shop_events_timeout_seconds)
    dispatcher = ShopEventDispatcher(engine, shop_http, settings, client_meter(client))
    deliveries = delivery_reports(settings, engine, http)
    async with worker, asyncio.TaskGroup() as tasks:
        if settings.shop_events_dispatcher:
            tasks.create_task(dispatcher.run(stop))
        if deliveries is not None:
            tasks.create_task(deliveries.run(stop))
        await stop.wait()
        log.info("worker stopping")
    await http.aclose()
    await shop_http.aclose()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
