"""`make dev`: the whole stack in one command, healthy, stopped cleanly, and restarted with its data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.mailsink import read_maildir
from tests.support import free_port, sample_order

ROOT = Path(__file__).resolve().parents[1]
TEMPORAL = Path(sys.executable).parent / "temporal"


class DevStack:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.ports = {name: free_port() for name in ("temporal", "ui", "smtp", "api", "metrics")}
        self.env = {
            **os.environ,
            "ORDERFLOW_DATA_DIR": str(data),
            "ORDERFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "ORDERFLOW_TEMPORAL_UI_PORT": str(self.ports["ui"]),
            "ORDERFLOW_SMTP_PORT": str(self.ports["smtp"]),
            "ORDERFLOW_API_PORT": str(self.ports["api"]),
            "ORDERFLOW_WORKER_METRICS_PORT": str(self.ports["metrics"]),
        }
        self.env.pop("ORDERFLOW_DATABASE_URL", None)
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start `python -m devstack`; seconds until /healthz answers 200."""
        started = time.monotonic()
        log = (self.data.parent / "devstack.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        while time.monotonic() - started < 90:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not healthy in 90 s:\n{self.output()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def output(self) -> str:
        return (self.data.parent / "devstack.log").read_text(errors="replace")[-5000:]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path / "data")
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stack.proc.kill()
        stack.proc.wait()


def test_make_dev_runs_stops_cleanly_and_keeps_orders(devstack: DevStack) -> None:
    devstack.start()
    order = sample_order()
    accepted = httpx.post(f"{devstack.api}/v1/orders", json=order, timeout=10)
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]

    deadline = time.monotonic() + 15
    while not list((devstack.data / "mail" / "new").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    mail = read_maildir(devstack.data / "mail")
    assert len(mail) == 1
    assert order["number"] in str(mail[0]["Subject"])
    assert order["customer"]["email"] in str(mail[0]["To"])

    def cli_status() -> dict[str, object]:
        query = subprocess.run(
            [str(TEMPORAL), "workflow", "query", "--address", devstack.env["ORDERFLOW_TEMPORAL_ADDRESS"],
             "--workflow-id", f"order-{order_id}", "--type", "status", "--output", "json"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return dict(json.loads(query.stdout)["queryResult"][0])

    deadline = time.monotonic() + 15
    while (status := cli_status())["status"] != "processing" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status["stage"] == "confirmation"
    assert status["number"] == order["number"]

    assert devstack.proc is not None
    children = psutil.Process(devstack.proc.pid).children(recursive=True)
    assert len(children) >= 3  # Temporal, worker, API (Postgres runs as its own user)
    postgres = psutil.Process(int((devstack.data / "pg" / "postmaster.pid").read_text().split()[0]))

    assert devstack.stop() == 0
    time.sleep(0.5)
    alive = [p.pid for p in [*children, postgres] if _alive(p)]
    assert alive == [], f"orphans left behind: {alive}"

    restart_seconds = devstack.start()
    assert restart_seconds < 10, f"restart took {restart_seconds:.1f} s"
    again = httpx.get(f"{devstack.api}/v1/orders/{order_id}", timeout=10)
    assert again.status_code == 200
    assert again.json()["stage"] == "confirmation"
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
