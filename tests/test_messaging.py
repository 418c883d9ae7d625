"""Messaging through the real providers' shapes, on a stack of its own whose text messages go
through TurboSMS's simulator and whose e-mail events come from Mailgun's (real Temporal,
Postgres, the SMTP sink, HTTP): Viber with its SMS fallback, the stop list, delivery
statuses; a hard bounce that moves the order's next message to the phone, a complaint that
stops the feedback request by e-mail, and forged or replayed events that change nothing."""

from __future__ import annotations

import copy
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.simulators.mailgun import Report, mailgun_event
from schema.api.fields import Role
from schema.database import open_session
from schema.mailgun import signature
from schema.tables import EmailSuppression, Notification, Order
from settings import Settings
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import eventually, mail_to
from tests.test_sign_in import Console, _account


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
            "email_provider": "mailgun",
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


async def _report(stack: Stack, kind: str, message: Notification, to: str) -> dict[str, Any]:
    """Mailgun's simulator reports on one of our e-mails; what it sent and was answered."""
    response = await stack.sim.post(
        "/mailgun/sim/events",
        json={"kind": kind, "message_id": message.provider_message_id, "recipient": to},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def _suppression(stack: Stack, order: Journey) -> EmailSuppression | None:
    async with open_session(stack.engine) as session:
        placed = await session.get(Order, uuid.UUID(order.order_id))
        assert placed is not None
        return await session.get(EmailSuppression, placed.customer_id)


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
    # Two attempts on one outbox row; the first, its answer lost, put the row back to
    # `pending` (a failure seen is no resend: that is an attempt that died while `sending`).
    assert (row.attempts, row.resends) == (2, 0)
    # The retry carried the same sequence_id: TurboSMS answered with the first message (507).
    first, again, *_ = await _requests(stack, phone)
    assert first["sequence_id"] == again["sequence_id"] == text["sequence_id"]
    assert (first["answer"], again["answer"]) == (800, 507)


# --- Mailgun: hard bounces and complaints --------------------------------------------------


async def test_a_hard_bounce_sends_the_orders_next_message_by_phone_and_no_email(
    stack: Stack,
) -> None:
    phone = _phone()
    order = await _place(stack, phone, ["email"])
    email = order.body["customer"]["email"]
    confirmation = await _sent(order, "confirmation", "email")
    await _sent(order, "picking", "email")

    report = await _report(stack, "bounce", confirmation, email)
    assert report["answer"] == {"outcome": "recorded"}
    suppression = await _suppression(stack, order)
    assert suppression is not None and suppression.bounced_at is not None

    await order.waiting_for("packing")
    await order.pack()
    packed = await _sent(order, "packed", "viber")  # the phone took e-mail's place
    [text] = [
        t for t in await _texts(stack, phone) if t["message_id"] == packed.provider_message_id
    ]
    assert "зібрано" in text["viber"]["text"] and "зібрано" in text["sms"]["text"]
    assert await _row(order, "packed", "email") is None
    assert len(order.mailbox()) == 2  # the confirmation and the picking notice, nothing after
    detail = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    [told] = [n for n in detail["notifications"] if n["kind"] == "confirmation"]
    assert (told["channel"], told["status"], told["delivery"]) == ("email", "sent", "bounced")
    console = Console(stack)  # support sees it on the order's page
    assert (await console.sign_in(await _account(stack, Role.SUPPORT))).status_code == 303
    page = (await console.http.get(f"/console/orders/{order.order_id}")).text
    assert re.search(r"<td>confirmation</td><td>email</td>.*?<td>sent</td><td>bounced</td>", page)
    assert re.search(r"<td>packed</td><td>viber</td>", page)

    # The address is dead for every order: the customer's next one is confirmed by phone.
    again = await Journey.place(stack, customer=order.body["customer"], payment={"method": "cod"})
    await _sent(again, "confirmation", "viber")
    assert len(order.mailbox()) == 2


async def test_a_complaint_stops_the_feedback_request_by_email_and_nothing_else(
    stack: Stack,
) -> None:
    phone = _phone()
    order = await _place(stack, phone, ["email"])
    email = order.body["customer"]["email"]
    confirmation = await _sent(order, "confirmation", "email")

    report = await _report(stack, "complaint", confirmation, email)
    assert report["answer"] == {"outcome": "recorded"}

    await order.to_delivery()
    await order.reached("feedback.none")  # asked, reminded, never answered
    subjects = order.mailbox()
    assert any("отримано" in subject for subject in subjects)  # "delivered": it tells
    assert not any("відгук" in s or "Як вам" in s for s in subjects)  # the asking did not go
    for kind in ("feedback_request", "feedback_reminder"):
        row = await _row(order, kind, "email")
        assert row is not None and row.status == "suppressed"
        assert "spam" in (row.last_error or "")
    assert await _texts(stack, phone) == []  # nor by phone: the customer chose e-mail


async def test_forged_stale_replayed_or_foreign_events_change_nothing(stack: Stack) -> None:
    order = await _place(stack, _phone(), ["email"])
    email = order.body["customer"]["email"]
    confirmation = await _sent(order, "confirmation", "email")
    key = stack.settings.mailgun_webhook_signing_key

    async def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await stack.api.post("/v1/webhooks/mailgun", json=body)
        return response.status_code, response.json()

    def event(kind: str, signing_key: str = key, **changes: str) -> dict[str, Any]:
        fields = {"message_id": confirmation.provider_message_id or "", "recipient": email}
        return mailgun_event(signing_key, Report(kind=kind, **{**fields, **changes}))  # type: ignore[arg-type]

    # A genuine delivery report, then the same again: recorded once.
    report = await _report(stack, "delivery", confirmation, email)
    assert report["answer"] == {"outcome": "recorded"}
    delivered = report["sent"]
    assert await post(delivered) == (200, {"outcome": "duplicate"})
    # Mailgun signs only the timestamp and the token: its signature on a bounce is spent.
    reused = copy.deepcopy(delivered)
    reused["event-data"].update(event="failed", severity="permanent")
    assert await post(reused) == (200, {"outcome": "duplicate"})

    assert (await post(event("bounce", signing_key="not-the-signing-key")))[0] == 401
    stale = event("bounce")
    old, token = str(int(time.time()) - 10 * 3600), stale["signature"]["token"]
    stale["signature"].update(timestamp=old, signature=signature(key, old, token))
    status, answer = await post(stale)
    assert (status, "tolerance" in answer["detail"]) == (401, True)
    status, answer = await post(event("bounce", message_id="<someone-else@example.com>"))
    assert status == 406 and "Message-ID" in answer["detail"]
    status, answer = await post(event("bounce", recipient="olena@example.com"))
    assert status == 406 and "recipient" in answer["detail"]
    unsigned = {k: v for k, v in event("bounce").items() if k != "signature"}
    status, answer = await post(unsigned)
    assert status == 422 and "signature" in answer["detail"]

    assert await _suppression(stack, order) is None
    detail = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    [told] = [n for n in detail["notifications"] if n["kind"] == "confirmation"]
    assert told["delivery"] == "delivered"
    await _sent(order, "picking", "email")  # the next message still goes by e-mail


async def test_erasure_forgets_what_the_esp_said_of_the_address(stack: Stack) -> None:
    order = await _place(stack, _phone(), ["email"])
    email = order.body["customer"]["email"]
    confirmation = await _sent(order, "confirmation", "email")
    await _report(stack, "complaint", confirmation, email)
    assert await _suppression(stack, order) is not None

    erased = await stack.api.post("/v1/admin/erasures", json={"email": email})
    assert erased.status_code == 200, erased.text
    assert await _suppression(stack, order) is None
    # Mailgun reporting on that e-mail later marks nothing again: nobody is there any more.
    late = await _report(stack, "bounce", confirmation, email)
    assert late["status"] == 406
    assert await _suppression(stack, order) is None
