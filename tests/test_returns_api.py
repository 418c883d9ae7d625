"""Refunds and returns at the edge (the real stack on the dev server): who may, what is
refused and why (409 with the reason, 422 naming the field), a retried request that changes
nothing, the client and the CLI, and the ledger's guarantee under concurrent writers."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from schema.api.fields import Role
from schema.api.returns import CustomerReturnIn
from schema.contracts import return_workflow_id_for
from schema.database import open_session
from schema.ledger import RefundExceedsPayment, enter_refund
from schema.links import LinkPurpose
from schema.tables import Order, Return
from starter.client import Conflict, OrderflowClient
from starter.services import returns
from starter.services.access import Principal
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import decoded_history, eventually
from tests.test_client_cli import _cli, _key

SET_AND_BRUSH = [
    {"sku": "SET-CUPS", "name": "Cups of a set of six", "quantity": 6, "unit_price": "40.00"},
    {"sku": "HYG-BRUSH", "name": "Toothbrush", "quantity": 1, "unit_price": "60.00"},
]


def key() -> str:
    return uuid.uuid4().hex


async def post(http: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> Any:
    return await http.post(path, json=body, headers={"Idempotency-Key": key(), **headers})


async def test_refunds_are_refused_with_a_reason_and_need_a_key(dev_stack: Stack) -> None:
    operator = dev_stack.as_role[Role.OPERATOR]
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    path = f"/v1/orders/{order.order_id}/refunds"

    unpaid = await post(operator, path, {"amount": "10.00", "reason": "goodwill"})
    assert unpaid.status_code == 409 and "nothing was paid" in unpaid.json()["detail"]
    keyless = await operator.post(path, json={"amount": "10.00", "reason": "goodwill"})
    assert keyless.status_code == 422
    assert [e["field"] for e in keyless.json()["errors"]] == ["Idempotency-Key"]
    both = await post(operator, path, {"amount": "1.00", "lines": [], "reason": "other"})
    assert both.status_code == 422

    await order.pay()
    await order.reached("payment.succeeded")
    item = await post(
        operator, path, {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "item_missing"}
    )
    assert item.status_code == 201, item.text
    assert Decimal(item.json()["amount"]) == Decimal("250.00")
    unknown = await post(
        operator, path, {"lines": [{"sku": "TEA-01", "quantity": 1}], "reason": "other"}
    )
    assert unknown.status_code == 409
    assert unknown.json()["detail"] == "lines.0.sku: TEA-01 is not a line of this order"
    too_many = await post(
        operator, path, {"lines": [{"sku": "MUG-01", "quantity": 3}], "reason": "other"}
    )
    assert too_many.status_code == 409 and "the order has 2 of MUG-01" in too_many.text
    reused = await operator.post(
        path,
        json={"amount": "5.00", "reason": "other"},
        headers={"Idempotency-Key": item.json()["key"]},
    )
    assert reused.status_code == 409 and "used for a refund of 250.00" in reused.text

    support = dev_stack.as_role[Role.SUPPORT]
    ledger = await support.get(path)
    assert ledger.status_code == 200
    assert [(r["amount"], r["reason"], r["actor"]) for r in ledger.json()["refunds"]] == [
        ("250.00", "item_missing", "key:operator")
    ]
    assert (await post(support, path, {"amount": "1.00", "reason": "other"})).status_code == 403
    assert (await dev_stack.as_role[Role.SERVICE].get(path)).status_code == 403


async def test_the_ledger_lets_one_of_two_refunds_through_that_together_exceed(
    dev_stack: Stack,
) -> None:
    """Two writers at once, each within what is left alone: the row lock orders them, and
    the second sees the first's row."""
    order = await Journey.place(dev_stack)
    await order.until_paid()
    order_id = uuid.UUID(order.order_id)

    async def write(n: int) -> str:
        async with open_session(dev_stack.engine) as session:
            try:
                await enter_refund(
                    session,
                    order_id=order_id,
                    key=f"{order_id}:race-{n}",
                    payment_id="p",
                    amount=Decimal("300.00"),
                )
            except RefundExceedsPayment as exc:
                return str(exc)
            await asyncio.sleep(0.2)  # hold the lock: the other writer waits for it
            await session.commit()
            return "written"

    outcomes = await asyncio.gather(write(1), write(2))
    assert sorted(outcomes) == [
        "refund of 300.00 exceeds what is left to refund (200.00 of 500.00 paid, 300.00 refunded)",
        "written",
    ]


