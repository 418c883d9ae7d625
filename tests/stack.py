"""The running stack the tests drive: simulators, worker and HTTP API on free ports, over
a Temporal server (dev or time-skipping), real Postgres and the SMTP sink."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.providers import make_http_client
from activities.shop_events import ShopEventDispatcher
from devstack.harness import free_port
from devstack.simulators import create_simulators
from schema.api.fields import Role
from schema.database import open_session
from schema.tables import Order
from settings import CARRIER_APIS, MARKETPLACE_APIS, PAYMENT_APIS, Settings
from starter.api.app import create_app
from starter.services.access import issue_api_key
from tests.support import eventually
from worker import build_worker, client_meter, delivery_reports

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    """Everything an order touches, running: use `api` and `sim` like a shop and its providers would."""

    env: WorkflowEnvironment
    settings: Settings
    engine: AsyncEngine
    api: httpx.AsyncClient  # as an admin
    sim: httpx.AsyncClient
    maildir: Path
    as_role: dict[Role, httpx.AsyncClient]  # the API as each role (key names: the role's)

    @property
    def client(self) -> Client:
        return self.env.client


@asynccontextmanager
async def serve(app: FastAPI, port: int) -> AsyncIterator[httpx.AsyncClient]:
    server = uvicorn.Server(
        # Proxy headers are the app's business (ORDERFLOW_FORWARDED_ALLOW_IPS), as in `main`.
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", proxy_headers=False
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield http
    server.should_exit = True
    await serving


@asynccontextmanager
async def run_stack(
    env: WorkflowEnvironment,
    base: Settings,
    engine: AsyncEngine,
    maildir: Path,
    *,
    worker_in_process: bool = True,
    worker_client: Client | None = None,  # e.g. one whose runtime serves Prometheus metrics
    simulators_in_process: bool = True,
) -> AsyncIterator[Stack]:
    """The stack on free ports; without `worker_in_process` the test runs worker processes
    of its own (`spawn_worker`). Without `simulators_in_process` the simulators run as a
    process of their own, as in `make dev`: what they measure (when a request arrived) is
    then not delayed by everything else this test process runs."""
    api_port, sim_port = free_port(), free_port()
    settings = base.model_copy(
        update={
            "temporal_address": env.client.service_client.config.target_host,
            "temporal_task_queue": f"orders-{uuid.uuid4().hex[:8]}",
            "public_url": f"http://127.0.0.1:{api_port}",
            "simulator_port": sim_port,
            "payment_url": f"http://127.0.0.1:{sim_port}/payment",
            "warehouse_url": f"http://127.0.0.1:{sim_port}/warehouse",
            "carrier_url": f"http://127.0.0.1:{sim_port}/carrier",
            "sms_url": f"http://127.0.0.1:{sim_port}/sms",
            "push_url": f"http://127.0.0.1:{sim_port}/push",
            **{f"{p}_url": f"http://127.0.0.1:{sim_port}/{p}" for p in PAYMENT_APIS},
            # The real carriers' simulators (ORDERFLOW_CARRIER chooses which one is asked).
            **{name: f"http://127.0.0.1:{sim_port}/{path}" for name, _, path in CARRIER_APIS},
            **{name: f"http://127.0.0.1:{sim_port}/{path}" for name, _, path in MARKETPLACE_APIS},
            "turbosms_url": f"http://127.0.0.1:{sim_port}/turbosms",
        }
    )
    async with AsyncExitStack() as stack:
        if simulators_in_process:
            sim = await stack.enter_async_context(serve(create_simulators(settings), sim_port))
        else:
            sim = await stack.enter_async_context(simulators_process(settings))
        http = await stack.enter_async_context(make_http_client(settings.provider_timeout_seconds))
        if worker_in_process:
            client = worker_client or env.client
            await stack.enter_async_context(build_worker(client, settings, engine, http))
            # The worker process's other duties: order events to the shop's backend, and
            # asking TurboSMS what became of its messages.
            dispatcher = ShopEventDispatcher(engine, http, settings, client_meter(client))
            reports = delivery_reports(settings, engine, http)
            stop = asyncio.Event()
            duties = [dispatcher.run(stop), *([reports.run(stop)] if reports else [])]
            delivering = asyncio.gather(*duties)

            async def stop_delivering() -> None:
                stop.set()
                await delivering

            stack.push_async_callback(stop_delivering)
        anonymous = await stack.enter_async_context(serve(create_app(settings), api_port))
        clients = {}
        for role in Role:
            async with open_session(engine) as session:
                key = await issue_api_key(session, name=role.value, role=role)
            clients[role] = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=anonymous.base_url,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
            )
        yield Stack(env, settings, engine, clients[Role.ADMIN], sim, maildir, clients)


@asynccontextmanager
async def simulators_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """`python -m devstack.simulators` on the stack's simulator port, once it answers."""
    process = spawn_simulators(settings)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.simulator_port}", timeout=30
        ) as http:

            async def answering() -> bool:
                assert process.poll() is None, "the simulators' process died"
                try:
                    return (await http.get("/sim/webhooks")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answering, timeout=60, what="the simulators' process answering")
            yield http
    finally:
        process.terminate()
        process.wait(timeout=15)


