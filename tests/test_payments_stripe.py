"""Stripe as the shop's payment provider, end to end on the real stack: its simulator speaks
Stripe's API (Checkout Sessions, `Stripe-Signature` events, refunds with Idempotency-Key)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.fixtures import fixture
from devstack.mailsink import MailSink
from schema.webhooks import sign
from settings import Settings
from tests.lifecycle import Journey
from tests.payments import ledger, payment_state, provider_stack, refund, webhook_rows
from tests.stack import Stack
from tests.support import eventually


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "stripe"
    ) as s:
        yield s


async def _session(stack: Stack, order: Journey) -> dict[str, Any]:
    await order.waiting_for("payment")
    [item] = [
        s
        for s in (await stack.sim.get("/stripe/sim/sessions")).json()
        if s["client_reference_id"] == order.order_id
    ]
    return item


async def _event(
    stack: Stack, event: dict[str, Any], secret: str | None = None, at: int | None = None
) -> int:
    body = json.dumps(event).encode()
    signature = sign(secret or stack.settings.stripe_webhook_secret, body, at)
    answer = await stack.api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": signature, "content-type": "application/json"},
    )
    return answer.status_code


def _completed(session: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The documented checkout.session.completed about this session, paid."""
    event = fixture("stripe", "event_checkout_session_completed")["event"]
    event["id"] = f"evt_{session['id'][-12:]}{len(changes)}"
    event["created"] = int(time.time())
    ours = {k: session[k] for k in ("id", "client_reference_id", "metadata", "amount_total")}
    event["data"]["object"].update({**ours, "currency": session["currency"], **changes})
    return event


@pytest.mark.timeout(180)
async def test_a_prepaid_order_lives_its_whole_life_through_stripe(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> None:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "stripe", autopilot=True
    ) as stack:
        order = await Journey.place(stack)
        asked_at = datetime.now(UTC)
        done = await order.until(lambda s: s.stage == "completed", 120)
        types = Journey.types(done)
        assert types.index("payment.succeeded") < types.index("order.delivered")
        [session] = [
            s
            for s in (await stack.sim.get("/stripe/sim/sessions")).json()
            if s["client_reference_id"] == order.order_id
        ]
        # 500.00 UAH in kopecks; the order's id beside the session; back to its status page.
        assert (session["amount_total"], session["currency"]) == (50000, "uah")
        assert session["metadata"] == {"order_id": order.order_id}
        assert (session["status"], session["payment_status"]) == ("complete", "paid")
        assert session["success_url"].startswith(f"{stack.settings.public_url}/order/")
        refs = await order.refs()
        assert refs.payment_id == session["id"]
        assert refs.payment_url == f"{stack.sim.base_url}/stripe/pay/{session['id']}"
        # Stripe keeps a session 24 h at most, though the order's policy waits 72 h.
        expires = datetime.fromtimestamp(session["expires_at"], UTC)
        assert stack.settings.policy_payment_expiry == timedelta(hours=72)
        assert asked_at + timedelta(hours=23) < expires <= datetime.now(UTC) + timedelta(hours=24)
        # payment_intent.succeeded and checkout.session.completed: each recorded, one payment.
        assert [r.type for r in await webhook_rows(stack, order)] == ["payment.succeeded"] * 2
        assert types.count("payment.succeeded") == 1
        state = await payment_state(stack, order)
        assert state is not None and state.outcome == "succeeded"
        assert "payment_received" in await order.sent()


async def test_a_forged_or_stale_event_is_refused_and_changes_nothing(stack: Stack) -> None:
    order = await Journey.place(stack)
    session = await _session(stack, order)

    assert await _event(stack, _completed(session), secret="whsec_not_ours") == 401
    stale = int(time.time()) - 301
    assert await _event(stack, _completed(session), at=stale) == 401
    # Signed, but a kind of event the shop does not read: 422, not 500; nothing recorded.
    assert await _event(stack, {**_completed(session), "type": "customer.created"}) == 422
    assert await webhook_rows(stack, order) == [] and await payment_state(stack, order) is None
    status = await order.status()
    assert status.waiting_for == "payment" and "payment.succeeded" not in Journey.types(status)


