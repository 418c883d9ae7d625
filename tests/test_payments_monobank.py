"""Monobank acquiring as the shop's payment provider, end to end on the real stack: its
simulator speaks the acquiring API (invoices, ECDSA-signed webhooks, cancels)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from settings import Settings
from tests.lifecycle import Journey
from tests.payments import ledger, payment_state, provider_stack, refund, webhook_rows
from tests.stack import Stack


@pytest.fixture(scope="module")
async def stack(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "monobank"
    ) as s:
        yield s


async def _invoice(stack: Stack, order: Journey) -> dict[str, object]:
    await order.waiting_for("payment")
    invoices = (await stack.sim.get("/monobank/sim/invoices")).json()
    [item] = [i for i in invoices if i["reference"] == order.order_id]
    return item


async def _post(stack: Stack, body: dict[str, object], sign: str) -> int:
    answer = await stack.api.post(
        "/v1/webhooks/monobank",
        content=json.dumps(body).encode(),
        headers={"X-Sign": sign, "content-type": "application/json"},
    )
    return answer.status_code


@pytest.mark.timeout(180)
async def test_a_prepaid_order_lives_its_whole_life_through_monobank(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    engine: AsyncEngine,
    mail_sink: MailSink,
) -> None:
    async with provider_stack(
        temporal_env, base_settings, engine, mail_sink.maildir, "monobank", autopilot=True
    ) as stack:
        order = await Journey.place(stack)
        done = await order.until(lambda s: s.stage == "completed", 120)
        types = Journey.types(done)
        assert types.index("payment.succeeded") < types.index("order.delivered")
        [item] = [
            i
            for i in (await stack.sim.get("/monobank/sim/invoices")).json()
            if i["reference"] == order.order_id
        ]
        assert (item["amount"], item["ccy"], item["status"]) == (50000, 980, "success")  # kopecks
        assert (await order.refs()).payment_id == item["invoiceId"]
        state = await payment_state(stack, order)
        assert state is not None and state.outcome == "succeeded"
        # processing, then success: each recorded once
        assert sorted(r.type for r in await webhook_rows(stack, order)) == [
            "payment.pending",
            "payment.succeeded",
        ]


async def test_webhooks_out_of_order_the_older_changes_nothing(stack: Stack) -> None:
    order = await Journey.place(stack)
    item = await _invoice(stack, order)
    answer = await stack.sim.post(f"/monobank/sim/invoices/{item['invoiceId']}/out-of-order")
    assert answer.json()["webhook_status"] == [200, 200]
    await order.reached("payment.succeeded")
    state = await payment_state(stack, order)
    assert state is not None and state.outcome == "succeeded"  # processing came later, older
    assert sorted(r.type for r in await webhook_rows(stack, order)) == [
        "payment.pending",
        "payment.succeeded",
    ]
    assert Journey.types(await order.status()).count("payment.succeeded") == 1


async def test_a_forged_webhook_is_refused_and_changes_nothing(stack: Stack) -> None:
    order = await Journey.place(stack)
    item = await _invoice(stack, order)
    body = {**item, "status": "success", "modifiedDate": "2030-01-01T00:00:00Z"}
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = base64.b64encode(
        forger.sign(json.dumps(body).encode(), ec.ECDSA(hashes.SHA256()))
    ).decode()
    assert await _post(stack, body, forged) == 401
    assert await _post(stack, body, "") == 401
    assert await webhook_rows(stack, order) == [] and await payment_state(stack, order) is None
    assert (await order.status()).waiting_for == "payment"


async def test_a_new_key_is_fetched_once_and_another_invoice_opens_an_incident(
    stack: Stack,
) -> None:
    order = await Journey.place(stack)
    item = await _invoice(stack, order)
    await stack.sim.post("/monobank/sim/rotate-key")  # the API's cached key is now stale
    invoice = str(item["invoiceId"])
    on_its_way = (await stack.sim.post(f"/monobank/sim/invoices/{invoice}/processing")).json()
    assert on_its_way["webhook_status"] == 200  # verified with the key fetched again
    answer = await stack.sim.post(f"/monobank/sim/invoices/{invoice}/failure")
    assert answer.json()["webhook_status"] == 200
    await order.reached("payment.failed")
    # A webhook naming this order's reference with another invoice id: refused, flagged.
    stray = await _forge_invoice(stack, order, invoice)
    assert stray == 409
    [incident] = [i for i in await order.incidents() if "is not this order's" in i.summary]
    assert invoice in incident.summary
    await order.waiting_for("payment")
    assert "payment.succeeded" not in Journey.types(await order.status())


async def _forge_invoice(stack: Stack, order: Journey, invoice: str) -> int:
    """Monobank's simulator signs a webhook of a second invoice carrying this order's
    reference (as a second invoice made by hand in Monobank's cabinet would)."""
    created = await stack.sim.post(
        "/monobank/api/merchant/invoice/create",
        json={
            "amount": 50000,
            "ccy": 980,
            "merchantPaymInfo": {"reference": order.order_id},
            "webHookUrl": f"{stack.settings.public_url}/v1/webhooks/monobank",
        },
        headers={"X-Token": stack.settings.monobank_token},
    )
    second = created.json()["invoiceId"]
    assert second != invoice
    answer = await stack.sim.post(f"/monobank/sim/invoices/{second}/success")
    status: int = answer.json()["webhook_status"]
    return status


async def test_partial_refunds_go_through_monobank_once_each(stack: Stack) -> None:
    order = await Journey.place(stack)
    item = await _invoice(stack, order)
    await stack.sim.post(f"/monobank/sim/invoices/{item['invoiceId']}/success")
    await order.reached("payment.succeeded")

    assert (await refund(order, "100.00"))["status"] == "refunded"
    assert (await refund(order, "150.00"))["status"] == "refunded"
    rows = await ledger(stack, order)
    assert [(r.amount, r.status) for r in rows] == [
        (Decimal("100.00"), "confirmed"),
        (Decimal("150.00"), "confirmed"),
    ]
    [after] = [
        i
        for i in (await stack.sim.get("/monobank/sim/invoices")).json()
        if i["invoiceId"] == item["invoiceId"]
    ]
    assert [c["amount"] for c in after["cancelList"]] == [10000, 15000]
    assert [c["extRef"] for c in after["cancelList"]] == [r.provider_refund_id for r in rows]
    assert after["finalAmount"] == 25000
    assert await order.incidents() == []  # the webhooks about them matched the ledger