@asynccontextmanager
async def stack_to_the_end(
    env: WorkflowEnvironment,
    base: Settings,
    engine: AsyncEngine,
    maildir: Path,
    *,
    simulators_in_process: bool = True,
    **changes: Any,
) -> AsyncIterator[Stack]:
    """A stack whose orders run to their end within a test: the simulators on autopilot, a
    feedback window of seconds; no worker in process (the test spawns worker processes)."""
    settings = base.model_copy(
        update={
            "simulator_autopilot": True,
            "simulator_step_seconds": 0.3,
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=3),
            "policy_feedback_reminder": timedelta(seconds=2),
            "policy_feedback_wait": timedelta(seconds=4),
            "policy_quiet_from_hour": 24,  # no night: the feedback request goes at once
            "policy_quiet_until_hour": 0,
            **changes,
        }
    )
    async with run_stack(
        env,
        settings,
        engine,
        maildir,
        worker_in_process=False,
        simulators_in_process=simulators_in_process,
    ) as stack:
        yield stack


async def every_order_completed(stack: Stack, placed: list[uuid.UUID]) -> None:
    """Wait until each of the orders has run to its end (stage `completed`)."""

    async def all_completed() -> bool:
        async with open_session(stack.engine) as session:
            stages = (
                await session.exec(select(Order.stage).where(col(Order.id).in_(placed)))
            ).all()
        return len(stages) == len(placed) and set(stages) == {"completed"}

    await eventually(all_completed, timeout=240, what="every order completed")


def spawn_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`python worker.py`, the real worker process, configured by environment only."""
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=process_env(settings))


def spawn_simulators(settings: Settings) -> subprocess.Popen[bytes]:
    """`python -m devstack.simulators`, the simulators as a process of their own."""
    env = {
        **process_env(settings),
        "ORDERFLOW_SIMULATOR_AUTOPILOT": str(settings.simulator_autopilot).lower(),
        "ORDERFLOW_SIMULATOR_STEP_SECONDS": str(settings.simulator_step_seconds),
    }
    return subprocess.Popen([sys.executable, "-m", "devstack.simulators"], cwd=ROOT, env=env)


def spawn_api(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    """`python -m starter.api`, a real API process on `port`, configured by environment only."""
    env = {
        **process_env(settings),
        "ORDERFLOW_API_PORT": str(port),
        "ORDERFLOW_API_METRICS_PORT": str(free_port()),
    }
    return subprocess.Popen([sys.executable, "-m", "starter.api"], cwd=ROOT, env=env)


def process_env(settings: Settings) -> dict[str, str]:
    """The environment of a worker or API process for the stack of `settings`."""
    return {
        **os.environ,
        "ORDERFLOW_DEVSTACK": "true",
        "ORDERFLOW_DATABASE_URL": settings.database_url,
        "ORDERFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "ORDERFLOW_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "ORDERFLOW_SMTP_PORT": str(settings.smtp_port),
        "ORDERFLOW_PUBLIC_URL": settings.public_url,
        "ORDERFLOW_PAYMENT_URL": settings.payment_url,
        "ORDERFLOW_WAREHOUSE_URL": settings.warehouse_url,
        "ORDERFLOW_CARRIER_URL": settings.carrier_url,
        "ORDERFLOW_SMS_URL": settings.sms_url,
        "ORDERFLOW_PUSH_URL": settings.push_url,
        "ORDERFLOW_PAYMENT_PROVIDER": settings.payment_provider,
        **{f"ORDERFLOW_{p.upper()}_URL": getattr(settings, f"{p}_url") for p in PAYMENT_APIS},
        "ORDERFLOW_SMS_PROVIDER": settings.sms_provider,
        "ORDERFLOW_TURBOSMS_URL": settings.turbosms_url,
        "ORDERFLOW_EMAIL_PROVIDER": settings.email_provider,
        "ORDERFLOW_SMS_RATE_PER_SECOND": str(settings.sms_rate_per_second),
        "ORDERFLOW_SIMULATOR_PORT": str(settings.simulator_port),
        "ORDERFLOW_CARRIER": settings.carrier,
        "ORDERFLOW_CARRIER_POLL_INTERVAL": _env_value(settings.carrier_poll_interval),
        **{
            f"ORDERFLOW_{name.upper()}": getattr(settings, name)
            for name, _, _ in (*CARRIER_APIS, *MARKETPLACE_APIS)
        },
        "ORDERFLOW_WORKER_METRICS_PORT": str(free_port()),
        **{  # the order policy of these tests (an API process starts orders with it)
            f"ORDERFLOW_{name.upper()}": _env_value(getattr(settings, name))
            for name in settings.model_fields_set
            if name.startswith("policy_")
        },
    }


def _env_value(value: object) -> str:
    return f"PT{value.total_seconds()}S" if isinstance(value, timedelta) else str(value)
