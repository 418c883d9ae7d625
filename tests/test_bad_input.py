"""Bad input is the caller's error: a 4xx naming the field, never a 500 (dev server, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from schema.api.fields import Role
from schema.webhooks import HEADER, sign
from starter.api.app import create_app
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import sample_order


def _named(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body["errors"]], body
    assert field in body["detail"]


def _order(**customer: Any) -> dict[str, Any]:
    order = sample_order()
    order["customer"].update(customer)
    return order


@pytest.mark.parametrize(
    ("field", "order"),
    [
        ("customer.name", _order(name="Iryna\nKoval")),
        ("customer.name", _order(name="Iryna\x00Koval")),
        ("customer.name", _order(name="   ")),
        ("customer.push_token", _order(channels=["push"], push_token="tok\x07en")),
        ("delivery.address.line1", sample_order(delivery={
            "method": "courier",
            "address": {"country": "UA", "city": "Kyiv", "line1": "Khreshchatyk\r\n1",
                        "postal_code": "01001"}})),
        ("lines.0.sku", sample_order(lines=[
            {"sku": "MUG\x1b01", "name": "Mug", "quantity": 1, "unit_price": "1.00"}])),
        ("note", sample_order(note="ring\x00twice")),
        ("lines.0.quantity", sample_order(lines=[
            {"sku": "GOLD", "name": "Gold", "quantity": 100_001, "unit_price": "1.00"}])),
        ("lines.0.unit_price", sample_order(lines=[
            {"sku": "GOLD", "name": "Gold", "quantity": 1, "unit_price": "1E+20"}])),
        ("lines.0.quantity", sample_order(lines=[
            {"sku": "MUG", "name": "Mug", "quantity": 10**12, "unit_price": "1.00"}])),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
async def test_control_characters_and_impossible_amounts_are_422(
    dev_stack: Stack, field: str, order: dict[str, Any]
) -> None:
    _named(await dev_stack.api.post("/v1/orders", json=order), field)


async def test_the_largest_order_the_api_admits_is_stored_exactly(dev_stack: Stack) -> None:
    line = {"sku": "GOLD", "name": "Gold", "quantity": 100_000, "unit_price": "999999999999.99"}
    accepted = await dev_stack.api.post("/v1/orders", json=sample_order(lines=[line, line]))
    assert accepted.status_code == 202, accepted.text
    view = await dev_stack.api.get(f"/v1/orders/{accepted.json()['order_id']}")
    assert view.json()["total"] == "199999999999998000.00"


async def test_a_note_keeps_its_newlines_a_name_may_not(dev_stack: Stack) -> None:
    accepted = await dev_stack.api.post(
        "/v1/orders", json=sample_order(note="Ring twice.\nLeave at the door.")
    )
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]
    note = await dev_stack.api.post(
        f"/v1/orders/{order_id}/notes", json={"text": "Called.\r\nWill call again\tat 5."}
    )
    assert note.status_code == 201, note.text
    assert note.json()["text"] == "Called.\r\nWill call again\tat 5."


async def test_operator_actions_are_bounded(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack, note="check me")
    await order.waiting_for("operator_confirmation")
    url = f"/v1/orders/{order.order_id}"
    for body, field in [
        ({"final_price": "1E+20"}, "final_price"),
        ({"final_price": "1000000000000.00"}, "final_price"),
        ({"final_price": "0.00"}, "final_price"),
        ({"note": "ok\x00"}, "note"),
        (
            {"lines": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": "1.00"}] * 501},
            "lines",
        ),
    ]:
        _named(await dev_stack.api.post(f"{url}/confirm", json=body), field)
    _named(await dev_stack.api.post(f"{url}/reject", json={"reason": "no\nway"}), "reason")
    _named(await dev_stack.api.post(f"{url}/notes", json={"text": "\x00"}), "text")
    assert (await order.status()).waiting_for == "operator_confirmation"  # nothing changed


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/admin/audit?limit=-1", "limit"),
        ("/v1/admin/audit?target=%00", "target"),
        ("/v1/orders?cursor=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82", "cursor"),
        ("/v1/orders?cursor=garbage", "cursor"),
        ("/v1/orders?cursor=MjAyNi0xMS0yNFQxMDowMDowMHx4", "cursor"),  # the old format
        ("/v1/orders?q=%00", "q"),
        ("/v1/orders?limit=100000", "limit"),
        (f"/v1/orders/{uuid.uuid4()}/documents/%00.pdf", "kind"),
    ],
)
async def test_bad_queries_are_422(dev_stack: Stack, path: str, field: str) -> None:
    _named(await dev_stack.api.get(path), field)


async def test_a_next_cursor_pages_on(dev_stack: Stack) -> None:
    for _ in range(3):
        await Journey.place(dev_stack)
    first = (await dev_stack.api.get("/v1/orders", params={"limit": 2})).json()
    second = await dev_stack.api.get(
        "/v1/orders", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert second.status_code == 200, second.text
    later = second.json()["items"][0]
    assert later["created_at"] <= first["items"][-1]["created_at"]
    assert later["order_id"] not in [item["order_id"] for item in first["items"]]


async def test_malformed_webhooks_are_401_or_422(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    anonymous = httpx.AsyncClient(base_url=dev_stack.api.base_url)
    secret = dev_stack.settings.payment_webhook_secret
    event = {
        "event_id": f"evt-{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "order_ref": order.order_id,
        "payment_id": "pay-1",
        "amount": "500.00",
    }
    raw = json.dumps(event).encode()
    non_ascii = await anonymous.post(
        "/v1/webhooks/payment",
        content=raw,
        headers={HEADER: f"t={int(time.time())},v1=é".encode(), "content-type": "application/json"},
    )
    assert non_ascii.status_code in (401, 422), non_ascii.text
    for bad in ({"event_id": "e\x00"}, {"event_id": "e" * 500}, {"event_id": "\ud800"},
                {"type": "payment." + "x" * 100}, {"event_id": 7}):  # fmt: skip
        raw = json.dumps({**event, **bad}).encode()
        signed = await anonymous.post(
            "/v1/webhooks/payment",
            content=raw,
            headers={HEADER: sign(secret, raw), "content-type": "application/json"},
        )
        assert signed.status_code == 422, (bad, signed.text)


async def _raw_request(stack: Stack, request: bytes) -> tuple[int, bytes]:
    url = urlsplit(str(stack.api.base_url))
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_a_content_length_that_is_not_a_number_is_400(dev_stack: Stack) -> None:
    status, _ = await _raw_request(
        dev_stack,
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n\r\n{}",
    )
    assert status == 400  # the HTTP server's own parser refuses it
    # Behind a server that passes the header on, the app itself says why.
    app = create_app(dev_stack.settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as direct:
        request = direct.build_request("POST", "/v1/orders", content=b"{}")
        request.headers["Content-Length"] = "abc"
        response = await direct.send(request)
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


async def test_a_wrong_method_names_every_documented_one(dev_stack: Stack) -> None:
    answer = await dev_stack.api.request("PUT", "/v1/orders")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}
    assert answer.json()["detail"] == "Method Not Allowed"


async def test_bodies_and_queries_in_a_wrong_encoding_are_4xx(dev_stack: Stack) -> None:
    for content in (b"\xff\xfe{}", b'{"number": "\xc3\x28"}', b"not json"):
        answer = await dev_stack.api.post(
            "/v1/orders", content=content, headers={"content-type": "application/json"}
        )
        assert answer.status_code in (400, 422) and answer.json()["detail"], (content, answer.text)
    searched = await dev_stack.as_role[Role.SUPPORT].get("/v1/orders?q=%FF%FE")
    assert searched.status_code == 200 and searched.json()["items"] == []
    signed_in = await dev_stack.api.post(
        "/v1/sessions", json={"username": "a\x00", "password": "x"}
    )
    assert signed_in.status_code == 422
