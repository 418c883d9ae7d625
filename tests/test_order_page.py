"""The order page never hangs: it answers from the read model, and when the workflow's live
answer is asked for (`live=true`) but does not come within 2 s, the API and the console
answer all the same, saying why (a task queue no worker polls; Temporal down)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from devstack.harness import free_port
from schema.api.fields import Role
from settings import Settings
from starter.api.app import create_app
from tests.stack import Stack, serve
from tests.support import sample_order
from tests.test_sign_in import Console, _account


@asynccontextmanager
async def api_with(stack: Stack, **changes: object) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process over the same database, configured otherwise; as the admin."""
    port = free_port()
    settings: Settings = stack.settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}", **changes}
    )
    async with serve(create_app(settings), port) as http:
        http.headers.update(stack.api.headers)
        yield http


async def _timed_get(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await http.get(path)
    return response, time.perf_counter() - started


async def test_with_no_worker_on_its_queue_the_order_answers_from_the_read_model(
    dev_stack: Stack,
) -> None:
    frozen = f"no-worker-{uuid.uuid4().hex[:8]}"  # no worker polls it: the query goes unanswered
    async with api_with(dev_stack, temporal_task_queue=frozen) as api:
        accepted = await api.post("/v1/orders", json=sample_order())
        assert accepted.status_code == 202, accepted.text
        order_id = accepted.json()["order_id"]
        response, seconds = await _timed_get(api, f"/v1/orders/{order_id}?live=true")
        print(f"GET /v1/orders/{{id}}?live=true without a worker: {seconds:.2f} s")
        assert response.status_code == 200 and seconds < 3
        view = response.json()
        assert view["workflow"] is None
        assert view["workflow_unavailable"] == "no worker answered within 2 s"
        assert view["stage"] == "intake" and view["customer"]["name"] == "Iryna Koval"

        console = Console(dev_stack)
        console.base = str(api.base_url).rstrip("/")
        console.http = httpx.AsyncClient(base_url=console.base, timeout=30)
        console.origin = console.base
        assert (await console.sign_in(await _account(dev_stack, Role.OPERATOR))).status_code == 303
        page, seconds = await _timed_get(console.http, f"/console/orders/{order_id}?live=1")
        print(f"console order page without a worker: {seconds:.2f} s")
        assert page.status_code == 200 and seconds < 3
        assert 'id="workflow-unavailable"' in page.text and "no worker answered" in page.text


async def test_with_temporal_unreachable_the_order_answers_from_the_read_model(
    dev_stack: Stack,
) -> None:
    accepted = await dev_stack.api.post("/v1/orders", json=sample_order())
    order_id = accepted.json()["order_id"]
    async with api_with(dev_stack, temporal_address=f"127.0.0.1:{free_port()}") as api:
        response, seconds = await _timed_get(api, f"/v1/orders/{order_id}?live=true")
    print(f"GET /v1/orders/{{id}}?live=true with Temporal down: {seconds:.2f} s")
    assert response.status_code == 200 and seconds < 3
    assert response.json()["workflow"] is None
    assert response.json()["workflow_unavailable"]
    live = (await dev_stack.api.get(f"/v1/orders/{order_id}?live=true")).json()
    assert live["workflow"]["order_id"] == order_id and live["workflow_unavailable"] is None
    stored = (await dev_stack.api.get(f"/v1/orders/{order_id}")).json()
    assert stored["workflow"] is None and stored["workflow_unavailable"] is None
