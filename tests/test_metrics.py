"""Business metrics as Prometheus scrapes them: the worker's (Temporal's metric meter, on the
worker's own endpoint) after real orders went through, and the API's (prometheus_client);
and every query of the Grafana dashboard names a metric that one of them served."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devstack.harness import free_port
from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from runtime import DATA_CONVERTER, metrics_runtime
from schema.api.fields import Role
from schema.database import make_engine
from schema.links import LinkPurpose
from settings import Settings
from tests.conftest import database_of_its_own
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import eventually, sample_order

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "orderflow.json"
Samples = dict[str, list[tuple[dict[str, str], float]]]


class Scraped:
    def __init__(self, text: str) -> None:
        self.samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def value(self, name: str, **labels: str) -> float:
        return sum(
            value
            for found, value in self.samples.get(name, [])
            if all(found.get(key) == wanted for key, wanted in labels.items())
        )


@dataclass
class Business:
    stack: Stack
    worker: Scraped  # the worker's endpoint after the orders
    api_before: Scraped
    api: Scraped


@pytest.fixture(scope="module")
def metrics_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    """Its own: the order events it counts are delivered by its worker's dispatcher alone."""
    with database_of_its_own(postgres, "metrics") as url:
        yield url


@pytest.fixture(scope="module")
async def business(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    metrics_database: str,
    mail_sink: MailSink,
) -> AsyncIterator[Business]:
    """On a stack whose worker's Temporal runtime serves Prometheus, with the policy's days
    made seconds (a 2-second silence breaches the SLA of an order waiting for payment; the
    feedback request goes out a second after delivery, at any hour): one order delivered,
    answered and completed, one cancelled by an operator and asked about by its customer."""
    port = free_port()
    runtime = metrics_runtime("127.0.0.1", port)
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
    engine = make_engine(metrics_database)
    settings = base_settings.model_copy(
        update={
            "database_url": metrics_database,
            "policy_silence_period": timedelta(seconds=2),
            "policy_silence_max_notices": 1,
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=2),
            "policy_quiet_from_hour": 24,  # no night
            "policy_quiet_until_hour": 0,
        }
    )
    async with run_stack(
        temporal_env, settings, engine, mail_sink.maildir, worker_client=client
    ) as stack:
        api_before = Scraped(_api_metrics())
        # Order events to the shop: the worker's dispatcher delivers them through the same
        # runtime as the activities (a receiver that refuses once first: a retry counted).
        await stack.sim.post("/shop/sim/refuse", params={"count": 1})
        subscribed = await stack.api.post(
            "/v1/webhook-subscriptions",
            json={
                "url": f"{str(stack.sim.base_url).rstrip('/')}/shop/events",
                "events": ["order.received"],
            },
        )
        assert subscribed.status_code == 201
        customer = {**sample_order()["customer"], "channels": ["push", "email"]}
        delivered = await Journey.place(stack, customer={**customer, "push_token": "expired-1"})
        await delivered.reached("sla.silence_breached")  # two seconds without news
        await delivered.to_delivery()
        answer = await delivered.answer(
            "feedback", {"rating": 5, "nps": 10}, token=delivered.link(LinkPurpose.FEEDBACK)
        )
        assert answer.status_code == 200
        await delivered.reached("order.completed")
        cancelled = await Journey.place(stack)
        await cancelled.waiting_for("payment")
        assert (await cancelled.act("cancel", reason="customer_request")).status_code == 200
        note = await stack.as_role[Role.SUPPORT].post(
            f"/v1/orders/{cancelled.order_id}/notes",
            json={"text": "where is my order?", "customer_contact": True},
        )
        assert note.status_code == 201 and note.json()["customer_contact"] is True

        async def delivered() -> bool:
            arrived = (await stack.sim.get("/shop/sim/events")).json()
            return any(a["event"]["data"]["order_id"] == cancelled.order_id for a in arrived)

        await eventually(delivered, 20, what="the order events delivered")
        async with httpx.AsyncClient() as http:
            worker = Scraped((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
        yield Business(stack, worker, api_before, Scraped(_api_metrics()))
    await engine.dispose()


async def test_the_worker_counts_orders_stages_breaches_and_messages(business: Business) -> None:
    worker, mine = business.worker, {"task_queue": business.stack.settings.temporal_task_queue}
    assert worker.value("orderflow_orders_started_total", **mine) == 2
    assert worker.value("orderflow_orders_cancelled_total", reason="customer_request", **mine) == 1
    assert worker.value("orderflow_orders_delivered_total", on_time="yes", **mine) == 1
    assert worker.value("orderflow_sla_breaches_total", waiting_for="payment", **mine) == 1
    for stage in ("intake", "validation", "confirmation", "stock", "payment"):
        assert worker.value("orderflow_stage_seconds_count", stage=stage, **mine) == 2, stage
    for stage in ("picking", "documents", "transit"):  # the delivered order's
        assert worker.value("orderflow_stage_seconds_count", stage=stage, **mine) == 1, stage
    # Handover twice: the booking before the documents, the handover itself after them.
    assert worker.value("orderflow_stage_seconds_count", stage="handover", **mine) == 2
    assert worker.value("orderflow_stage_seconds_count", stage="feedback", **mine) == 1
    assert worker.value("orderflow_orders_completed_total", **mine) == 1
    assert worker.value("orderflow_stage_seconds_bucket", stage="payment", le="+Inf", **mine) == 2
    push = {"channel": "push", "audience": "customer", **mine}
    assert (
        worker.value("orderflow_notifications_failed_total", failure="undeliverable", **push) >= 1
    )
    assert worker.value("orderflow_notifications_sent_total", channel="email", **mine) >= 8
    # Counted by the dispatcher beside the activities (no task queue label: not an activity).
    assert worker.value("orderflow_shop_event_deliveries_total", outcome="retrying") >= 1
    assert worker.value("orderflow_shop_event_deliveries_total", outcome="delivered") >= 1


async def test_the_api_counts_actions_contacts_and_answers(business: Business) -> None:
    def grew(name: str, **labels: str) -> float:
        return business.api.value(name, **labels) - business.api_before.value(name, **labels)

    assert grew("orderflow_operator_actions_total", action="cancel", outcome="accepted") == 1
    assert grew("orderflow_support_contacts_total") == 1
    assert grew("orderflow_feedback_answers_total", rating="5", nps="promoter") == 1


def _api_metrics() -> str:
    """The API's metrics as its metrics port serves them (`starter.api.app.main` serves this
    process's registry there; the test's API runs in this process)."""
    return prometheus_client.generate_latest().decode()


def dashboard_metrics() -> set[str]:
    """Every metric name in the dashboard's queries."""
    board = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            names |= set(re.findall(r"\b(orderflow_\w+|http_\w+)\b", target["expr"]))
    return names


async def test_every_dashboard_query_names_a_metric_that_is_served(business: Business) -> None:
    served = set(business.worker.samples) | set(business.api.samples)
    wanted = dashboard_metrics()
    assert len(wanted) >= 10
    assert sorted(wanted - served) == []
