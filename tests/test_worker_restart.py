"""A worker killed mid-run loses nothing: the order resumes on a new worker and is confirmed once."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.client import Client

from devstack.harness import free_port
from devstack.mailsink import MailSink
from schema.api.orders import OrderCreate
from schema.contracts import Stage
from schema.database import open_session
from schema.tables import Notification, OrderEvent
from settings import Settings
from starter.services.orders import record_order
from starter.services.temporal import OrderWorkflows
from tests.stack import spawn_worker
from tests.support import eventually, mail_to, sample_order, until_status, wait_for_mail


async def test_worker_killed_mid_run_loses_nothing(
    client: Client, settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    # Its own task queue and a mail server that is down for now: the order stalls at confirmation.
    settings = settings.model_copy(
        update={"temporal_task_queue": f"restart-{uuid.uuid4().hex[:8]}", "smtp_port": free_port()}
    )
    body = OrderCreate.model_validate(sample_order())
    async with open_session(engine) as session:
        order, _ = await record_order(session, body=body)
    await OrderWorkflows(settings, client).start(order_id=order.id, number=order.number)
    first = spawn_worker(settings)
    try:

        async def mail_attempt_failed() -> Notification | None:
            async with open_session(engine) as session:
                query = select(Notification).where(Notification.order_id == order.id)
                row = (await session.exec(query)).first()
            return row if row is not None and row.last_error else None

        stalled = await eventually(mail_attempt_failed, 30, "a failed mail attempt")
        assert stalled.status == "pending"
    finally:
        first.send_signal(signal.SIGKILL)  # no graceful shutdown: a crash
        first.wait()

    with MailSink(tmp_path / "mail", settings.smtp_port) as sink:
        second = spawn_worker(settings)
        try:
            status = await until_status(
                client,
                str(order.id),
                lambda s: s.stage == Stage.STOCK or s.status == "processing",
                30,
            )
            messages = await wait_for_mail(sink.maildir, body.customer.email)
        finally:
            second.terminate()
            second.wait(timeout=15)

    assert status.status == "processing"
    assert len(messages) == 1
    assert len(mail_to(sink.maildir, body.customer.email)) == 1
    async with open_session(engine) as session:
        events = (
            await session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id))
        ).all()
        note = (
            await session.exec(select(Notification).where(Notification.order_id == order.id))
        ).one()
    assert [e.type for e in sorted(events, key=lambda e: e.key)][:5] == [
        "order.received",
        "order.validation_started",
        "order.validated",
        "order.confirmation_started",
        "order.confirmed",
    ]
    assert note.status == "sent"
    assert note.attempts >= 2  # failed while the mail server was down, then sent once
