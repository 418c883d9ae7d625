"""Workers SIGKILLed again and again under load: every order still finishes, nothing a
provider takes an idempotency key for happens twice (SMS, push, payment links, bookings),
and e-mail — at least once — is duplicated no more often than the outbox counts.

The stack runs with the simulators on autopilot (payments, packing and delivery happen on
their own) and a feedback window of seconds, so that each order runs to its end here."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink, read_maildir
from schema.database import open_session
from schema.tables import Notification
from settings import Settings
from tests.stack import Stack, every_order_completed, spawn_worker, stack_to_the_end
from tests.support import sample_order

ORDERS = 18
KILLS = 5


@pytest.fixture
async def crash_stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with stack_to_the_end(temporal_env, base_settings, engine, mail_sink.maildir) as stack:
        yield stack


def _customer(n: int) -> dict[str, object]:
    channel = ("email", "sms", "push")[n % 3]
    customer: dict[str, object] = {
        "name": "Iryna Koval",
        "email": f"crash.{uuid.uuid4().hex[:8]}@example.com",
        "phone": "+380501234567",
        "channels": [channel],
    }
    if channel == "push":
        customer["push_token"] = f"device-{uuid.uuid4().hex[:8]}"
    return customer


async def _kill_repeatedly(stack: Stack, workers: list[subprocess.Popen[bytes]]) -> None:
    for _ in range(KILLS):
        await asyncio.sleep(2.5)
        workers[-1].send_signal(signal.SIGKILL)  # no graceful shutdown: a crash
        workers[-1].wait()
        workers.append(spawn_worker(stack.settings))


@pytest.mark.timeout(300)
async def test_killed_workers_finish_every_order_without_duplicates(crash_stack: Stack) -> None:
    stack = crash_stack
    workers = [spawn_worker(stack.settings)]
    try:
        placed = []
        for n in range(ORDERS):
            body = sample_order(customer=_customer(n), payment={"method": "prepaid"})
            response = await stack.api.post("/v1/orders", json=body)
            assert response.status_code == 202, response.text
            placed.append(uuid.UUID(response.json()["order_id"]))
        await _kill_repeatedly(stack, workers)

        await every_order_completed(stack, placed)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=15)

    async with open_session(stack.engine) as session:
        outbox = (
            await session.exec(select(Notification).where(col(Notification.order_id).in_(placed)))
        ).all()
    assert outbox and all(row.status == "sent" for row in outbox)
    refs = {str(order_id) for order_id in placed}

    # SMS and push: the gateways take the key, so each message exists once.
    for gateway in ("sms", "push"):
        messages = (await stack.sim.get(f"/{gateway}/v1/messages")).json()
        keys = Counter(m["key"] for m in messages if m["key"].split(":")[0] in refs)
        expected = {row.idempotency_key for row in outbox if row.channel == gateway}
        assert set(keys) == expected and set(keys.values()) == {1}, gateway

    # Payment links and shipment bookings: one per order, whatever the retries.
    payments = (await stack.sim.get("/sim/payments")).json()
    shipments = (await stack.sim.get("/sim/shipments")).json()
    assert Counter(p["order_ref"] for p in payments if p["order_ref"] in refs) == Counter(refs)
    assert Counter(s["order_ref"] for s in shipments if s["order_ref"] in refs) == Counter(refs)
    assert all(p["refunded"] == "0.00" for p in payments if p["order_ref"] in refs)

    # E-mail: at least once; a duplicate only where the outbox counted a resend.
    ids = Counter(
        str(m["Message-ID"])
        for m in read_maildir(stack.maildir)
        if str(m["To"]).split("<")[-1].rstrip(">").startswith("crash.")
    )
    email_rows = [row for row in outbox if row.channel == "email"]
    assert len(ids) == len(email_rows)  # every e-mail arrived
    duplicates = sum(count - 1 for count in ids.values())
    assert duplicates <= sum(row.resends for row in email_rows)
    print(
        f"\n{ORDERS} orders, {KILLS} worker kills: {len(outbox)} messages, "
        f"{duplicates} e-mail duplicates, {sum(r.resends for r in outbox)} resends counted"
    )
