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

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.harness import free_port
from devstack.mailsink import MailSink
from settings import Settings
from tests.stack import Stack, every_order_completed, spawn_api, spawn_worker, stack_to_the_end
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
    # The gateway in a process of its own, as a provider is: it stamps each request when it
    # arrives, not when this test process's event loop gets round to it.
    async with stack_to_the_end(
        temporal_env,
        base_settings,
        engine,
        mail_sink.maildir,
        simulators_in_process=False,
        sms_rate_per_second=SMS_PER_SECOND,
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

        await every_order_completed(two_of_each, placed)
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
