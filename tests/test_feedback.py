"""The feedback form and the bonus, on a stack of their own whose feedback request goes out a
second after delivery (at any hour): rating, NPS, comment and per-line ratings from the HTML
form; answering again replaces the answer; the bonus by policy (none, fixed, unique), given
for any score, kept as promised, on the thank-you page, in the thank-you message and in the
shop's `feedback.received` event."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import Feedback, FeedbackBonus
from settings import Settings
from starter.api.limits import limiter
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import body_text, eventually, mail_to

LINES = [
    {"sku": "MUG-01", "name": "Чашка", "quantity": 2, "unit_price": "250.00"},
    {"sku": "TEA-02", "name": "Чай чорний", "quantity": 1, "unit_price": "120.00"},
]
BONUS = re.compile(r"бонус", re.IGNORECASE)


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    settings = base_settings.model_copy(
        update={
            "feedback_bonus": "unique",
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=2),
            "policy_quiet_from_hour": 24,  # no night
            "policy_quiet_until_hour": 0,
        }
    )
    async with run_stack(temporal_env, settings, engine, mail_sink.maildir) as stack:
        yield stack


@pytest.fixture
def policy(stack: Stack) -> Iterator[Settings]:
    """The policy the API and the worker read (one Settings object): set it in a test, it
    is put back after."""
    before = (stack.settings.feedback_bonus, stack.settings.feedback_bonus_code)
    yield stack.settings
    stack.settings.feedback_bonus, stack.settings.feedback_bonus_code = before


@pytest.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api.base_url, headers={"Origin": stack.settings.public_url}
    ) as client:
        yield client


async def _asked(stack: Stack) -> Journey:
    """An order delivered and asked for feedback (its request e-mail in the mailbox)."""
    order = await Journey.place(stack, payment={"method": "cod"}, lines=LINES)
    await order.to_delivery()
    await order.reached("feedback.requested")
    return order


def _mail(stack: Stack, order: Journey, subject: str) -> str:
    for message in mail_to(stack.maildir, order.body["customer"]["email"]):
        if subject in str(message["Subject"]):
            return body_text(message, "plain")
    return ""


async def _stored(stack: Stack, order: Journey) -> list[Feedback]:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(Feedback).where(Feedback.order_id == uuid.UUID(order.order_id))
        )
        return list(rows.all())


async def test_the_form_takes_rating_nps_comment_and_lines_and_a_second_answer_replaces_it(
    stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await _asked(stack)
    request = _mail(stack, order, "Як вам замовлення")
    assert BONUS.search(request), request  # the policy gives one: the request promises it
    token = await order.link_from_mail("feedback")
    form = await anonymous.get(f"/order/{token}/feedback")
    assert form.status_code == 200
    assert form.text.count('name="nps"') == 11 and form.text.count('name="rating"') == 5
    assert 'name="line_1"' in form.text and 'name="line_2"' in form.text
    assert "За відгук даруємо бонус" in form.text

    # A low score earns the bonus as a high one would.
    sent = await anonymous.post(
        f"/order/{token}/feedback",
        data={
            "rating": "2",
            "nps": "3",
            "comment": "Чашка з тріщиною",
            "line_1": "1",
            "line_2": "5",
        },
    )
    assert sent.status_code == 200, sent.text
    code = re.search(r'class="code">([A-Z0-9-]+)<', sent.text)
    assert code is not None and code.group(1).startswith("FB-")
    bonus = code.group(1)
    [stored] = await _stored(stack, order)
    assert (stored.rating, stored.nps, stored.comment) == (2, 3, "Чашка з тріщиною")
    assert stored.line_ratings == {"MUG-01": 1, "TEA-02": 5} and stored.updated_at is None

    async def thanked() -> str:
        return _mail(stack, order, "Дякуємо за відгук")

    thanks = await eventually(thanked, 20, what="the thank-you e-mail")
    assert bonus in thanks and "Статус замовлення" in thanks
    status = await order.reached("feedback.received")  # the workflow acts on the answer
    received = [e for e in status.timeline if e.type == "feedback.received"]
    assert received[0].detail["rating"] == "2"
    assert any("negative feedback" in i.summary for i in await order.incidents())

    # Again, from the status page's form (the status link opens it too): replaced, not added.
    status_token = order.link(LinkPurpose.STATUS)
    again = await anonymous.post(
        f"/order/{status_token}/feedback", data={"rating": "5", "nps": "10"}
    )
    assert again.status_code == 200 and bonus in again.text  # the same bonus
    [replaced] = await _stored(stack, order)
    assert (replaced.id, replaced.rating, replaced.nps) == (stored.id, 5, 10)
    assert replaced.comment is None and replaced.line_ratings == {}
    assert replaced.updated_at is not None
    page = await anonymous.get(f"/order/{status_token}")
    assert 'id="bonus-code">' + bonus in page.text and "5 / 5" in page.text
    # The workflow kept the first answer; the customer was thanked once.
    assert [
        e.detail["rating"] for e in (await order.status()).timeline if e.type == "feedback.received"
    ] == ["2"]
    assert [k for k in await order.sent() if k == "feedback_thanks"] == ["feedback_thanks"]


async def test_no_bonus_is_promised_or_given_when_the_policy_gives_none(
    stack: Stack, policy: Settings, anonymous: httpx.AsyncClient
) -> None:
    policy.feedback_bonus = "none"
    order = await _asked(stack)
    request = _mail(stack, order, "Як вам замовлення")
    assert request and not BONUS.search(request)
    token = await order.link_from_mail("feedback")
    form = await anonymous.get(f"/order/{token}/feedback")
    assert not BONUS.search(form.text)
    answer = await order.answer("feedback", {"rating": 4, "nps": 8}, token=token)
    assert answer.status_code == 200 and answer.json()["bonus_code"] is None

    async def thanked() -> str:
        return _mail(stack, order, "Дякуємо за відгук")

    assert not BONUS.search(await eventually(thanked, 20, what="the thank-you e-mail"))


async def test_a_promised_bonus_is_given_even_when_the_policy_changed_since(
    stack: Stack, policy: Settings
) -> None:
    order = await _asked(stack)  # asked under "unique": the request promised a bonus
    async with open_session(stack.engine) as session:
        promised = await session.get(FeedbackBonus, uuid.UUID(order.order_id))
    assert promised is not None and promised.policy == "unique"
    policy.feedback_bonus = "none"
    answer = await order.answer("feedback", {"nps": 9})
    assert answer.json()["bonus_code"] == promised.code


async def test_a_fixed_bonus_is_the_same_code_for_everyone(stack: Stack, policy: Settings) -> None:
    policy.feedback_bonus, policy.feedback_bonus_code = "fixed", "THANKS-10"
    order = await _asked(stack)
    answer = await order.answer("feedback", {"rating": 3})
    assert answer.status_code == 200 and answer.json()["bonus_code"] == "THANKS-10"


async def test_the_shop_hears_of_each_answer_with_its_bonus(stack: Stack) -> None:
    receiver = f"{str(stack.sim.base_url).rstrip('/')}/shop/events"
    created = await stack.api.post(
        "/v1/webhook-subscriptions", json={"url": receiver, "events": ["feedback.received"]}
    )
    subscription = created.json()
    try:
        order = await _asked(stack)
        first = await order.answer("feedback", {"rating": 1, "nps": 0})
        second = await order.answer(
            "feedback", {"rating": 4, "line_ratings": [{"sku": "TEA-02", "rating": 5}]}
        )
        assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
        code = first.json()["bonus_code"]
        assert code and second.json()["bonus_code"] == code

        async def heard() -> list[dict[str, Any]] | None:
            arrived = (await stack.sim.get("/shop/sim/events")).json()
            mine = [
                a["event"]["data"]
                for a in arrived
                if a["event"]["data"]["order_id"] == order.order_id
            ]
            return mine if len(mine) == 2 else None

        answers = await eventually(heard, 20, what="two feedback.received events")
        assert [(a["rating"], a["nps"], a["updated"], a["bonus_code"]) for a in answers] == [
            (1, 0, False, code),
            (4, None, True, code),
        ]
        assert answers[1]["line_ratings"] == {"TEA-02": 5}
        assert "comment" not in answers[0]  # what a customer writes stays with us
    finally:
        await stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")


async def _bonuses(stack: Stack, order: Journey) -> list[FeedbackBonus]:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(FeedbackBonus).where(FeedbackBonus.order_id == uuid.UUID(order.order_id))
        )
        return list(rows.all())


async def test_an_order_never_delivered_earns_no_feedback_and_no_bonus(
    stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    """A cancelled order (and one not yet delivered) is not rated: 409 with the reason, on
    the API and the page, and no bonus code, however often it is asked."""
    limiter.reset()
    order = await Journey.place(stack, lines=LINES)
    await order.waiting_for("payment")
    feedback = order.link(LinkPurpose.FEEDBACK)
    early = await order.answer("feedback", {"rating": 5}, token=feedback)
    assert early.status_code == 409 and "delivered" in early.json()["detail"], early.text
    cancelled = await stack.api.post(
        f"/v1/orders/{order.order_id}/cancel", json={"reason": "other"}
    )
    assert cancelled.status_code == 200, cancelled.text
    await order.reached("order.cancelled")

    answers = [
        await order.answer("feedback", {"rating": 5, "nps": 10}, token=feedback) for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {409}
    assert all("delivered" in a.json()["detail"] for a in answers)
    form = await anonymous.get(f"/order/{feedback}/feedback")
    assert form.status_code == 200 and "коли його буде доставлено" in form.text
    assert 'name="rating"' not in form.text  # no form to fill in
    page = await anonymous.post(f"/order/{feedback}/feedback", data={"rating": "5"})
    assert page.status_code == 409 and "коли його буде доставлено" in page.text
    assert not re.search(r"FB-[A-Z0-9-]+", page.text)
    assert await _stored(stack, order) == [] and await _bonuses(stack, order) == []
    limiter.reset()


async def test_one_bonus_per_order_whatever_is_answered_at_once(stack: Stack) -> None:
    """Answers sent at the same moment, through the feedback and the status link (as many
    as the order's limit lets through): one bonus code for the order, one stored answer,
    one thank-you message."""
    limiter.reset()
    order = await Journey.place(stack, payment={"method": "cod"}, lines=LINES)
    await order.to_delivery()
    tokens = [order.link(LinkPurpose.FEEDBACK), order.link(LinkPurpose.STATUS)]
    answers = await asyncio.gather(
        *(order.answer("feedback", {"rating": 1 + n % 5}, token=tokens[n % 2]) for n in range(5))
    )
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    codes = {a.json()["bonus_code"] for a in answers}
    assert len(codes) == 1 and codes.pop().startswith("FB-")
    assert [a.json()["duplicate"] for a in answers].count(False) == 1
    assert len(await _bonuses(stack, order)) == 1 and len(await _stored(stack, order)) == 1
    await order.reached("feedback.received")
    assert [k for k in await order.sent() if k == "feedback_thanks"] == ["feedback_thanks"]
    limiter.reset()
