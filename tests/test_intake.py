"""Orders from WooCommerce and Shopify by their signed webhooks, on the real stack: each
documented order creates an order whose workflow confirms it by e-mail; a bad signature is
401 and stores nothing; a delivery twice, or the same order under a new delivery, is one
order; an order that cannot be mapped is an intake failure in the queue, its payload in
Postgres and nowhere in Temporal; credentials never come back."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import col, select

from devstack.fixtures import fixture
from schema.api.fields import Role
from schema.database import open_session
from schema.tables import AuditEntry, IntakeDelivery, IntakeFailure, Order, OrderSource
from starter.services.access import issue_api_key
from tests.stack import Stack
from tests.support import decoded_history, order_handle, wait_for_mail
from tests.test_client_cli import _cli

SECRET = "whsec-" + "k3Yp9ZrT8mQv7Lw2NbJc5Hd9FgAe4uXo"


async def _connector(api: httpx.AsyncClient, kind: str, **extra: Any) -> str:
    name = f"{kind[:4]}-{uuid.uuid4().hex[:8]}"
    made = await api.post(
        "/v1/admin/connectors",
        json={"kind": kind, "name": name, "credentials": {"webhook_secret": SECRET}, **extra},
    )
    assert made.status_code == 201, made.text
    return name


def _signed(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _woo_body(name: str = "order_kyiv_cod") -> tuple[dict[str, Any], str]:
    """A WooCommerce fixture's order with an id and e-mail of this test's own."""
    body = fixture("woocommerce", name)["body"]
    body["id"] = int(uuid.uuid4().int % 10**9)
    email = f"olena.{uuid.uuid4().hex[:8]}@example.com"
    body["billing"]["email"] = email
    return body, email


async def _post_woo(
    api: httpx.AsyncClient,
    name: str,
    body: dict[str, Any] | bytes,
    *,
    delivery: str | None = None,
    topic: str = "order.created",
    secret: str = SECRET,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await api.post(
        f"/v1/intake/woocommerce/{name}",
        content=raw,
        headers={
            "content-type": "application/json",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Signature": _signed(raw, secret),
            "X-WC-Webhook-Delivery-ID": delivery or uuid.uuid4().hex,
        },
    )


async def _orders_from(stack: Stack, name: str) -> list[Order]:
    async with open_session(stack.engine) as session:
        return list(
            (
                await session.exec(select(Order).where(col(Order.number).startswith(f"WC-{name}-")))
            ).all()
        )


async def test_a_woocommerce_order_arrives_and_its_customer_is_confirmed(dev_stack: Stack) -> None:
    name = await _connector(dev_stack.api, "woocommerce")
    body, email = _woo_body()
    answer = await _post_woo(dev_stack.api, name, body)
    assert answer.status_code == 202 and answer.json()["outcome"] == "accepted", answer.text
    order_id = answer.json()["order_id"]
    mail = await wait_for_mail(dev_stack.maildir, email, timeout=30)
    assert f"WC-{name}-{body['id']}" in str(mail[0]["Subject"]) + str(mail[0])
    seen = (await dev_stack.api.get(f"/v1/orders/{order_id}")).json()
    assert seen["number"] == f"WC-{name}-{body['id']}"
    assert (seen["payment_method"], seen["total"]) == ("cod", "750.00")
    assert seen["customer"]["phone"] == "+380501234567"
    assert seen["source"] == {"connector": name, "kind": "woocommerce", "order_id": str(body["id"])}
    async with open_session(dev_stack.engine) as session:
        source = await session.get(OrderSource, uuid.UUID(order_id))
        assert source is not None and source.source_order_id == str(body["id"])
        created = (
            await session.exec(
                select(AuditEntry).where(
                    AuditEntry.action == "order.create", AuditEntry.target == order_id
                )
            )
        ).one()
        assert created.actor == f"connector:{name}"


async def test_the_same_delivery_twice_or_a_new_one_of_the_same_order_is_one_order(
    dev_stack: Stack,
) -> None:
    name = await _connector(dev_stack.api, "woocommerce")
    body, _ = _woo_body()
    first = await _post_woo(dev_stack.api, name, body, delivery="d-1")
    again = await _post_woo(dev_stack.api, name, body, delivery="d-1")
    updated = await _post_woo(
        dev_stack.api, name, body | {"status": "on-hold"}, delivery="d-2", topic="order.updated"
    )
    assert first.status_code == 202
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert (updated.status_code, updated.json()["outcome"]) == (200, "duplicate")
    assert again.json()["order_id"] == updated.json()["order_id"] == first.json()["order_id"]
    assert len(await _orders_from(dev_stack, name)) == 1


async def test_a_bad_signature_is_401_and_stores_nothing(dev_stack: Stack) -> None:
    name = await _connector(dev_stack.api, "woocommerce")
    body, _ = _woo_body()
    wrong = await _post_woo(dev_stack.api, name, body, secret="not-the-secret", delivery="x-1")
    raw = json.dumps(body).encode()
    unsigned = await dev_stack.api.post(
        f"/v1/intake/woocommerce/{name}",
        content=raw,
        headers={"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "x-2"},
    )
    assert wrong.status_code == unsigned.status_code == 401
    assert await _orders_from(dev_stack, name) == []
    async with open_session(dev_stack.engine) as session:
        stored = (
            await session.exec(
                select(func.count())
                .select_from(IntakeDelivery)
                .where(col(IntakeDelivery.delivery_id).in_(["x-1", "x-2"]))
            )
        ).one()
    assert stored == 0
    # The signature was the only thing wrong: signed, the same delivery is taken.
    assert (await _post_woo(dev_stack.api, name, body, delivery="x-1")).status_code == 202


async def test_woocommerces_ping_is_answered_and_another_kinds_url_is_404(
    dev_stack: Stack,
) -> None:
    name = await _connector(dev_stack.api, "woocommerce")
    ping = await dev_stack.api.post(
        f"/v1/intake/woocommerce/{name}",
        content=b"webhook_id=15",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (ping.status_code, ping.json()["outcome"]) == (200, "ping")
    assert (
        await dev_stack.api.post(f"/v1/intake/shopify/{name}", content=b"{}")
    ).status_code == 404
    assert (
        await dev_stack.api.post("/v1/intake/woocommerce/nobody", content=b"{}")
    ).status_code == 404


async def test_a_shopify_order_arrives_and_its_customer_is_confirmed(dev_stack: Stack) -> None:
    """Through the simulator: the store signs and posts its fixture's order, as Shopify does."""
    name = await _connector(dev_stack.api, "shopify")
    email = f"andrii.{uuid.uuid4().hex[:8]}@example.com"
    order = {"id": int(uuid.uuid4().int % 10**15), "email": email}
    webhook = {"connector": name, "secret": SECRET, "fixture": "orders_create_lviv_cod"}
    sent = (
        await dev_stack.sim.post(
            "/shopify/sim/orders", json=webhook | {"changes": order, "delivery_id": "s-1"}
        )
    ).json()
    assert (sent["status"], sent["answer"]["outcome"]) == (202, "accepted"), sent
    again = (
        await dev_stack.sim.post(
            "/shopify/sim/orders", json=webhook | {"changes": order, "delivery_id": "s-1"}
        )
    ).json()
    assert (again["status"], again["answer"]["order_id"]) == (200, sent["answer"]["order_id"])
    forged = (
        await dev_stack.sim.post(
            "/shopify/sim/orders", json=webhook | {"changes": order, "secret": "forged"}
        )
    ).json()
    assert forged["status"] == 401
    await wait_for_mail(dev_stack.maildir, email, timeout=30)
    seen = (await dev_stack.api.get(f"/v1/orders/{sent['answer']['order_id']}")).json()
    assert (seen["number"], seen["total"]) == (f"SH-{name}-{order['id']}", "460.00")