async def test_returns_are_refused_with_a_reason_or_wait_for_approval(dev_stack: Stack) -> None:
    operator = dev_stack.as_role[Role.OPERATOR]
    order = await Journey.place(dev_stack, lines=SET_AND_BRUSH, payment={"method": "cod"})
    path = f"/v1/orders/{order.order_id}/returns"
    await order.waiting_for("packing")
    early = await post(
        operator, path, {"lines": [{"sku": "SET-CUPS", "quantity": 6}], "reason": "other"}
    )
    assert early.status_code == 409
    assert early.json()["detail"] == "return refused: the order has not been delivered yet"

    await order.to_delivery()
    unknown = await post(
        operator, path, {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "other"}
    )
    assert (unknown.status_code, unknown.json()["detail"]) == (
        409,
        "lines.0.sku: MUG-01 is not an item of this order",
    )
    cups = await post(
        operator,
        path,
        {
            "lines": [{"sku": "SET-CUPS", "quantity": 2}],
            "reason": "defective",
            "comment": "two chipped",
        },
    )
    assert cups.status_code == 201, cups.text
    assert cups.json()["status"] == "awaiting_approval"
    more = await post(
        operator, path, {"lines": [{"sku": "SET-CUPS", "quantity": 5}], "reason": "other"}
    )
    assert more.status_code == 409
    assert more.json()["detail"].startswith("lines.0.quantity: 4 of Cups of a set of six")

    # The customer's page lists what is left to return, and the return waiting.
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=dev_stack.api.base_url) as customer:
        view = (await customer.get(f"/v1/customer/orders/{token}/returns")).json()
        wrong = await customer.get(
            f"/v1/customer/orders/{order.link(LinkPurpose.FEEDBACK)}/returns"
        )
    assert wrong.status_code == 404  # a feedback link opens no return page
    assert [(line["sku"], line["returnable"]) for line in view["lines"]] == [
        ("SET-CUPS", 4),
        ("HYG-BRUSH", 1),
    ]
    [waiting] = view["returns"]
    return_id = waiting["return_id"]
    listed = await dev_stack.as_role[Role.SUPPORT].get(path)
    assert listed.json()[0]["needs_action"] is True  # the workflow flagged it meanwhile

    decision = f"{path}/{return_id}/decision"
    approved = await operator.post(decision, json={"approve": True, "note": "chipped: our fault"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] in ("approved", "awaiting_approval")
    again = await operator.post(decision, json={"approve": False})
    assert again.status_code == 409 and "not awaiting approval" in again.json()["detail"]

    async def label_sent() -> dict[str, Any] | None:
        [row] = (await operator.get(path)).json()
        return row if row["status"] == "approved" else None

    approved_view = await eventually(label_sent, what="the return approved")
    assert approved_view["needs_action"] is False and approved_view["tracking_number"]
    notes = (await dev_stack.api.get(f"/v1/orders/{order.order_id}")).json()["notes"]
    assert [(n["text"], n["action"]) for n in notes] == [("chipped: our fault", "decide_return")]


async def test_the_client_and_the_cli_refund_and_open_returns(dev_stack: Stack) -> None:
    url = str(dev_stack.api.base_url)
    order = await Journey.place(dev_stack)
    await order.to_delivery()
    operator_key = await _key(dev_stack, Role.OPERATOR)
    async with OrderflowClient(url, operator_key) as operator:
        made = await operator.refund(
            order.order_id, reason="goodwill", amount="50.00", key="cli-test-1"
        )
        assert made.status == "refunded"
        same = await operator.refund(
            order.order_id, reason="goodwill", amount="50.00", key="cli-test-1"
        )
        assert same.refunded == Decimal("50.00")  # the same key: nothing more
        with pytest.raises(Conflict, match="exceeds what is left"):
            await operator.refund(order.order_id, reason="other", amount="451.00")

    refunded = await asyncio.to_thread(
        _cli,
        dev_stack,
        operator_key,
        "refund",
        order.order_id,
        "--reason",
        "item_damaged",
        "--item",
        "MUG-01:1",
    )
    assert refunded.returncode == 0, refunded.stdout + refunded.stderr
    assert json.loads(refunded.stdout)["amount"] == "250.00"
    ledger = await asyncio.to_thread(_cli, dev_stack, operator_key, "refunds", order.order_id)
    assert "left 200.00" in ledger.stdout
    too_much = await asyncio.to_thread(
        _cli,
        dev_stack,
        operator_key,
        "refund",
        order.order_id,
        "--reason",
        "other",
        "--amount",
        "300",
    )
    assert too_much.returncode == 1 and "error 409" in too_much.stdout

    opened = await asyncio.to_thread(
        _cli,
        dev_stack,
        operator_key,
        "returns",
        "open",
        order.order_id,
        "--item",
        "MUG-01:1",
        "--reason",
        "wrong_size",
        "--exchange",
    )
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert json.loads(opened.stdout)["resolution"] == "exchange"
    listed = await asyncio.to_thread(
        _cli, dev_stack, operator_key, "returns", "list", order.order_id, "--json"
    )
    assert [r["status"] for r in json.loads(listed.stdout)] == ["approved"]
    assert json.loads(listed.stdout)[0]["requested_by"].startswith("key:")
    # The customer's view of the same return names the shop, never its staff or keys.
    async with httpx.AsyncClient(base_url=dev_stack.api.base_url) as customer:
        token = order.link(LinkPurpose.STATUS)
        seen = (await customer.get(f"/v1/customer/orders/{token}/returns")).json()
    assert [r["requested_by"] for r in seen["returns"]] == ["shop"]


async def test_a_returns_comment_stays_in_postgres_and_erasure_clears_it(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.to_delivery()
    comment = f"Please call {order.body['customer']['name']} at {order.body['customer']['phone']}"
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=dev_stack.api.base_url) as customer:
        asked = await post(
            customer,
            f"/v1/customer/orders/{token}/returns",
            {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "other", "comment": comment},
        )
    assert asked.status_code == 201, asked.text
    history = await dev_stack.client.get_workflow_handle(
        return_workflow_id_for(asked.json()["return_id"])
    ).fetch_history()
    decoded = decoded_history(history.to_json())
    assert "MUG-01" in decoded and order.body["customer"]["name"] not in decoded
    assert order.body["customer"]["phone"] not in decoded

    erased = await dev_stack.api.post(
        "/v1/admin/erasures", json={"email": order.body["customer"]["email"]}
    )
    assert erased.status_code == 200, erased.text
    async with open_session(dev_stack.engine) as session:
        stored = await session.get(Return, uuid.UUID(asked.json()["return_id"]))
    assert stored is not None and stored.comment is None


async def test_a_return_written_but_never_started_starts_when_asked_again(dev_stack: Stack) -> None:
    """Temporal away between the row's commit and the start (the caller got 503): the same
    request again starts the return from what was kept, instead of answering a return that
    never moves and holds its items."""
    order = await Journey.place(dev_stack)
    await order.to_delivery()
    request = key()
    body = CustomerReturnIn.model_validate(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}
    )
    async with open_session(dev_stack.engine) as session:
        placed = await session.get(Order, uuid.UUID(order.order_id))
        assert placed is not None
        kept, _, _ = await returns._written(
            session, Principal.customer(None), placed, request, body
        )
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}, request
    )
    assert asked.status_code == 200, asked.text  # asked before: not created now
    assert asked.json()["return_id"] == str(kept.id)
    assert asked.json()["status"] == "approved" and asked.json()["tracking_number"]
