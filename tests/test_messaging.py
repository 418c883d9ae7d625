"""Messaging through the real providers' shapes, on a stack of its own whose text messages go
through TurboSMS's simulator (real Temporal, Postgres, the SMTP sink, HTTP): Viber with its
SMS fallback, the stop list, an answer lost on its way back, delivery statuses."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from schema.tables import Notification
from settings import Settings
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import eventually, mail_to


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    settings = base_settings.model_copy(
        update={
            "sms_provider": "turbosms",
            "turbosms_status_poll_seconds": 0.2,
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=2),
            "policy_feedback_reminder": timedelta(seconds=2),
            "policy_feedback_wait": timedelta(seconds=4),
            "policy_quiet_from_hour": 24,  # no night: the feedback request goes at once
            "policy_quiet_until_hour": 0,
        }
    )
    async with run_stack(temporal_env, settings, engine, mail_sink.maildir) as stack:
        yield stack


def _phone() -> str:
    """A Ukrainian mobile number of this test's own (the simulator's lists are per number)."""
    return f"+38050{random.randrange(10**6, 10**7)}"


async def _place(stack: Stack, phone: str, channels: list[str]) -> Journey:
    tag = uuid.uuid4().hex[:8]
    customer = {
        "name": "Iryna Koval",
        "email": f"iryna.{tag}@example.com",
        "phone": phone,
        "locale": "uk",
        "channels": channels,
    }
    return await Journey.place(stack, customer=customer, payment={"method": "cod"})


async def _texts(stack: Stack, phone: str) -> list[dict[str, Any]]:
    """What TurboSMS sent to the phone, oldest first."""
    sent = (await stack.sim.get("/turbosms/sim/messages")).json()
    return [message for message in sent if message["phone"] == phone.removeprefix("+")]


async def _row(order: Journey, kind: str, channel: str) -> Notification | None:
    rows = [n for n in await order.outbox() if (n.kind, n.channel) == (kind, channel)]
    return rows[0] if rows else None


async def _sent(order: Journey, kind: str, channel: str) -> Notification:
    async def sent() -> Notification | None:
        row = await _row(order, kind, channel)
        return row if row is not None and row.status == "sent" else None

    return await eventually(sent, what=f"{kind} sent by {channel}")


# --- TurboSMS: Viber first, the SMS as its fallback ---------------------------------------


async def test_viber_goes_first_and_the_sms_that_reached_the_phone_is_recorded(
    stack: Stack,
) -> None:
    without_viber, with_viber = _phone(), _phone()
    await stack.sim.post("/turbosms/sim/without-viber", json={"phone": without_viber})
    fallen_back = await _place(stack, without_viber, ["viber"])
    on_viber = await _place(stack, with_viber, ["viber"])

    for order, phone, via in ((fallen_back, without_viber, "sms"), (on_viber, with_viber, "viber")):
        row = await _sent(order, "confirmation", "viber")
        [text, *_] = await eventually(lambda p=phone: _texts(stack, p), what="a text")
        # One request: the Viber message and its SMS, the same words, the order's number.
        assert text["viber"]["text"] == text["sms"]["text"]
        assert order.body["number"] in text["viber"]["text"]
        assert text["message_id"] == row.provider_message_id
        assert mail_to(stack.maildir, order.body["customer"]["email"]) == []  # not by e-mail

        async def reported(order: Journey = order) -> dict[str, Any] | None:
            detail = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
            [told] = [n for n in detail["notifications"] if n["kind"] == "confirmation"]
            return told if told["delivery"] == "delivered" else None

        told = await eventually(reported, what="the delivery TurboSMS reported")
        assert (told["channel"], told["delivered_via"]) == ("viber", via)


async def _requests(stack: Stack, phone: str) -> list[dict[str, Any]]:
    """Every send.json request to the phone, and TurboSMS's answer."""
    every = (await stack.sim.get("/turbosms/sim/requests")).json()
    return [r for r in every if r["recipients"] == [phone.removeprefix("+")]]


async def test_a_stop_listed_number_is_not_retried_and_the_next_channel_takes_the_message(
    stack: Stack,
) -> None:
    phone = _phone()
    await stack.sim.post("/turbosms/sim/stoplist", json={"phone": phone})
    order = await _place(stack, phone, ["sms", "email"])

    await _sent(order, "confirmation", "email")
    await _sent(order, "picking", "email")
    for kind in ("confirmation", "picking"):
        sms = await _row(order, kind, "sms")
        assert sms is not None and sms.status == "undeliverable"
        assert "404 NOT_ALLOWED_NUMBER_STOPLIST" in (sms.last_error or "")
    # Asked once per message, refused, never asked again.
    asked = await _requests(stack, phone)
    assert [r["answer"] for r in asked] == [404, 404]
    assert len({r["sequence_id"] for r in asked}) == 2
    assert await _texts(stack, phone) == []


async def test_an_answer_lost_on_its_way_back_sends_no_second_message(stack: Stack) -> None:
    phone = _phone()
    await stack.sim.post("/turbosms/sim/lose-answers", json={"phone": phone})
    order = await _place(stack, phone, ["sms"])

    row = await _sent(order, "confirmation", "sms")
    [text] = [t for t in await _texts(stack, phone) if "підтверджено" in t["sms"]["text"]]
    assert text["message_id"] == row.provider_message_id
    # The retry carried the same sequence_id: TurboSMS answered with the first message (507).
    first, again, *_ = await _requests(stack, phone)
    assert first["sequence_id"] == again["sequence_id"] == text["sequence_id"]
    assert (first["answer"], again["answer"]) == (800, 507)
