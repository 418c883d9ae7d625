"""LiqPay as the shop's payment provider, end to end on the real stack: its simulator speaks
LiqPay's API 3 (checkout, callbacks of data and signature, status, refunds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from activities.payment_gateways.liqpay import signed_form
from devstack.fixtures import fixture
from devstack.mailsink import MailSink
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
        temporal_env, base_settings, engine, mail_sink.maildir, "liqpay"
    ) as s:
        yield s


async def _checkout(stack: Stack, order: Journey) -> dict[str, object]:
    await order.waiting_for("payment")
    [item] = [
        p
        for p in (await stack.sim.get("/liqpay/sim/payments")).json()
        if p["order_id"] == order.order_id
    ]
    return item


async def _callback(stack: Stack, data: dict[str, object], key: str | None = None) -> int:
    form = signed_form(key or stack.settings.liqpay_private_key, data)
    answer = await stack.api.post(
        "/v1/webhooks/liqpay",
        content=urlencode(form),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    return answer.status_code


def _paid(order: Journey, **changes: object) -> dict[str, object]:
    data = fixture("liqpay", "callback_success")["decoded"]
    return {**data, "order_id": order.order_id, "amount": 500.0, "currency": "UAH", **changes}


@pytest.mark.timeout(180)
async def test_a_prepaid_order_lives_its_whole_life_through_liqpay(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> None:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "liqpay", autopilot=True
    ) as stack:
        order = await Journey.place(stack)
        done = await order.until(
            lambda s: "order.completed" in Journey.types(s) or s.stage == "completed", 120
        )
        types = Journey.types(done)
        assert (
            types.index("payment.requested")
            < types.index("payment.succeeded")
            < types.index("order.delivered")
        )
        refs = await order.refs()
        assert refs.payment_id == order.order_id  # LiqPay's order_id is ours
        assert (refs.payment_url or "").startswith(f"{stack.sim.base_url}/liqpay/uk/checkout/")
        [item] = [
            p
            for p in (await stack.sim.get("/liqpay/sim/payments")).json()
            if p["order_id"] == order.order_id
        ]
        assert item["server_url"].endswith("/v1/webhooks/liqpay") and item["status"] == "success"
        assert item["result_url"].startswith(
            f"{stack.settings.public_url}/order/"
        )  # its status page
        state = await payment_state(stack, order)
        assert state is not None and state.outcome == "succeeded"
        assert "payment_received" in await order.sent()


async def test_a_forged_callback_is_refused_and_changes_nothing(stack: Stack) -> None:
    order = await Journey.place(stack)
    await _checkout(stack, order)

    assert await _callback(stack, _paid(order), key="not-our-private-key") == 401
    tampered = signed_form(stack.settings.liqpay_private_key, _paid(order))
    tampered["data"] = signed_form("x", _paid(order, amount=1.0))["data"]
    answer = await stack.api.post(
        "/v1/webhooks/liqpay",
        content=urlencode(tampered),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 401
    assert await webhook_rows(stack, order) == [] and await payment_state(stack, order) is None
    assert (await order.status()).waiting_for == "payment"
    assert "payment.succeeded" not in Journey.types(await order.status())


async def test_a_callback_for_another_amount_or_currency_opens_an_incident(stack: Stack) -> None:
    order = await Journey.place(stack)
    await _checkout(stack, order)

    assert await _callback(stack, _paid(order, amount=5.0, payment_id=1)) == 409
    assert await _callback(stack, _paid(order, currency="USD", payment_id=2)) == 409
    summaries = [i.summary for i in await order.incidents()]
    assert any("5.00 UAH paid, 500.00 UAH asked" in s for s in summaries), summaries
    assert any("500.00 USD paid, 500.00 UAH asked" in s for s in summaries), summaries
    assert await webhook_rows(stack, order) == []
    status = await order.status()
    assert status.waiting_for == "payment" and "payment.succeeded" not in Journey.types(status)


async def test_failed_then_paid_with_replays_and_news_on_its_way(stack: Stack) -> None:
    order = await Journey.place(stack)
    item = await _checkout(stack, order)
    assert (await stack.sim.post(f"/liqpay/sim/payments/{order.order_id}/wait_secure")).json()[
        "webhook_status"
    ] == 200
    failed = await stack.sim.post(
        f"/liqpay/checkout/{item['token']}/fail", params={"err_code": "err_verify_code"}
    )
    assert failed.json()["webhook_status"] == 200
    await order.reached("payment.failed")
    [failure] = [e for e in await order.stored_events() if e.type == "payment.failed"]
    assert failure.detail["reason"] == "authentication_failed"
    assert (await stack.sim.post(f"/liqpay/checkout/{item['token']}/succeed")).json()[
        "webhook_status"
    ] == 200
    await order.reached("payment.succeeded")

    # The same callback again is a replay: answered, changes nothing.
    last = [
        d
        for d in (await stack.sim.get("/sim/webhooks")).json()
        if d["payload"].get("order_id") == order.order_id
    ][-1]
    assert await _callback(stack, last["payload"]) == 200
    assert [r.type for r in await webhook_rows(stack, order)] == [
        "payment.pending",
        "payment.failed",
        "payment.succeeded",
    ]
    assert Journey.types(await order.status()).count("payment.succeeded") == 1


async def test_partial_refunds_go_through_liqpay_and_a_refund_nobody_asked_is_flagged(
    stack: Stack,
) -> None:
    order = await Journey.place(stack)
    item = await _checkout(stack, order)
    await stack.sim.post(f"/liqpay/checkout/{item['token']}/succeed")
    await order.reached("payment.succeeded")

    first = await refund(order, "100.00")
    assert first["status"] == "refunded", first
    rows = await ledger(stack, order)
    assert [(r.amount, r.status) for r in rows] == [(Decimal("100.00"), "confirmed")]
    assert rows[0].provider_refund_id == str(item["payment_id"])

    async def refunded() -> bool:  # LiqPay's own callback about the refund: recorded only
        return "payment.refunded" in [r.type for r in await webhook_rows(stack, order)]

    await eventually(refunded, what="LiqPay's reversed callback")
    assert await order.incidents() == []
    [after] = [
        p
        for p in (await stack.sim.get("/liqpay/sim/payments")).json()
        if p["order_id"] == order.order_id
    ]
    assert after["refunded"] == "100.00"

    # A refund made in LiqPay's cabinet, not through orderflow: a manager must hear of it.
    await stack.sim.post(
        f"/liqpay/sim/payments/{order.order_id}/reversed", params={"amount": "50.00"}
    )
    [incident] = await order.incidents()
    assert "matches no refund this order asked for" in incident.summary


async def test_a_shop_on_another_provider_does_not_hear_liqpay(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    answer = await dev_stack.api.post(
        "/v1/webhooks/liqpay",
        content=urlencode(signed_form(dev_stack.settings.liqpay_private_key, _paid(order))),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 404 and "liqpay" in answer.json()["detail"]
    assert await webhook_rows(dev_stack, order) == []
