"""`make dev`: the whole orderflow stack on embedded defaults, in one foreground command.

Temporal dev server (SQLite file in .data/), PostgreSQL (.data/pg), an SMTP sink
(.data/mail, Maildir), then the worker and the API. Ctrl-C or SIGTERM stops all of
it; the next start reuses .data/ and in-flight orders continue.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx
import structlog

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from runtime import configure_logging
from schema.database import make_engine, open_session, upgrade_database
from settings import ROOT, Settings, get_settings
from starter.services.access import Role, issue_api_key, principal_for
from workflows.search import SEARCH_ATTRIBUTES

log = structlog.get_logger("devstack")

BIN = Path(sys.executable).parent


class StackError(Exception):
    pass


def _die_with_parent() -> None:
    """Children get SIGTERM if the devstack itself is killed: no orphans."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def developer_admin_key(database_url: str, existing: str | None) -> str:
    """The developer's admin API key: the one `make dev` wrote before if still valid, else a new one."""
    engine = make_engine(database_url)
    try:
        async with open_session(engine) as session:
            if existing and await principal_for(session, existing, None):
                return existing
            return await issue_api_key(session, name="dev-admin", role=Role.ADMIN)
    finally:
        await engine.dispose()


def search_attribute_flags() -> list[str]:
    """`--search-attribute OrderStage=Keyword ...` for the dev server, from the workflow's keys."""
    flags = []
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_").title()
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def check_ports(settings: Settings) -> None:
    temporal_port = settings.temporal_address.rpartition(":")[2]
    wanted = [
        ("Temporal", int(temporal_port), "ORDERFLOW_TEMPORAL_ADDRESS"),
        ("Temporal Web UI", settings.temporal_ui_port, "ORDERFLOW_TEMPORAL_UI_PORT"),
        ("SMTP sink", settings.smtp_port, "ORDERFLOW_SMTP_PORT"),
        ("API", settings.api_port, "ORDERFLOW_API_PORT"),
        ("provider simulators", settings.simulator_port, "ORDERFLOW_SIMULATOR_PORT"),
        ("worker metrics", settings.worker_metrics_port, "ORDERFLOW_WORKER_METRICS_PORT"),
        ("API metrics", settings.api_metrics_port, "ORDERFLOW_API_METRICS_PORT"),
    ]
    for name, port, env in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR: sockets in TIME_WAIT from a previous run are not "taken".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise StackError(
                    f"port {port} for the {name} is taken by another process; "
                    f"stop it or choose another port with {env}"
                ) from None


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.postgres: EmbeddedPostgres | None = None
        self.mail: MailSink | None = None

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        self.processes.append((name, proc))
        return proc

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll `ready` until it holds; fail at once if any child process has died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if ready():
                    return
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        raise StackError(f"{what} did not become ready within {timeout:.0f} s")

    def check_children(self) -> None:
        for name, proc in self.processes:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with code {proc.returncode}; see its output above")

    def start(self) -> None:
        s = self.settings
        data = s.data_dir
        data.mkdir(parents=True, exist_ok=True)
        check_ports(s)
        started = time.monotonic()

        temporal_port = int(s.temporal_address.rpartition(":")[2])
        self.spawn(
            "temporal",
            [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(temporal_port),
                "--ui-port",
                str(s.temporal_ui_port),
                "--db-filename",
                str(data / "temporal.db"),
                "--namespace",
                s.temporal_namespace,
                "--log-level",
                "error",
                *search_attribute_flags(),
            ],
            dict(os.environ),
        )

        self.postgres = EmbeddedPostgres(data / "pg")
        upgrade_database(self.postgres.url)
        log.info("postgres ready", url=self.postgres.url)
        key_file = data / "dev-api-key"
        existing = key_file.read_text().strip() if key_file.exists() else None
        key = asyncio.run(developer_admin_key(self.postgres.url, existing))
        if key != existing:
            key_file.write_text(key + "\n")
            key_file.chmod(0o600)

        self.mail = MailSink(data / "mail", s.smtp_port).start()
        log.info("mail sink ready", port=s.smtp_port, maildir=str(data / "mail"))

        self.wait_for("Temporal dev server", lambda: port_open(temporal_port), 60)
        log.info("temporal ready", address=s.temporal_address)

        # Autopilot unless told otherwise: orders flow end to end on their own in `make dev`.
        # ORDERFLOW_DEVSTACK: the API and worker accept the devstack's well-known secrets.
        # A unique bonus code per answered order, unless told otherwise: the feedback
        # request promises it and the thank-you page shows it. Payments through LiqPay's
        # simulator (its real API's shapes), parcels with Nova Poshta (its simulator, speaking
        # API 2.0, asked about every 2 s), text messages through TurboSMS's and e-mail events
        # from Mailgun's, unless told otherwise (ORDERFLOW_PAYMENT_PROVIDER=sim,
        # ORDERFLOW_CARRIER=sim, ORDERFLOW_SMS_PROVIDER=sim: the invented providers).
        env = {
            "ORDERFLOW_SIMULATOR_AUTOPILOT": "true",
            "ORDERFLOW_PAYMENT_PROVIDER": "liqpay",
            "ORDERFLOW_FEEDBACK_BONUS": "unique",
            "ORDERFLOW_CARRIER": "novaposhta",
            "ORDERFLOW_CARRIER_POLL_INTERVAL": "PT2S",
            "ORDERFLOW_SMS_PROVIDER": "turbosms",
            "ORDERFLOW_EMAIL_PROVIDER": "mailgun",
            **os.environ,
            "ORDERFLOW_DATABASE_URL": self.postgres.url,
            "ORDERFLOW_DEVSTACK": "true",
        }
        self.spawn("simulators", [sys.executable, "-m", "devstack.simulators"], env)
        self.spawn("worker", [sys.executable, str(ROOT / "worker.py")], env)
        self.spawn("api", [sys.executable, "-m", "starter.api"], env)
        health = f"http://127.0.0.1:{s.api_port}/healthz"
        self.wait_for("API and worker", lambda: httpx.get(health, timeout=2).status_code == 200, 60)

        print(
            f"\norderflow is up in {time.monotonic() - started:.1f} s\n"
            f"  API          http://127.0.0.1:{s.api_port}   (docs: /docs, health: /healthz)\n"
            f'  Admin key    {key_file}  (curl -H "Authorization: Bearer $(cat {key_file})" ...)\n'
            f"  Temporal UI  http://127.0.0.1:{s.temporal_ui_port}\n"
            f"  Temporal     {s.temporal_address}  namespace {s.temporal_namespace}\n"
            f"  Mail         {data / 'mail'}  (SMTP 127.0.0.1:{s.smtp_port})\n"
            f"  Providers    http://127.0.0.1:{s.simulator_port}/docs  (simulators, autopilot "
            f"{'on' if env['ORDERFLOW_SIMULATOR_AUTOPILOT'] == 'true' else 'off'}; "
            f"parcels go with {env['ORDERFLOW_CARRIER']})\n"
            f"  Shop events  http://127.0.0.1:{s.simulator_port}/shop/events receives them "
            f"(subscribe it: README, the shop's events)\n"
            f"  Metrics      http://127.0.0.1:{s.worker_metrics_port}/metrics (worker), "
            f"http://127.0.0.1:{s.api_metrics_port}/metrics (API)\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )

    def wait(self) -> None:
        """Block until a signal arrives or a child dies."""
        while True:
            self.check_children()
            time.sleep(0.5)

    def stop(self) -> None:
        # Reverse order: API and worker first, Temporal last.
        for _name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("killing", process=name)
                proc.kill()
                proc.wait()
        if self.mail is not None:
            self.mail.stop()
        if self.postgres is not None:
            self.postgres.stop()
        log.info("stopped")


def main() -> int:
    configure_logging()
    stack = Stack(get_settings())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        stack.wait()
    except KeyboardInterrupt:
        log.info("stopping")
        return 0
    except StackError as exc:
        log.error(str(exc))
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
