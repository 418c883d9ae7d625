"""WayForPay as the shop's payment provider on the real stack: invoices, signed callbacks
answered with the signed `accept`, partial refunds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from activities.payment_gateways.wayforpay import CALLBACK_FIELDS, sign
from devstack.fixtures import fixture
from devstack.mailsink import MailSink
from settings import Settings
from tests.lifecycle import Journey
from tests.payments import ledger, provider_stack, refund, webhook_rows
from tests.stack import Stack


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "wayforpay"
    ) as s:
        yield s


async def test_paid_accepted_and_partially_refunded_through_wayforpay(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    assert (
        await order.refs()
    ).payment_url == f"{stack.sim.base_url}/wayforpay/pay/{order.order_id}"
    answer = await stack.sim.post(f"/wayforpay/sim/invoices/{order.order_id}/Approved")
    assert answer.json()["webhook_status"] == 200
    await order.reached("payment.succeeded")
    [delivered] = [
        d
        for d in (await stack.sim.get("/sim/webhooks")).json()
        if d["payload"].get("orderReference") == order.order_id
    ]
    assert delivered["accepted"]  # the signed accept WayForPay waits for

    assert (await refund(order, "100.00"))["status"] == "refunded"
    assert [(r.amount, r.status) for r in await ledger(stack, order)] == [
        (Decimal("100.00"), "confirmed")
    ]
    [item] = [
        i
        for i in (await stack.sim.get("/wayforpay/sim/invoices")).json()
        if i["orderReference"] == order.order_id
    ]
    assert item["refunded"] == "100.00"


async def test_a_forged_or_mismatched_callback_changes_nothing(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    body = json.loads(fixture("wayforpay", "callback_approved")["body"])
    body.update(
        orderReference=order.order_id, merchantAccount=stack.settings.wayforpay_merchant_account
    )

    def signed(secret: str, **changes: object) -> bytes:
        data = {**body, **changes}
        data["merchantSignature"] = sign(secret, *[data.get(f, "") for f in CALLBACK_FIELDS])
        return json.dumps(data).encode()

    forged = await stack.api.post("/v1/webhooks/wayforpay", content=signed("not-the-secret"))
    assert forged.status_code == 401
    cheap = await stack.api.post(
        "/v1/webhooks/wayforpay", content=signed(stack.settings.wayforpay_secret_key, amount=5)
    )
    assert cheap.status_code == 409
    assert await webhook_rows(stack, order) == []
    [incident] = await order.incidents()
    assert "5.00 UAH paid, 500.00 UAH asked" in incident.summary
    assert "payment.succeeded" not in Journey.types(await order.status())
