"""The Python client for backend services and the `orderflow` CLI, against the running API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from schema.api.actions import ActionOut
from schema.api.fields import Role
from schema.api.orders import NoteOut
from schema.api.returns import RefundsOut
from schema.contracts import Stage
from schema.database import open_session
from starter.client import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    OrderflowClient,
    Unauthorized,
    Unavailable,
)
from starter.services.access import issue_api_key
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import sample_order


async def _key(stack: Stack, role: Role) -> str:
    async with open_session(stack.engine) as session:
        return await issue_api_key(session, name=f"client-{role.value}", role=role)


async def test_client_creates_reads_finds_and_acts(dev_stack: Stack) -> None:
    url = str(dev_stack.api.base_url)
    order = sample_order(note="please call")
    async with OrderflowClient(url, await _key(dev_stack, Role.SERVICE)) as service:
        accepted = await service.create_order(order)
        again = await service.create_order(order)
        assert again.order_id == accepted.order_id  # idempotent
        mine = await service.get_order(accepted.order_id)
        assert mine.number == order["number"] and mine.customer.email.startswith("ir***")
        with pytest.raises(Conflict):
            await service.create_order({**order, "currency": "EUR"})
        with pytest.raises(InvalidRequest) as invalid:
            await service.create_order({**order, "number": "BAD-1", "currency": "XYZ"})
        assert [e.field for e in invalid.value.errors] == ["currency"]
        with pytest.raises(Forbidden):
            await service.confirm(accepted.order_id)

    await Journey(dev_stack, accepted.order_id, order).waiting_for("operator_confirmation")
    async with OrderflowClient(url, await _key(dev_stack, Role.OPERATOR)) as operator:
        found = await operator.find_orders(order["number"])
        assert [item.order_id for item in found.items] == [accepted.order_id]
        result = await operator.confirm(
            accepted.order_id, final_price="450.00", note="agreed by phone"
        )
        assert isinstance(result, ActionOut) and result.accepted
        noted = await operator.add_note(accepted.order_id, "rang back", customer_contact=True)
        assert isinstance(noted, NoteOut) and noted.customer_contact
        with pytest.raises(Conflict, match="not awaiting confirmation"):
            await operator.confirm(accepted.order_id)
        with pytest.raises(NotFound):
            await operator.get_order("00000000-0000-0000-0000-000000000000")
    async with OrderflowClient(url, "of_wrong") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.get_order(accepted.order_id)


async def test_client_retries_a_repeatable_request_then_names_the_failure() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"detail": "Temporal is unreachable"})

    async with OrderflowClient(
        "http://orderflow", "k", retries=2, transport=httpx.MockTransport(flaky)
    ) as client:
        with pytest.raises(Unavailable, match="unreachable"):
            await client.get_order("x")
    assert calls == 3  # the first try and two retries


async def test_client_answers_with_the_apis_models_and_refuses_what_is_not_one() -> None:
    answers = {
        "/v1/orders/o1/cancel": {"accepted": True, "stage": "cancelled", "status": "cancelled"},
        "/v1/orders/o1/refunds": {
            "paid": "500.00",
            "refunded": "100.00",
            "left": "400.00",
            "refunds": [
                {
                    "key": "k1",
                    "amount": "100.00",
                    "status": "confirmed",
                    "reason": "goodwill",
                    "actor": "key:operator",
                    "requested_at": None,
                }
            ],
        },
        "/v1/orders/o2/refunds": {"paid": "500.00", "refunds": "none"},  # not the API's answer
    }

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    async with OrderflowClient(
        "http://orderflow", "k", transport=httpx.MockTransport(api)
    ) as client:
        cancelled = await client.cancel("o1", "other")
        ledger = await client.refunds("o1")
        with pytest.raises(ValidationError):
            await client.refunds("o2")
    assert cancelled.stage == Stage.CANCELLED
    assert isinstance(ledger, RefundsOut)
    assert (ledger.left, ledger.refunds[0].amount) == (Decimal("400.00"), Decimal("100.00"))


def _cli(stack: Stack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORDERFLOW_API_URL": str(stack.api.base_url).rstrip("/"),
        "ORDERFLOW_API_KEY": key,
    }
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_lists_shows_and_cancels(dev_stack: Stack, tmp_path: Path) -> None:
    order = sample_order()
    (tmp_path / "order.json").write_text(json.dumps(order))
    admin = await _key(dev_stack, Role.ADMIN)
    created = await asyncio.to_thread(
        _cli, dev_stack, admin, "create", str(tmp_path / "order.json")
    )
    assert created.returncode == 0, created.stderr
    order_id = json.loads(created.stdout)["order_id"]
    await Journey(dev_stack, order_id, order).waiting_for("payment")

    listed = await asyncio.to_thread(_cli, dev_stack, admin, "list", order["number"], "--json")
    assert [row["order_id"] for row in json.loads(listed.stdout)] == [order_id]
    shown = await asyncio.to_thread(_cli, dev_stack, admin, "show", order_id)
    assert (
        order["number"] in shown.stdout
        and "order.confirmed" in shown.stdout
        and "payment" in shown.stdout
    )
    cancelled = await asyncio.to_thread(
        _cli, dev_stack, admin, "cancel", order_id, "--note", "by phone"
    )
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["stage"] == "cancelled"
    refused = await asyncio.to_thread(_cli, dev_stack, admin, "cancel", order_id)
    assert refused.returncode == 1 and "error 409" in refused.stdout
    support = await _key(dev_stack, Role.SUPPORT)
    forbidden = await asyncio.to_thread(_cli, dev_stack, support, "keys", "list")
    assert forbidden.returncode == 1 and "error 403" in forbidden.stdout
    keys = await asyncio.to_thread(_cli, dev_stack, admin, "keys", "list", "--json")
    assert any(k["name"] == "client-support" for k in json.loads(keys.stdout))


async def test_cli_note_marks_a_customer_contact(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    support = await _key(dev_stack, Role.SUPPORT)
    plain = await asyncio.to_thread(_cli, dev_stack, support, "note", order.order_id, "rang")
    asked = await asyncio.to_thread(
        _cli, dev_stack, support, "note", order.order_id, "where is it?", "--customer-contact"
    )
    assert plain.returncode == 0 and asked.returncode == 0, plain.stdout + asked.stdout
    assert json.loads(plain.stdout)["customer_contact"] is False
    assert json.loads(asked.stdout)["customer_contact"] is True
    notes = (await dev_stack.api.get(f"/v1/orders/{order.order_id}")).json()["notes"]
    assert [(n["text"], n["customer_contact"]) for n in notes] == [
        ("rang", False),
        ("where is it?", True),
    ]