async def test_an_order_that_cannot_be_mapped_waits_in_the_queue_its_payload_out_of_temporal(
    dev_stack: Stack,
) -> None:
    name = await _connector(dev_stack.api, "woocommerce")
    body, email = _woo_body()
    body["billing"]["phone"] = ""
    answer = await _post_woo(dev_stack.api, name, body)
    assert (answer.status_code, answer.json()["outcome"]) == (202, "failed")
    failure_id = answer.json()["failure_id"]
    # Saved again in the shop, still without a phone but now a number that is none: the
    # same failure, saying the newer why.
    body["billing"]["phone"] = "12"
    again = await _post_woo(dev_stack.api, name, body, topic="order.updated")
    assert again.json()["failure_id"] == failure_id
    listed = (await dev_stack.api.get("/v1/intake/failures")).json()
    mine = [f for f in listed if f["connector"] == name]
    assert [(f["id"], f["field"]) for f in mine] == [(failure_id, "customer.phone")]
    async with open_session(dev_stack.engine) as session:
        failure = await session.get(IntakeFailure, failure_id)
        assert failure is not None and failure.payload is not None
        assert failure.payload["billing"]["email"] == email
    assert await _orders_from(dev_stack, name) == []
    # The shop corrects the phone: its next delivery takes the order, and settles the failure.
    body["billing"]["phone"] = "+380501234567"
    taken = await _post_woo(dev_stack.api, name, body, topic="order.updated")
    assert taken.json()["outcome"] == "accepted"
    async with open_session(dev_stack.engine) as session:
        failure = await session.get(IntakeFailure, failure_id)
        assert failure is not None and failure.status == "resolved" and failure.payload is None
    # Another order of hers that cannot be taken: erasing her takes its payload too.
    later, _ = _woo_body()
    later["billing"] |= {"email": email, "phone": ""}
    second = (await _post_woo(dev_stack.api, name, later)).json()["failure_id"]
    erased = await dev_stack.api.post("/v1/admin/erasures", json={"email": email})
    assert erased.status_code == 200, erased.text
    async with open_session(dev_stack.engine) as session:
        assert await session.get(IntakeFailure, second) is None
    history = await order_handle(dev_stack.client, taken.json()["order_id"]).fetch_history()
    text = decoded_history(history.to_json())
    for personal in (email, "Коваль", "Хрещатик", "380501234567"):
        assert personal not in text


