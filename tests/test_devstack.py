"""`make dev`: the whole stack in one command, healthy, stopped cleanly, and restarted with its data."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.harness import DevStack
from devstack.mailsink import read_maildir
from tests.support import sample_order

ROOT = Path(__file__).resolve().parents[1]
TEMPORAL = Path(sys.executable).parent / "temporal"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path / "data")
    yield stack
    stack.kill()


def test_make_dev_runs_stops_cleanly_and_keeps_orders(devstack: DevStack) -> None:
    devstack.start()
    order = sample_order()
    assert httpx.post(f"{devstack.api}/v1/orders", json=order, timeout=10).status_code == 401
    accepted = httpx.post(
        f"{devstack.api}/v1/orders", json=order, headers=devstack.auth, timeout=10
    )
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]

    deadline = time.monotonic() + 15
    while not list((devstack.data / "mail" / "new").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    mail = read_maildir(devstack.data / "mail")
    assert order["number"] in str(mail[0]["Subject"])
    assert order["customer"]["email"] in str(mail[0]["To"])

    def cli_status() -> dict[str, object]:
        query = subprocess.run(
            [str(TEMPORAL), "workflow", "query", "--address", devstack.env["ORDERFLOW_TEMPORAL_ADDRESS"],
             "--workflow-id", f"order-{order_id}", "--type", "status", "--output", "json"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return dict(json.loads(query.stdout)["queryResult"][0])

    def timeline() -> list[str]:
        return [str(entry["type"]) for entry in cli_status()["timeline"]]  # type: ignore[attr-defined]

    deadline = time.monotonic() + 30
    while "order.delivered" not in timeline() and time.monotonic() < deadline:
        time.sleep(0.3)  # autopilot: the simulators pay, pack, ship and deliver on their own
    status = cli_status()
    assert status["number"] == order["number"]
    assert status["status"] == "delivered", timeline()

    worker_metrics = httpx.get(f"http://127.0.0.1:{devstack.ports['metrics']}/metrics").text
    assert "temporal_activity_execution_latency" in worker_metrics
    assert 'workflow_type="OrderWorkflow"' in worker_metrics
    api_metrics = httpx.get(f"http://127.0.0.1:{devstack.ports['api_metrics']}/metrics").text
    assert 'handler="/v1/orders"' in api_metrics
    assert httpx.get(f"{devstack.api}/metrics").status_code == 404  # never on the public port

    # The CLI finds `make dev` on its own: the API port and .data/dev-api-key.
    listed = subprocess.run(
        [sys.executable, "-m", "starter.cli", "list", order["number"], "--json"],
        cwd=ROOT, env=devstack.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [row["order_id"] for row in json.loads(listed.stdout)] == [order_id]

    assert devstack.proc is not None
    children = psutil.Process(devstack.proc.pid).children(recursive=True)
    assert len(children) >= 4  # Temporal, simulators, worker, API (Postgres runs as its own user)
    postgres = psutil.Process(int((devstack.data / "pg" / "postmaster.pid").read_text().split()[0]))

    assert devstack.stop() == 0
    time.sleep(0.5)
    alive = [p.pid for p in [*children, postgres] if _alive(p)]
    assert alive == [], f"orphans left behind: {alive}"

    devstack.start()  # healthy again (how fast is for `make bench`, not a test)
    again = httpx.get(
        f"{devstack.api}/v1/orders/{order_id}?live=true", headers=devstack.auth, timeout=10
    )
    assert again.status_code == 200
    assert again.json()["stage"] == "feedback"  # waiting 24-48 h to ask, across the restart
    assert again.json()["workflow"]["number"] == order["number"]
    assert devstack.stop() == 0


def test_make_dev_names_a_taken_port(devstack: DevStack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", devstack.ports["api"]))
        squatter.listen()
        devstack.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=ROOT,
            env=devstack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = devstack.proc.communicate(timeout=30)
    assert devstack.proc.returncode == 1
    message = output.decode()
    assert f"port {devstack.ports['api']}" in message
    assert "ORDERFLOW_API_PORT" in message
