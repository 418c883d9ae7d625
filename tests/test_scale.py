"""N workers and N API processes on one Temporal cluster: two of each on one dev server,
one worker killed mid-load; every order still finishes, and the SMS gateway never sees more
than its rate in any second, although both workers send (their limit is one, in Postgres).

Orders are posted to both API processes in turn; the customers want SMS, so every message
of every order goes through the rate-limited gateway."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from devstack.harness import free_port
from devstack.mailsink import MailSink
from schema.database import open_session
from schema.tables import Order
from settings import Settings
from tests.stack import Stack, run_stack, spawn_api, spawn_worker
from tests.support import eventually, sample_order

ORDERS = 12
SMS_PER_SECOND = 4


@pytest.fixture
async def two_of_each(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    settings = base_settings.model_copy(
        update={
            "simulator_autopilot": True,
            "simulator_step_seconds": 0.3,
            "sms_rate_per_second": SMS_PER_SECOND,
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=3),
            "policy_feedback_reminder": timedelta(seconds=2),
            "policy_feedback_wait": timedelta(seconds=4),
            "policy_quiet_from_hour": 24,  # no night: the feedback request goes at once
            "policy_quiet_until_hour": 0,
        }
    )
    async with run_stack(
        temporal_env, settings, engine, mail_sink.maildir, worker_in_process=False
    ) as stack:
        yield stack


async def _api(stack: Stack, process: subprocess.Popen[bytes], port: int) -> httpx.AsyncClient:
    """The API process on `port`, as the admin, once its readiness check answers 200."""
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=stack.api.headers, timeout=30
    )

    async def ready() -> bool:
        assert process.poll() is None, "an API process died"
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, timeout=60, what=f"the API process on port {port} ready")
    return http


def _most_in_one_second(times: list[float]) -> int:
    """The most requests in any window of one second (each window starting at a request)."""
    times = sorted(times)
    return max(
        (sum(1 for t in times[n:] if t - start < 1.0) for n, start in enumerate(times)), default=0
    )


@pytest.mark.timeout(300)
async def test_two_workers_and_two_apis_share_the_load_and_the_provider_limit(
    two_of_each: Stack,
) -> None:
    ports = [free_port(), free_port()]
    # Providers call back the first API process; the shop posts to both.
    settings = two_of_each.settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{ports[0]}"}
    )
    processes = [spawn_worker(settings), spawn_worker(settings)]
    processes += [spawn_api(settings, port) for port in ports]
    apis: list[httpx.AsyncClient] = []
    try:
        apis = [
            await _api(two_of_each, process, port)
            for process, port in zip(processes[2:], ports, strict=True)
        ]
        before = len((await two_of_each.sim.get("/sms/sim/attempts")).json()["at"])
        placed = []
        for n in range(ORDERS):
            customer = {
                "name": "Iryna Koval",
                "email": f"scale.{uuid.uuid4().hex[:8]}@example.com",
                "phone": "+380501234567",
                "channels": ["sms"],
            }
            response = await apis[n % 2].post(
                "/v1/orders", json=sample_order(customer=customer, payment={"method": "cod"})
            )
            assert response.status_code == 202, response.text
            placed.append(uuid.UUID(response.json()["order_id"]))
        await asyncio.sleep(3)  # both workers busy: then one dies mid-load
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait()

        async def all_completed() -> bool:
            async with open_session(two_of_each.engine) as session:
                stages = (
                    await session.exec(select(Order.stage).where(col(Order.id).in_(placed)))
                ).all()
            return len(stages) == ORDERS and set(stages) == {"completed"}

        await eventually(all_completed, timeout=240, what="every order completed")
    finally:
        for http in apis:
            await http.aclose()
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)

    requests = (await two_of_each.sim.get("/sms/sim/attempts")).json()["at"][before:]
    messages = (await two_of_each.sim.get("/sms/v1/messages")).json()
    ours = {str(order_id) for order_id in placed}
    sent = [m for m in messages if m["key"].split(":")[0] in ours]
    assert len(sent) >= ORDERS * 6  # confirmation, picking, packed, shipped, ..., delivered
    most = _most_in_one_second(requests)
    print(f"\n{len(requests)} SMS requests, at most {most} in one second (limit {SMS_PER_SECOND})")
    assert most <= SMS_PER_SECOND
