"""Order events for the shop's backend, on the real stack: subscriptions through the API, the
outbox written with the read model, the workers' dispatcher, and a receiver over HTTP (the
simulators' /shop, or one of the test's own) that checks every signature as a shop would."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from activities import shop_events
from activities.providers import make_http_client
from activities.shop_events import ShopEventDispatcher
from devstack.harness import free_port
from devstack.postgres import EmbeddedPostgres
from schema.api.fields import Role
from schema.api.subscriptions import SubscriptionIn
from schema.database import make_engine, open_session
from schema.shop_events import HEADER, ShopEventType
from schema.tables import Customer, Order, ShopDelivery, WebhookSubscription
from starter.services import subscriptions
from starter.services.access import Principal
from starter.services.errors import InputRefused
from tests.conftest import database_of_its_own
from tests.lifecycle import Journey
from tests.stack import Stack, serve
from tests.support import eventually, sample_order
from worker import client_meter

ALL_TYPES = [t.value for t in ShopEventType]


@pytest.fixture
async def receiver(dev_stack: Stack) -> AsyncIterator[str]:
    """The simulators' shop backend, forgetting what it was told before."""
    await dev_stack.sim.post("/shop/sim/refuse", params={"count": 0, "seconds": 0})
    yield f"{str(dev_stack.sim.base_url).rstrip('/')}/shop/events"


@pytest.fixture
async def subscribed(dev_stack: Stack, receiver: str) -> AsyncIterator[dict[str, Any]]:
    """An admin's subscription to every event type, its secret given to the receiver; deleted
    after the test (other tests' orders are heard of meanwhile: tests filter by order)."""
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions", json={"url": receiver, "events": ALL_TYPES}
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    await dev_stack.sim.post("/shop/sim/secret", json={"secret": subscription["secret"]})
    yield subscription
    await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")


