"""Run `python -m devstack` in the background on free ports and a data dir of its own.

For the tests of `make dev` itself and for the benchmarks: the very stack a user runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevStack:
    """`with DevStack(dir) as stack:` — started, healthy, and stopped (killed if need be) at the end."""

    def __init__(self, data: Path, **env: str) -> None:
        self.data = data
        self.ports = {
            name: free_port()
            for name in ("temporal", "ui", "smtp", "api", "metrics", "api_metrics", "sim")
        }
        self.env = {
            **os.environ,
            "ORDERFLOW_DATA_DIR": str(data),
            "ORDERFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "ORDERFLOW_TEMPORAL_UI_PORT": str(self.ports["ui"]),
            "ORDERFLOW_SMTP_PORT": str(self.ports["smtp"]),
            "ORDERFLOW_API_PORT": str(self.ports["api"]),
            "ORDERFLOW_WORKER_METRICS_PORT": str(self.ports["metrics"]),
            "ORDERFLOW_API_METRICS_PORT": str(self.ports["api_metrics"]),
            "ORDERFLOW_SIMULATOR_PORT": str(self.ports["sim"]),
            "ORDERFLOW_SIMULATOR_STEP_SECONDS": "0.5",
        }
        self.env.pop("ORDERFLOW_DATABASE_URL", None)
        self.env.update(env)
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start `python -m devstack`; seconds until /healthz answers 200."""
        started = time.monotonic()
        self.data.parent.mkdir(parents=True, exist_ok=True)
        log = (self.data.parent / "devstack.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        while time.monotonic() - started < 90:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devstack exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.api}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"not healthy in 90 s:\n{self.output()}")

    @property
    def auth(self) -> dict[str, str]:
        """Headers with the admin key `make dev` wrote for the developer."""
        return {"Authorization": f"Bearer {(self.data / 'dev-api-key').read_text().strip()}"}

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C or a service manager would; the exit code."""
        if self.proc is None:
            raise RuntimeError("not started")
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self.kill()

    def output(self) -> str:
        return (self.data.parent / "devstack.log").read_text(errors="replace")[-5000:]