async def test_an_event_for_another_amount_opens_an_incident(stack: Stack) -> None:
    order = await Journey.place(stack)
    session = await _session(stack, order)

    assert await _event(stack, _completed(session, amount_total=500)) == 409
    assert await _event(stack, _completed(session, currency="usd", id="cs_test_other")) == 409
    summaries = [i.summary for i in await order.incidents()]
    assert any("5.00 UAH paid, 500.00 UAH asked" in s for s in summaries), summaries
    assert any("payment cs_test_other is not this order's" in s for s in summaries), summaries
    assert await webhook_rows(stack, order) == []
    status = await order.status()
    assert status.waiting_for == "payment" and "payment.succeeded" not in Journey.types(status)


async def test_failed_then_paid_on_the_hosted_page_and_a_replay_changes_nothing(
    stack: Stack,
) -> None:
    order = await Journey.place(stack)
    session = await _session(stack, order)
    page = await stack.sim.get(f"/stripe/pay/{session['id']}")
    assert "500.00 UAH" in page.text
    failed = await stack.sim.post(
        f"/stripe/sim/sessions/{session['id']}/fail", params={"decline_code": "expired_card"}
    )
    assert failed.json()["webhook_status"] == [200]
    await order.reached("payment.failed")
    [failure] = [e for e in await order.stored_events() if e.type == "payment.failed"]
    assert failure.detail["reason"] == "expired_card"
    paid = await stack.sim.post(f"/stripe/sim/sessions/{session['id']}/pay")
    assert paid.json()["webhook_status"] == [200, 200]
    await order.reached("payment.succeeded")

    last = [
        d["payload"]
        for d in (await stack.sim.get("/sim/webhooks")).json()
        if d["payload"].get("type") == "checkout.session.completed"
        and d["payload"]["data"]["object"]["id"] == session["id"]
    ][-1]
    assert await _event(stack, last) == 200  # a replay: answered, recorded once
    assert [r.type for r in await webhook_rows(stack, order)] == [
        "payment.failed",
        "payment.succeeded",
        "payment.succeeded",
    ]
    assert Journey.types(await order.status()).count("payment.succeeded") == 1


async def test_a_partial_refund_is_sent_once_with_its_key_and_confirmed_by_its_event(
    stack: Stack,
) -> None:
    order = await Journey.place(stack)
    session = await _session(stack, order)
    await stack.sim.post(f"/stripe/sim/sessions/{session['id']}/pay")
    await order.reached("payment.succeeded")

    await refund(order, "100.00")

    async def confirmed() -> list[Any] | None:
        rows = await ledger(stack, order)
        return rows if rows and rows[0].status == "confirmed" else None

    [row] = await eventually(confirmed, what="the refund confirmed by refund.updated")
    [sent] = [
        r
        for r in (await stack.sim.get("/stripe/sim/refunds")).json()
        if r["metadata"]["order_id"] == order.order_id
    ]
    assert (sent["amount"], sent["status"], row.amount) == (10000, "succeeded", Decimal("100.00"))
    assert row.provider_refund_id == sent["id"]
    keys = [
        k
        for k in (await stack.sim.get("/stripe/sim/keys")).json()
        if k["key"] == row.idempotency_key
    ]
    assert keys == [{"key": row.idempotency_key, "path": "/stripe/v1/refunds"}]
    assert "payment.refunded" in [r.type for r in await webhook_rows(stack, order)]
    assert await order.incidents() == []


async def test_a_shop_on_another_provider_does_not_hear_stripe(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    body = json.dumps(fixture("stripe", "event_checkout_session_completed")["event"]).encode()
    answer = await dev_stack.api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(dev_stack.settings.stripe_webhook_secret, body)},
    )
    assert answer.status_code == 404 and "stripe" in answer.json()["detail"]