async def _received(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    arrived = (await stack.sim.get("/shop/sim/events")).json()
    return [a for a in arrived if a["event"]["data"]["order_id"] == order_id]


async def _types_arrived(stack: Stack, order_id: str, *types: str) -> list[dict[str, Any]]:
    async def all_there() -> list[dict[str, Any]] | None:
        got = await _received(stack, order_id)
        return got if set(types) <= {a["event"]["type"] for a in got} else None

    return await eventually(all_there, 30, what=f"events {types} for {order_id}")


def _hand_checked(secret: str, raw: str, header: str) -> bool:
    """The signature as the issue states it, computed by hand (not with our own helper)."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    mac = hmac.new(secret.encode(), f"{parts['t']}.{raw}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


async def test_the_shop_hears_every_step_signed_in_order_without_personal_data(
    dev_stack: Stack, subscribed: dict[str, Any]
) -> None:
    body = sample_order(
        customer={
            "name": "Olena Shevchenko",
            "email": f"olena.{uuid.uuid4().hex[:6]}@example.com",
            "phone": "+380671112233",
            "locale": "uk",
        }
    )
    response = await dev_stack.api.post("/v1/orders", json=body)
    order = Journey(dev_stack, response.json()["order_id"], body)
    await order.to_delivery()
    arrived = await _types_arrived(
        dev_stack, order.order_id, "order.confirmed", "order.shipped", "order.delivered"
    )
    types = [a["event"]["type"] for a in arrived]
    # Every step, in the order it happened, each once.
    assert types == [
        "order.received",
        "order.confirmed",
        "order.awaiting_action",  # the payment link went out
        "order.paid",
        "order.packed",
        "order.shipped",
        "order.delivered",
    ], types
    secret = subscribed["secret"]
    for delivery in arrived:
        assert delivery["signature_valid"] is True
        assert _hand_checked(secret, delivery["raw"], delivery["signature"])
        raw = delivery["raw"]
        for personal in (
            "Olena",
            "Shevchenko",
            body["customer"]["email"],
            "380671112233",
            "Khreshchatyk",
            "01001",
            "Kyiv",
        ):
            assert personal not in raw, f"{personal} in {raw}"
        event = delivery["event"]
        assert set(event) == {"id", "type", "created_at", "data"}
        assert event["data"]["order_id"] == order.order_id
        assert event["data"]["number"] == body["number"]
        assert {"stage", "status"} <= set(event["data"])
    assert len({a["event"]["id"] for a in arrived}) == len(arrived)
    shipped = next(a["event"]["data"] for a in arrived if a["event"]["type"] == "order.shipped")
    refs = await order.refs()
    assert shipped["tracking_number"] == refs.tracking_number and shipped["carrier"]
    paid = next(a["event"]["data"] for a in arrived if a["event"]["type"] == "order.paid")
    assert paid == {**paid, "amount": "500.00", "currency": "UAH"}

    # The delivery log says the same.
    log = await dev_stack.api.get(
        f"/v1/webhook-subscriptions/{subscribed['id']}/deliveries",
        params={"order_id": order.order_id},
    )
    assert log.status_code == 200
    rows = log.json()["items"]
    assert [row["type"] for row in reversed(rows)] == types
    assert all(row["status"] == "delivered" and row["attempts"] == 1 for row in rows)

    # Redelivered: the same event id and the same body, signed anew.
    first = rows[-1]
    again = await dev_stack.api.post(
        f"/v1/webhook-subscriptions/{subscribed['id']}/deliveries/{first['id']}/redeliver"
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"

    async def repeated() -> list[dict[str, Any]] | None:
        same = [
            a
            for a in await _received(dev_stack, order.order_id)
            if a["event"]["id"] == first["event_id"]
        ]
        return same if len(same) == 2 else None

    twice = await eventually(repeated, 15, what="the redelivery")
    assert twice[0]["raw"] == twice[1]["raw"] and twice[1]["signature_valid"] is True


async def test_the_shop_hears_of_refunds_and_of_each_step_of_a_return(
    dev_stack: Stack, subscribed: dict[str, Any]
) -> None:
    order = await Journey.place(dev_stack)  # two mugs, 500.00 paid
    await order.to_delivery()
    refund = await dev_stack.as_role[Role.OPERATOR].post(
        f"/v1/orders/{order.order_id}/refunds",
        json={"amount": "50.00", "reason": "goodwill"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status_code == 201, refund.text
    asked = await order.ask_for_return(
        {
            "lines": [{"sku": "MUG-01", "quantity": 1}],
            "reason": "wrong_size",
            "comment": "Too small for Olena",
        }
    )
    assert asked.status_code == 201, asked.text
    opened = asked.json()
    for scan in ("InTransit", "Delivered"):
        await order.parcel_event(opened["tracking_number"], scan)
    await order.return_reached("received")
    await dev_stack.sim.post(
        f"/warehouse/sim/returns/{opened['return_id']}/inspect",
        json={"lines": [{"sku": "MUG-01", "received": 1, "accepted": 1}]},
    )

    arrived = await _types_arrived(dev_stack, order.order_id, "return.refunded")
    events = [a["event"] for a in arrived]
    assert [e["type"] for e in events][-5:] == [
        "order.refunded",
        "return.requested",
        "return.approved",
        "return.received",
        "return.refunded",
    ]
    refunded = next(e["data"] for e in events if e["type"] == "order.refunded")
    assert (refunded["amount"], refunded["currency"], refunded["reason"]) == (
        "50.00",
        "UAH",
        "goodwill",
    )
    steps = {e["type"]: e["data"] for e in events if e["type"].startswith("return.")}
    for data in steps.values():
        assert (data["return_id"], data["return_number"]) == (opened["return_id"], opened["number"])
        assert data["order_id"] == order.order_id
    requested = steps["return.requested"]
    assert (requested["reason"], requested["resolution"]) == ("wrong_size", "refund")
    paid_back = steps["return.refunded"]
    assert (paid_back["amount"], paid_back["by_hand"]) == ("250.00", False)
    assert all(a["signature_valid"] for a in arrived)
    assert not [a for a in arrived if "Too small" in a["raw"] or "Olena" in a["raw"]]


async def test_a_receiver_down_for_a_while_loses_nothing_and_keeps_each_order_in_order(
    dev_stack: Stack, subscribed: dict[str, Any]
) -> None:
    """Down for 4 s with the tests' backoff (0.1 s doubling to 1 s, the production
    default's 5 s to 10 min scaled down): every event arrives after it, in order per order."""
    await dev_stack.sim.post("/shop/sim/refuse", params={"seconds": 4})
    orders = [await Journey.place(dev_stack, payment={"method": "cod"}) for _ in range(2)]
    for order in orders:
        await order.waiting_for("packing")
    refused = (await dev_stack.sim.get("/shop/sim/refused")).json()["refused"]
    assert refused > 0  # the receiver was really hit while down
    for order in orders:
        arrived = await _types_arrived(dev_stack, order.order_id, "order.confirmed")
        assert [a["event"]["type"] for a in arrived] == ["order.received", "order.confirmed"]
        log = await dev_stack.api.get(
            f"/v1/webhook-subscriptions/{subscribed['id']}/deliveries",
            params={"order_id": order.order_id},
        )
        attempts = {row["type"]: row["attempts"] for row in log.json()["items"]}
        assert attempts["order.received"] > 1  # retried while the receiver was down


async def test_a_service_key_hears_only_of_the_orders_it_created(
    dev_stack: Stack, receiver: str
) -> None:
    service = dev_stack.as_role[Role.SERVICE]
    created = await service.post(
        "/v1/webhook-subscriptions", json={"url": receiver, "events": ["order.confirmed"]}
    )
    assert created.status_code == 201 and created.json()["scope"] == "own_orders"
    subscription = created.json()
    try:
        mine = await service.post("/v1/orders", json=sample_order())
        theirs = await Journey.place(dev_stack)  # the admin's key
        await Journey(dev_stack, mine.json()["order_id"], {}).reached("order.confirmed")
        await theirs.reached("order.confirmed")

        async def delivered() -> list[dict[str, Any]] | None:
            page = await service.get(f"/v1/webhook-subscriptions/{subscription['id']}/deliveries")
            items = [i for i in page.json()["items"] if i["status"] == "delivered"]
            return items or None

        items = await eventually(delivered, 15, what="a delivery")
        await asyncio.sleep(0.5)  # time enough for a wrong one to be queued too
        page = await service.get(f"/v1/webhook-subscriptions/{subscription['id']}/deliveries")
        assert {i["order_id"] for i in page.json()["items"]} == {mine.json()["order_id"]}
        assert [i["type"] for i in items] == ["order.confirmed"]
        # Another key's subscription is not there for it; the admin sees every one.
        admins = await dev_stack.api.get("/v1/webhook-subscriptions")
        assert subscription["id"] in [s["id"] for s in admins.json()]
        hidden = await dev_stack.as_role[Role.SERVICE].get(
            f"/v1/webhook-subscriptions/{uuid.uuid4()}"
        )
        assert hidden.status_code == 404
        assert "secret" not in json.dumps(admins.json())
    finally:
        gone = await service.delete(f"/v1/webhook-subscriptions/{subscription['id']}")
        assert gone.status_code == 204
    again = await service.get(f"/v1/webhook-subscriptions/{subscription['id']}")
    assert again.status_code == 404


async def test_a_revoked_key_hears_nothing_more_and_staff_are_never_services(
    dev_stack: Stack, receiver: str
) -> None:
    issued = await dev_stack.api.post(
        "/v1/admin/keys", json={"name": f"leaked-{uuid.uuid4().hex[:6]}", "role": "service"}
    )
    assert issued.status_code == 201, issued.text
    leaked = httpx.AsyncClient(
        base_url=dev_stack.api.base_url,
        headers={"Authorization": f"Bearer {issued.json()['key']}"},
    )
    async with leaked:
        created = await leaked.post(
            "/v1/webhook-subscriptions", json={"url": receiver, "events": ["order.confirmed"]}
        )
        assert created.status_code == 201, created.text
        placed = await leaked.post("/v1/orders", json=sample_order())
        assert placed.status_code == 202, placed.text
    subscription = created.json()["id"]
    await Journey(dev_stack, placed.json()["order_id"], {}).reached("order.confirmed")
    keys = (await dev_stack.api.get("/v1/admin/keys")).json()
    [key] = [k for k in keys if k["name"] == issued.json()["name"]]
    assert (await dev_stack.api.delete(f"/v1/admin/keys/{key['id']}")).status_code == 200
    # Its subscription stops with it: paused, and nothing more is queued for it.
    paused = (await dev_stack.api.get(f"/v1/webhook-subscriptions/{subscription}")).json()
    assert paused["active"] is False
    async with open_session(dev_stack.engine) as session:
        queued_before = len(
            (
                await session.exec(
                    select(ShopDelivery).where(
                        ShopDelivery.subscription_id == uuid.UUID(subscription)
                    )
                )
            ).all()
        )
    async with open_session(dev_stack.engine) as session:
        await shop_events.record(
            session,
            order_id=uuid.UUID(placed.json()["order_id"]),
            type=ShopEventType.CONFIRMED,
            at=datetime.now(UTC),
            data={},
        )
        await session.commit()
        queued_after = (
            await session.exec(
                select(ShopDelivery).where(ShopDelivery.subscription_id == uuid.UUID(subscription))
            )
        ).all()
    assert len(queued_after) == queued_before
    # Nor does it start again: an admin's (or the console's) re-activation is refused.
    again = await dev_stack.api.patch(
        f"/v1/webhook-subscriptions/{subscription}", json={"active": True}
    )
    assert again.status_code == 409 and "revoked" in again.json()["detail"], again.text
    still = (await dev_stack.api.get(f"/v1/webhook-subscriptions/{subscription}")).json()
    assert still["active"] is False

    # A staff account is a person: never a service (whose subscription would be every order's).
    refused = await dev_stack.api.post(
        "/v1/admin/accounts",
        json={
            "username": f"svc{uuid.uuid4().hex[:6]}",
            "password": "long enough pw",
            "role": "service",
        },
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["role"]


async def test_subscriptions_are_managed_by_admins_and_services_only(
    dev_stack: Stack, receiver: str
) -> None:
    for role in (Role.OPERATOR, Role.SUPPORT):
        refused = await dev_stack.as_role[role].post(
            "/v1/webhook-subscriptions", json={"url": receiver, "events": ["order.shipped"]}
        )
        assert refused.status_code == 403, role
    bad = await dev_stack.api.post(
        "/v1/webhook-subscriptions", json={"url": "ftp://shop.example", "events": ["order.nope"]}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"url", "events.0"}
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions",
        json={"url": f"{receiver}?token=receivers-own", "events": ["order.shipped"]},
    )
    subscription = created.json()
    assert subscription["secret"].startswith("whsec_") and subscription["scope"] == "all_orders"
    audited = await dev_stack.api.get("/v1/admin/audit", params={"target": subscription["id"]})
    assert [e["detail"]["url"] for e in audited.json()] == [receiver]  # never the query
    paused = await dev_stack.api.patch(
        f"/v1/webhook-subscriptions/{subscription['id']}",
        json={"active": False, "events": ["order.shipped", "order.delivered"]},
    )
    assert paused.status_code == 200
    assert paused.json()["active"] is False
    assert paused.json()["events"] == ["order.delivered", "order.shipped"]
    assert "secret" not in paused.json()
    assert (
        await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")
    ).status_code == 204


# --- the dispatcher alone: several of them, a flaky receiver, the backoff ----------------------


@dataclass
class FlakyShop:
    """A receiver that answers 500 to about a fifth of the deliveries and takes its time."""

    arrived: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/events")
        async def events(request: Request) -> JSONResponse:
            await asyncio.sleep(random.uniform(0, 0.02))
            if random.random() < 0.2:
                self.failures += 1
                return JSONResponse({"down": True}, status_code=500)
            self.arrived.append(json.loads(await request.body()))
            assert request.headers[HEADER].startswith("t=")
            return JSONResponse({"ok": True})

        return app


async def test_several_dispatchers_deliver_each_event_once_in_order_per_order(
    dev_stack: Stack,
) -> None:
    """Three more dispatchers (each with its own connections, as separate worker processes
    have) beside the stack's: every event of 4 orders arrives, each order's in order,
    through a receiver that fails a fifth of the time."""
    shop = FlakyShop()
    port = free_port()
    async with serve(shop.app(), port):
        created = await dev_stack.api.post(
            "/v1/webhook-subscriptions",
            json={"url": f"http://127.0.0.1:{port}/events", "events": ["incident.opened"]},
        )
        subscription = created.json()
        orders = [await Journey.place(dev_stack, payment={"method": "cod"}) for _ in range(4)]
        # Synthetic events, written as the activities write them: the order's row locked.
        for n in range(15):
            for order in orders:
                async with open_session(dev_stack.engine) as session:
                    await session.exec(
                        select(Order).where(Order.id == uuid.UUID(order.order_id)).with_for_update()
                    )
                    await shop_events.record(
                        session,
                        order_id=uuid.UUID(order.order_id),
                        type=ShopEventType.INCIDENT_OPENED,
                        at=datetime.now(UTC),
                        data={"n": n},
                    )
                    await session.commit()
        stop = asyncio.Event()
        engines = [make_engine(dev_stack.settings.database_url) for _ in range(3)]
        async with make_http_client(5) as http:
            runs = [
                asyncio.create_task(ShopEventDispatcher(engine, http, dev_stack.settings).run(stop))
                for engine in engines
            ]

            async def all_arrived() -> bool:
                return len({e["id"] for e in shop.arrived}) == 60

            await eventually(all_arrived, 60, what="60 events")
            stop.set()
            await asyncio.gather(*runs)
        for engine in engines:
            await engine.dispose()
        await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")
    assert shop.failures > 0
    assert len(shop.arrived) == 60  # once each: no claimed delivery was sent twice
    for order in orders:
        ns = [e["data"]["n"] for e in shop.arrived if e["data"]["order_id"] == order.order_id]
        assert ns == list(range(15)), ns


async def test_a_receiver_that_trickles_its_answer_is_given_up_on_in_time(
    dev_stack: Stack,
) -> None:
    """A header line every half second never trips a per-read timeout: the attempt as a
    whole is bounded, so one slow receiver cannot hold every shop's events."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for n in range(240):
                await writer.drain()
                await asyncio.sleep(0.5)
                writer.write(f"X-Slow-{n}: .\r\n".encode())
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions",
        json={"url": f"http://127.0.0.1:{port}/events", "events": ["incident.opened"]},
    )
    subscription = created.json()["id"]
    try:
        order = await Journey.place(dev_stack, payment={"method": "cod"})
        async with open_session(dev_stack.engine) as session:
            await shop_events.record(
                session,
                order_id=uuid.UUID(order.order_id),
                type=ShopEventType.INCIDENT_OPENED,
                at=datetime.now(UTC),
                data={},
            )
            await session.commit()

        async def given_up() -> dict[str, Any] | None:
            page = await dev_stack.api.get(f"/v1/webhook-subscriptions/{subscription}/deliveries")
            tried = [i for i in page.json()["items"] if i["attempts"] > 0]
            return tried[0] if tried else None

        limit = dev_stack.settings.shop_events_timeout_seconds
        tried = await eventually(given_up, 3 * limit, what="the attempt given up")
        assert tried["status"] == "pending" and tried["last_status_code"] is None
        assert tried["last_error"] == f"no answer within {limit:g} s"
    finally:
        await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription}")
        server.close()


async def test_outside_the_devstack_events_go_to_public_addresses_only(dev_stack: Stack) -> None:
    """No subscription, and no attempt, reaches the worker's own network (the devstack's
    receivers are on 127.0.0.1, so the check is off there)."""
    outside = dev_stack.settings.model_copy(update={"devstack": False})
    inside = [
        "https://127.0.0.1/hook",
        "https://2130706433/hook",  # 127.0.0.1 as one number
        "https://10.0.0.5:6443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
    ]
    for url in [*inside, "https://[::1]/hook"]:
        assert await shop_events.private_receiver(url) is not None, url
    assert await shop_events.private_receiver("https://93.184.215.14/hook") is None  # public
    admin = Principal("staff:admin", Role.ADMIN, None)
    async with open_session(dev_stack.engine) as session:
        for url in inside:
            body = SubscriptionIn(url=url, events=[ShopEventType.CONFIRMED])
            with pytest.raises(InputRefused) as refused:
                await subscriptions.create_subscription(
                    session, caller=admin, body=body, settings=outside
                )
            assert refused.value.field == "url" and "not a public address" in str(refused.value)
    # A name that resolved elsewhere when it was subscribed is checked again at every attempt.
    row = SimpleNamespace(
        url="https://127.0.0.1/hook", secret="s", payload={"id": "e", "type": "t"}
    )
    dispatcher = ShopEventDispatcher(None, None, outside)  # type: ignore[arg-type]
    refused_now = await dispatcher._post(row)  # type: ignore[arg-type]
    assert refused_now == (None, "refused: 127.0.0.1 is not a public address (127.0.0.1)")


def test_the_backoff_rides_out_an_hour_down_and_gives_up_only_after_the_window() -> None:
    """The production defaults: 5 s doubling, capped at 10 min, retried for 72 h."""
    from settings import Settings

    settings = Settings(devstack=True)
    dispatcher = ShopEventDispatcher(None, None, settings)  # type: ignore[arg-type]
    waited, attempts = timedelta(0), 0
    while waited < timedelta(hours=1):
        attempts += 1
        wait = dispatcher.backoff(attempts)
        assert wait <= settings.shop_events_retry_max * 1.2
        waited += wait
    # An hour down costs a dozen or so attempts, and the next try comes within 12 minutes.
    assert 10 <= attempts <= 20
    assert settings.shop_events_retry_for >= timedelta(hours=24)


async def test_a_delivery_past_its_window_is_given_up_and_can_be_redelivered(
    dev_stack: Stack,
) -> None:
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/closed", "events": ["order.received"]},
    )
    subscription = created.json()
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    await order.reached("order.confirmed")
    sid = uuid.UUID(subscription["id"])
    async with open_session(dev_stack.engine) as session:
        # Queued three days and an hour ago: the next failure is the last.
        await session.execute(
            update(ShopDelivery)
            .where(col(ShopDelivery.subscription_id) == sid)
            .values(queued_at=datetime.now(UTC) - timedelta(hours=73))
        )
        await session.commit()

    async def failed() -> list[dict[str, Any]] | None:
        page = await dev_stack.api.get(
            f"/v1/webhook-subscriptions/{sid}/deliveries", params={"status": "failed"}
        )
        return page.json()["items"] or None

    items = await eventually(failed, 15, what="a delivery given up")
    assert items[0]["last_status_code"] is None and "ConnectError" in items[0]["last_error"]
    listed = await dev_stack.api.get(f"/v1/webhook-subscriptions/{sid}")
    assert listed.json()["failed"] == 1
    again = await dev_stack.api.post(
        f"/v1/webhook-subscriptions/{sid}/deliveries/{items[0]['id']}/redeliver"
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"
    async with open_session(dev_stack.engine) as session:
        row = await session.get(ShopDelivery, items[0]["id"])
        assert row is not None and row.queued_at is not None
        assert row.queued_at > datetime.now(UTC) - timedelta(minutes=1)  # a new window
    await dev_stack.api.delete(f"/v1/webhook-subscriptions/{sid}")
    async with open_session(dev_stack.engine) as session:
        left = await session.exec(
            select(ShopDelivery).where(col(ShopDelivery.subscription_id) == sid)
        )
        assert left.all() == []


async def _queued(engine: AsyncEngine, receivers: dict[str, str], orders: int) -> list[Order]:
    """On a database of its own: `orders` orders, a subscription per receiver (its URL) to
    `order.delayed` (`incident.opened` for one named "fast"), and every order's delay event
    queued for all but "fast"."""
    async with open_session(engine) as session:
        customer = Customer(email=f"lanes-{uuid.uuid4().hex[:6]}@example.com")
        session.add(customer)
        placed = [
            Order(
                number=f"LANE-{n}-{uuid.uuid4().hex[:6]}",
                customer_id=customer.id,
                delivery_method="courier",
                payment_method="cod",
                currency="UAH",
                total=Decimal("1.00"),
                stage="transit",
                status="in_transit",
                request_hash="-",
            )
            for n in range(orders)
        ]
        session.add_all(placed)
        for name, url in receivers.items():
            wants = ShopEventType.INCIDENT_OPENED if name == "fast" else ShopEventType.DELAYED
            session.add(
                WebhookSubscription(
                    url=url, events=[wants.value], secret="whsec_test", created_by="test"
                )
            )
        await session.commit()
        for order in placed:
            at = datetime.now(UTC)
            await shop_events.record(
                session, order_id=order.id, type=ShopEventType.DELAYED, at=at, data={}
            )
        await session.commit()
    return placed


async def test_a_slow_receiver_delays_only_its_own_events(
    postgres: EmbeddedPostgres, dev_stack: Stack
) -> None:
    """One shop's receiver answers in 2.5 s and has ten orders' events waiting; another
    shop's event, written meanwhile, arrives within a second (one dispatcher on a database of
    its own, at most 5 in flight, as a busy worker would have)."""
    arrived: dict[str, float] = {}
    app = FastAPI()

    @app.post("/slow")
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(2.5)
        return JSONResponse({})

    @app.post("/fast")
    async def fast(request: Request) -> JSONResponse:
        arrived[(await request.json())["id"]] = asyncio.get_running_loop().time()
        return JSONResponse({})

    port = free_port()
    receivers = {name: f"http://127.0.0.1:{port}/{name}" for name in ("slow", "fast")}
    with database_of_its_own(postgres, "lanes") as url:
        settings = dev_stack.settings.model_copy(
            update={"database_url": url, "shop_events_batch": 5}
        )
        engine = make_engine(url)
        try:
            orders = await _queued(engine, receivers, 11)
            stop = asyncio.Event()
            async with serve(app, port), make_http_client(5) as http:
                meter = client_meter(dev_stack.client)
                dispatching = asyncio.create_task(
                    ShopEventDispatcher(engine, http, settings, meter).run(stop)
                )
                await asyncio.sleep(0.5)  # the slow receiver's events are under way
                async with open_session(engine) as session:
                    await shop_events.record(
                        session,
                        order_id=orders[10].id,
                        type=ShopEventType.INCIDENT_OPENED,
                        at=datetime.now(UTC),
                        data={},
                    )
                    await session.commit()
                written = asyncio.get_running_loop().time()

                async def heard() -> bool:
                    return bool(arrived)

                await eventually(heard, 15, what="the other shop's event")
                stop.set()
                await dispatching
            waited = next(iter(arrived.values())) - written
            print(f"the other shop's event arrived {waited:.2f} s after it was written")
            assert waited < 1.0
        finally:
            await engine.dispose()


async def test_a_failing_receiver_rests_instead_of_taking_every_retry_at_once(
    postgres: EmbeddedPostgres, dev_stack: Stack
) -> None:
    """Twelve orders' events for a receiver that answers 500: it is tried four at a time
    (its concurrency), then rests for the backoff, not twelve times at once and again."""
    tried: list[float] = []
    app = FastAPI()

    @app.post("/down")
    async def down(request: Request) -> JSONResponse:
        tried.append(asyncio.get_running_loop().time())
        return JSONResponse({}, status_code=500)

    port = free_port()
    with database_of_its_own(postgres, "rest") as url:
        settings = dev_stack.settings.model_copy(
            update={
                "database_url": url,
                "shop_events_retry_base": timedelta(seconds=2),
                "shop_events_retry_max": timedelta(seconds=10),
            }
        )
        engine = make_engine(url)
        try:
            await _queued(engine, {"down": f"http://127.0.0.1:{port}/down"}, 12)
            stop = asyncio.Event()
            async with serve(app, port), make_http_client(5) as http:
                meter = client_meter(dev_stack.client)
                dispatching = asyncio.create_task(
                    ShopEventDispatcher(engine, http, settings, meter).run(stop)
                )
                await asyncio.sleep(1.2)
                stop.set()
                await dispatching
        finally:
            await engine.dispose()
    assert len(tried) == 4, tried  # one wave, then rest (1.6-2.4 s)


async def test_an_attempt_connects_to_the_address_it_checked(
    dev_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers a public address for the check and the worker's
    own network for a second look-up. The attempt never looks again: it goes to the address
    checked, under the receiver's name (Host and TLS server name). No packet leaves the
    machine: the HTTP client here records the request instead of sending it."""
    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1"])

    async def rebinding(host: str, port: object, **kwargs: object) -> list[Any]:
        return [(2, 1, 6, "", (next(answers), 443))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    outside = dev_stack.settings.model_copy(update={"devstack": False})
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        dispatcher = ShopEventDispatcher(None, http, outside)  # type: ignore[arg-type]
        row = SimpleNamespace(
            url="https://shop.example:8443/hooks?t=1",
            secret="s",
            payload={"id": "e", "type": "t"},
        )
        assert await dispatcher._post(row) == (204, None)  # type: ignore[arg-type]
    [request] = sent
    assert str(request.url) == "https://93.184.215.14:8443/hooks?t=1"
    assert request.headers["host"] == "shop.example:8443"
    assert request.headers["connection"] == "close"  # no pooled connection of another name
    assert request.extensions["sni_hostname"] == "shop.example"


async def test_a_new_subscription_hears_the_very_next_step(dev_stack: Stack, receiver: str) -> None:
    """The worker keeps for a few seconds which event types are subscribed to, to spare a
    transaction for a step nobody wants (`shop_events.SubscribedTypes`); a subscription made
    meanwhile still hears every step from its creation on: the step's statement checks."""
    before = await Journey.place(dev_stack, payment={"method": "cod"})
    await before.reached("order.confirmed")  # the worker has just seen no subscription
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions", json={"url": receiver, "events": ALL_TYPES}
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    try:
        await dev_stack.sim.post("/shop/sim/secret", json={"secret": subscription["secret"]})
        after = await Journey.place(dev_stack, payment={"method": "cod"})
        arrived = await _types_arrived(dev_stack, after.order_id, "order.received")
        assert arrived[0]["event"]["type"] == "order.received"
    finally:
        await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")