async def test_credentials_are_write_only_and_every_change_is_audited(dev_stack: Stack) -> None:
    name = await _connector(dev_stack.api, "woocommerce", settings={"locale": "en"})
    listed = (await dev_stack.api.get("/v1/admin/connectors")).text
    one = await dev_stack.api.get(f"/v1/admin/connectors/{name}")
    assert SECRET not in listed and SECRET not in one.text
    assert one.json()["credentials"] == {"webhook_secret": "stored"}
    assert one.json()["settings"]["locale"] == "en"
    assert one.json()["settings"]["branch_ref_meta"] == "warehouse_id"  # defaults filled in
    assert one.json()["webhook_path"] == f"/v1/intake/woocommerce/{name}"
    patched = await dev_stack.api.patch(
        f"/v1/admin/connectors/{name}",
        json={"credentials": {"webhook_secret": "env:SHOP_WC_SECRET"}, "enabled": False},
    )
    assert patched.json()["credentials"] == {"webhook_secret": "environment"}
    assert patched.json()["enabled"] is False
    body, _ = _woo_body()
    assert (await _post_woo(dev_stack.api, name, body)).status_code == 404  # disabled
    async with open_session(dev_stack.engine) as session:
        stored = (
            await session.exec(
                select(AuditEntry).where(col(AuditEntry.action).startswith("connector."))
            )
        ).all()
    assert {"connector.create", "connector.update"} <= {entry.action for entry in stored}
    assert SECRET not in json.dumps([entry.detail for entry in stored])
    refused = [
        (
            {"kind": "woocommerce", "name": "Bad Name", "credentials": {"webhook_secret": "x"}},
            "name",
        ),
        ({"kind": "shopify", "name": "ok-name", "credentials": {}}, "credentials.webhook_secret"),
        (
            {
                "kind": "shopify",
                "name": "ok-name",
                "credentials": {"webhook_secret": "x", "api_token": "y"},
            },
            "credentials.api_token",
        ),
        (
            {
                "kind": "woocommerce",
                "name": "ok-name",
                "credentials": {"webhook_secret": "x"},
                "settings": {"locale": "de"},
            },
            "settings.locale",
        ),
    ]
    for bad, field in refused:
        answer = await dev_stack.api.post("/v1/admin/connectors", json=bad)
        assert answer.status_code == 422 and field in answer.json()["detail"], answer.text
    taken = await dev_stack.api.post(
        "/v1/admin/connectors",
        json={"kind": "shopify", "name": name, "credentials": {"webhook_secret": "x"}},
    )
    assert taken.status_code == 409
    assert (await dev_stack.as_role[Role.OPERATOR].get("/v1/admin/connectors")).status_code == 403
    assert (await dev_stack.api.delete(f"/v1/admin/connectors/{name}")).status_code == 204
    assert (await dev_stack.api.get(f"/v1/admin/connectors/{name}")).status_code == 404


async def test_the_cli_configures_a_connector_and_lists_what_it_could_not_take(
    dev_stack: Stack,
) -> None:
    async with open_session(dev_stack.engine) as session:
        key = await issue_api_key(session, name="cli-admin", role=Role.ADMIN)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    made = await asyncio.to_thread(
        _cli,
        dev_stack,
        key,
        "connectors",
        "create",
        "woocommerce",
        name,
        "--credential",
        f"webhook_secret={SECRET}",
        "--settings",
        '{"locale": "ru"}',
    )
    assert made.returncode == 0, made.stderr
    assert SECRET not in made.stdout and f"/v1/intake/woocommerce/{name}" in made.stdout
    body, _ = _woo_body()
    body["billing"]["phone"] = ""
    failure_id = (await _post_woo(dev_stack.api, name, body)).json()["failure_id"]
    listed = await asyncio.to_thread(_cli, dev_stack, key, "connectors", "failures", "--json")
    mine = next(f for f in json.loads(listed.stdout) if f["id"] == failure_id)
    assert (mine["connector"], mine["field"]) == (name, "billing.phone")
    resolved = await asyncio.to_thread(
        _cli, dev_stack, key, "connectors", "resolve", str(failure_id)
    )
    assert resolved.returncode == 0, resolved.stderr
    assert failure_id not in [
        f["id"] for f in (await dev_stack.api.get("/v1/intake/failures")).json()
    ]
    disabled = await asyncio.to_thread(
        _cli, dev_stack, key, "connectors", "update", name, "--disabled", "--json"
    )
    assert json.loads(disabled.stdout)["enabled"] is False
    table = await asyncio.to_thread(_cli, dev_stack, key, "connectors", "list")
    assert name in table.stdout and SECRET not in table.stdout
    refused = await asyncio.to_thread(
        _cli, dev_stack, key, "connectors", "create", "shopify", f"{name}-2"
    )
    assert (
        refused.returncode != 0 and "credentials.webhook_secret" in refused.stdout + refused.stderr
    )
