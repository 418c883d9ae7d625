"""`make dev`: the whole stack in one command, healthy, stopped cleanly, and restarted with its data."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

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


class _Receiver(BaseHTTPRequestHandler):
    """The shop's backend: keeps each delivery's raw body and signature."""

    received: ClassVar[list[tuple[bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers.get("Orderflow-Signature", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _signed(secret: str, body: bytes, header: str) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["v1"])


def _mail_with(devstack: DevStack, address: str, pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in read_maildir(devstack.data / "mail"):
            if address in str(message["To"]):
                text = str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
                found = re.search(pattern, text)
                if found:
                    return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {address} with {pattern}")


def test_make_dev_shows_the_customer_their_order_and_tells_the_shop(devstack: DevStack) -> None:
    """As the issue is judged from outside: the confirmation's link opens the status page
    without credentials, the same link changed shows nothing, a "my orders" link arrives and
    lists the order, and a receiver subscribed for three events gets them, signed, with no
    personal data — for an autopilot order."""
    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        devstack.start()
        subscribed = httpx.post(
            f"{devstack.api}/v1/webhook-subscriptions",
            headers=devstack.auth,
            json={
                "url": f"http://127.0.0.1:{receiver.server_address[1]}/hooks",
                "events": ["order.confirmed", "order.shipped", "order.delivered"],
            },
            timeout=10,
        )
        assert subscribed.status_code == 201, subscribed.text
        secret = subscribed.json()["secret"]
        order = sample_order()
        customer = order["customer"]
        accepted = httpx.post(
            f"{devstack.api}/v1/orders", json=order, headers=devstack.auth, timeout=10
        )
        assert accepted.status_code == 202, accepted.text

        link = _mail_with(devstack, customer["email"], r"(http://\S+/order/\S+/m)\b")
        page = httpx.get(link, timeout=10)  # no credentials
        assert page.status_code == 200 and order["number"] in page.text
        tampered = link[:-10] + ("A" if link[-10] != "A" else "B") + link[-9:]
        refused = httpx.get(tampered, timeout=10)
        assert refused.status_code == 404 and order["number"] not in refused.text

        deadline = time.monotonic() + 60
        while len(_Receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.3)  # autopilot: paid, packed, shipped, delivered on their own
        events = [(json.loads(body), body, header) for body, header in _Receiver.received]
        assert [e["type"] for e, _, _ in events] == [
            "order.confirmed",
            "order.shipped",
            "order.delivered",
        ]
        for event, body, header in events:
            assert event["data"]["order_id"] == accepted.json()["order_id"]
            assert _signed(secret, body, header)
            for personal in (customer["name"], "Iryna", customer["email"], customer["phone"]):
                assert personal.encode() not in body

        asked = httpx.post(
            f"{devstack.api}/v1/customer-links", json={"email": customer["email"]}, timeout=10
        )
        assert asked.status_code == 202
        listing = _mail_with(devstack, customer["email"], r"(http://\S+/my-orders/\S+)")
        mine = httpx.get(listing, timeout=10)
        assert mine.status_code == 200 and order["number"] in mine.text
        for message in read_maildir(devstack.data / "mail"):  # nothing promised too early
            assert "бонус" not in str(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
        assert devstack.stop() == 0
    finally:
        receiver.shutdown()


def test_make_dev_texts_through_turbosms_and_hears_mailgun(devstack: DevStack) -> None:
    """`make dev` speaks the real providers' shapes: a Viber message (and its SMS) reaches
    TurboSMS's simulator, and Mailgun's simulator reports a bounce of the confirmation."""
    devstack.start()
    sim = f"http://127.0.0.1:{devstack.ports['sim']}"
    texted, mailed = sample_order(), sample_order()
    texted["customer"] = {**texted["customer"], "phone": "+380671234500", "channels": ["viber"]}
    for order in (texted, mailed):
        placed = httpx.post(f"{devstack.api}/v1/orders", json=order, headers=devstack.auth)
        assert placed.status_code == 202, placed.text

    deadline = time.monotonic() + 30
    texts: list[dict[str, object]] = []
    while not texts and time.monotonic() < deadline:
        sent = httpx.get(f"{sim}/turbosms/sim/messages", timeout=10).json()
        texts = [t for t in sent if texted["number"] in json.dumps(t, ensure_ascii=False)]
        time.sleep(0.3)
    assert texts and texts[0]["phone"] == "380671234500" and texts[0]["viber"]

    email = mailed["customer"]["email"]
    _mail_with(devstack, email, f"({re.escape(mailed['number'])})")
    message = next(m for m in read_maildir(devstack.data / "mail") if email in str(m["To"]))
    reported = httpx.post(
        f"{sim}/mailgun/sim/events",
        json={"kind": "bounce", "message_id": message["Message-ID"], "recipient": email},
        timeout=10,
    )
    assert reported.json()["answer"] == {"outcome": "recorded"}, reported.text
    assert devstack.stop() == 0


@pytest.mark.stack  # `make dev` itself, started twice by the test (no fixture marks it)
@pytest.mark.timeout(400)
def test_make_dev_stopped_mid_flight_strands_no_order(tmp_path: Path) -> None:
    """The issue's scenario: six orders posted, `make dev` stopped 4 s later and started again
    on the same `.data/`; the simulators pick up where they were (payment pages, pick tasks,
    waybills mid-route, from their snapshot) and every order is delivered."""
    with DevStack(tmp_path / "data", ORDERFLOW_SIMULATOR_STEP_SECONDS="1.5") as devstack:
        placed = []
        for _ in range(6):
            accepted = httpx.post(
                f"{devstack.api}/v1/orders", json=sample_order(), headers=devstack.auth, timeout=10
            )
            assert accepted.status_code == 202, accepted.text
            placed.append(accepted.json()["order_id"])
        time.sleep(4)
        assert devstack.stop() == 0
        assert (devstack.data / "simulators" / "state.json").exists()

        devstack.start()

        def statuses() -> dict[str, str]:
            return {
                order_id: httpx.get(
                    f"{devstack.api}/v1/orders/{order_id}",
                    headers=devstack.auth,
                    timeout=10,
                ).json()["status"]
                for order_id in placed
            }

        deadline = time.monotonic() + 240
        while set(statuses().values()) != {"delivered"} and time.monotonic() < deadline:
            time.sleep(1)
        assert set(statuses().values()) == {"delivered"}, statuses()
