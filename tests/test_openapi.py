"""The OpenAPI tells the truth: schemathesis runs every check over /openapi.json against the
real app (Temporal dev server, worker, Postgres, simulators), on a database of its own so
that what it revokes, erases or locks out touches no other test, and finds nothing."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from schema.database import make_engine
from settings import Settings
from tests.conftest import database_of_its_own
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "schemathesis.toml"
ST = Path(sys.executable).parent / "st"


@pytest.fixture(scope="module")
def fuzz_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    with database_of_its_own(postgres, "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
async def fuzz_stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    fuzz_database: str,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    engine: AsyncEngine = make_engine(fuzz_database)
    settings = base_settings.model_copy(update={"database_url": fuzz_database})
    async with run_stack(temporal_env, settings, engine, mail_sink.maildir) as stack:
        yield stack
    await engine.dispose()


# About 50 operations at 15 examples each, plus the stateful phase: over the default 120 s
# on a shared machine.
@pytest.mark.timeout(360)
async def test_schemathesis_finds_nothing(fuzz_stack: Stack, tmp_path: Path) -> None:
    order = await Journey.place(fuzz_stack, note="call me first")
    await order.waiting_for("operator_confirmation")
    username = f"olena{uuid.uuid4().hex[:6]}"
    created = await fuzz_stack.api.post(
        "/v1/admin/accounts",
        json={"username": username, "password": "correct horse battery", "role": "support"},
    )
    assert created.status_code == 201, created.text
    base = str(fuzz_stack.api.base_url).rstrip("/")
    env = {
        **os.environ,
        "ORDERFLOW_FUZZ_ORDER_ID": order.order_id,
        "ORDERFLOW_FUZZ_USERNAME": username,
    }
    argv = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: {fuzz_stack.api.headers['Authorization']}",
        "--checks",
        "all",
        "--no-color",
        # A longer hunt than make test's: ORDERFLOW_FUZZ_EXAMPLES=200 .venv/bin/pytest ...
        *(["--max-examples", n] if (n := os.environ.get("ORDERFLOW_FUZZ_EXAMPLES")) else []),
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    started = time.monotonic()
    run = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - started
    summary = run.stdout[run.stdout.find("=== SUMMARY") :]
    print(f"schemathesis: {seconds:.0f} s\n{summary}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    # It ran, over every operation of the OpenAPI.
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    tested = re.search(r"Tested: (\d+)", summary)
    assert selected and tested, summary
    assert selected.group(1) == selected.group(2) == tested.group(1), summary
