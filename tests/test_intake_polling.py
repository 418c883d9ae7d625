"""Prom.ua orders polled on the real stack (the schedule's workflow run by the tests, the
Prom simulator a company per token): a listed order becomes an order whose customer is
confirmed by e-mail; polled again it is the same one order, the cursor moved on; as the order
moves, Prom is told (received, the waybill's number, delivered) through the shop-events
outbox; a status Prom did not process is retried until it is; an order that cannot be
mapped is an intake failure, its payload in Postgres and nowhere in Temporal; a refused
token is an intake failure of the connector, which is then not polled again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from schema.contracts import MarketplacePoll, marketplace_poll_workflow_id
from schema.database import open_session
from schema.tables import IntakeConnector, IntakeFailure, Order, WebhookSubscription
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import decoded_history, eventually, wait_for_mail
from worker import ensure_marketplace_schedule
from workflows.intake import MarketplacePollWorkflow


async def _prom_connector(stack: Stack) -> tuple[str, str]:
    """A Prom connector of this test's own, and its token (its company at the simulator)."""
    name, token = f"prom-{uuid.uuid4().hex[:8]}", f"prom-token-{uuid.uuid4().hex}"
    made = await stack.api.post(
        "/v1/admin/connectors",
        json={"kind": "prom", "name": name, "credentials": {"api_token": token}},
    )
    assert made.status_code == 201, made.text
    assert made.json()["webhook_path"] is None
    return name, token


# Cash on delivery to the door, no note: confirmed without an operator (the devstack's
# carrier serves no Nova Poshta branch: a branch order waits for an operator there).
COD_TO_THE_DOOR = {
    "payment_option": {"id": 7547964, "name": "Наложенный платеж"},
    "client_notes": "",
}


async def _sell(stack: Stack, token: str, fixture: str, **changes: Any) -> dict[str, Any]:
    """A buyer orders at the company on Prom now."""
    email = f"buyer.{uuid.uuid4().hex[:8]}@example.com"
    placed = await stack.sim.post(
        "/prom/sim/orders",
        json={"token": token, "fixture": fixture, "changes": {"email": email, **changes}},
    )
    assert placed.status_code == 200, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def _poll(stack: Stack) -> tuple[MarketplacePoll, str]:
    """One run of the schedule's, now: its result and its history's JSON."""
    handle = await stack.client.start_workflow(
        MarketplacePollWorkflow.run,
        MarketplacePoll(),
        id=f"poll-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal_task_queue,
    )
    result = await handle.result()
    return result, (await handle.fetch_history()).to_json()


async def _connector_row(stack: Stack, name: str) -> IntakeConnector:
    async with open_session(stack.engine) as session:
        return (
            await session.exec(select(IntakeConnector).where(IntakeConnector.name == name))
        ).one()


async def _orders_from(stack: Stack, name: str) -> list[Order]:
    async with open_session(stack.engine) as session:
        return list(
            (
                await session.exec(
                    select(Order).where(col(Order.number).startswith(f"PROM-{name}-"))
                )
            ).all()
        )


async def _order_of(stack: Stack, name: str, prom_id: int) -> dict[str, Any]:
    [order] = [o for o in await _orders_from(stack, name) if o.number.endswith(f"-{prom_id}")]
    seen: dict[str, Any] = (await stack.api.get(f"/v1/orders/{order.id}")).json()
    return seen


async def test_a_prom_order_is_polled_into_one_order_its_buyer_confirmed(
    dev_stack: Stack,
) -> None:
    name, token = await _prom_connector(dev_stack)
    sold = await _sell(dev_stack, token, "order_courier_card", **COD_TO_THE_DOOR)
    first, history = await _poll(dev_stack)
    assert first.accepted >= 1
    seen = await _order_of(dev_stack, name, sold["id"])
    await Journey(dev_stack, seen["order_id"], {}).reached("order.confirmed")
    [confirmation] = await wait_for_mail(dev_stack.maildir, sold["email"], timeout=30)
    assert f"PROM-{name}-{sold['id']}" in str(confirmation["Subject"]) + str(confirmation)
    assert seen["source"] == {"connector": name, "kind": "prom", "order_id": str(sold["id"])}
    assert (seen["payment_method"], seen["delivery_method"], seen["total"]) == (
        "cod",
        "courier",
        "250.00",
    )
    # The cursor moved on to the order's modification, once it was taken.
    connector = await _connector_row(dev_stack, name)
    assert connector.polled_to == datetime.fromisoformat(sold["date_modified"])
    # Listed again (Prom's filter takes the cursor's second too): the same one order.
    await _poll(dev_stack)
    assert len(await _orders_from(dev_stack, name)) == 1
    for personal in ("Шевчук", sold["email"], "677654321", "Хрещатик"):
        assert personal not in decoded_history(history)


async def test_prom_is_told_as_the_order_moves(dev_stack: Stack) -> None:
    other, _ = await _prom_connector(dev_stack)  # another shop's: hears nothing of this order
    name, token = await _prom_connector(dev_stack)
    sold = await _sell(dev_stack, token, "order_courier_card", client_notes="")  # prepaid
    await _poll(dev_stack)
    seen = await _order_of(dev_stack, name, sold["id"])
    order = Journey(dev_stack, seen["order_id"], {})
    await order.to_delivery()
    refs = await order.refs()

    async def told() -> list[dict[str, Any]] | None:
        calls: list[dict[str, Any]] = (
            await dev_stack.sim.get("/prom/sim/calls", params={"token": token})
        ).json()
        return calls if len(calls) >= 3 else None

    calls = await eventually(told, 30, what="Prom told of the confirmation, shipment, delivery")
    assert calls == [
        {"path": "orders/set_status", "status": "received", "ids": [sold["id"]]},
        {
            "path": "delivery/save_declaration_id",
            "order_id": sold["id"],
            "declaration_id": refs.tracking_number,
            "delivery_type": "nova_poshta",
        },
        {"path": "orders/set_status", "status": "delivered", "ids": [sold["id"]]},
    ]
    # The write-back is a subscription of the connector's own, its delivery log in the API.
    connector = await _connector_row(dev_stack, name)
    async with open_session(dev_stack.engine) as session:
        subscription = (
            await session.exec(
                select(WebhookSubscription).where(WebhookSubscription.connector_id == connector.id)
            )
        ).one()
    listed = (await dev_stack.api.get(f"/v1/webhook-subscriptions/{subscription.id}")).json()
    assert (listed["scope"], listed["url"]) == ("connector_orders", dev_stack.settings.prom_url)
    log = (
        await dev_stack.api.get(
            f"/v1/webhook-subscriptions/{subscription.id}/deliveries",
            params={"order_id": seen["order_id"]},
        )
    ).json()["items"]
    assert sorted(d["type"] for d in log if d["status"] == "delivered") == [
        "order.confirmed",
        "order.delivered",
        "order.shipped",
    ]
    others = await _write_back_of(dev_stack, other)
    assert await _log(dev_stack, others, order_id=seen["order_id"]) == []


async def _write_back_of(stack: Stack, name: str) -> WebhookSubscription:
    connector = await _connector_row(stack, name)
    async with open_session(stack.engine) as session:
        return (
            await session.exec(
                select(WebhookSubscription).where(WebhookSubscription.connector_id == connector.id)
            )
        ).one()


async def _log(stack: Stack, subscription: WebhookSubscription, **params: str) -> list[Any]:
    answer = await stack.api.get(
        f"/v1/webhook-subscriptions/{subscription.id}/deliveries", params=params
    )
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def test_a_status_prom_did_not_process_is_retried_until_it_is(dev_stack: Stack) -> None:
    name, token = await _prom_connector(dev_stack)
    sold = await _sell(dev_stack, token, "order_courier_card", **COD_TO_THE_DOOR)
    await dev_stack.sim.post("/prom/sim/unprocessed", json={"token": token, "id": sold["id"]})
    await _poll(dev_stack)
    seen = await _order_of(dev_stack, name, sold["id"])
    write_back = await _write_back_of(dev_stack, name)

    async def retried() -> list[Any] | None:
        log = await _log(dev_stack, write_back, order_id=seen["order_id"])
        confirmed = [d for d in log if d["type"] == "order.confirmed"]
        return confirmed if confirmed and confirmed[0]["attempts"] >= 2 else None

    [pending] = await eventually(retried, 30, what="the confirmation retried")
    assert pending["status"] == "pending"
    assert f"did not process [{sold['id']}]" in pending["last_error"]
    # Prom processes it again: the next attempt is delivered, and told once more.
    await dev_stack.sim.post(
        "/prom/sim/unprocessed", json={"token": token, "id": sold["id"], "unprocessed": False}
    )

    async def delivered() -> list[Any] | None:
        log = await _log(dev_stack, write_back, order_id=seen["order_id"], status="delivered")
        return log or None

    [done] = await eventually(delivered, 30, what="the confirmation delivered")
    assert done["type"] == "order.confirmed" and done["attempts"] >= 3
    calls = (await dev_stack.sim.get("/prom/sim/calls", params={"token": token})).json()
    assert calls[-1] == {"path": "orders/set_status", "status": "received", "ids": [sold["id"]]}


async def test_an_order_that_cannot_be_mapped_is_an_intake_failure_out_of_temporal(
    dev_stack: Stack,
) -> None:
    name, token = await _prom_connector(dev_stack)
    sold = await _sell(dev_stack, token, "order_no_phone")
    result, history = await _poll(dev_stack)
    assert result.failed >= 1
    assert await _orders_from(dev_stack, name) == []
    failures = (await dev_stack.api.get("/v1/intake/failures")).json()
    [failure] = [f for f in failures if f["connector"] == name]
    assert (failure["source_order_id"], failure["field"]) == (str(sold["id"]), "phone")
    async with open_session(dev_stack.engine) as session:
        row = await session.get(IntakeFailure, failure["id"])
        assert row is not None and row.payload is not None
        assert row.payload["email"] == sold["email"]
    for personal in ("Коваленко", sold["email"], "Пирогівський", "MUG-01"):
        assert personal not in decoded_history(history)
    # Listed again, unchanged: still the one failure, still no order.
    await _poll(dev_stack)
    failures = (await dev_stack.api.get("/v1/intake/failures")).json()
    assert [f["id"] for f in failures if f["connector"] == name] == [failure["id"]]


async def test_a_refused_token_is_a_failure_of_the_connector_which_is_not_polled_again(
    dev_stack: Stack,
) -> None:
    name, token = await _prom_connector(dev_stack)
    await _sell(dev_stack, token, "order_novaposhta_cod")
    await dev_stack.sim.post("/prom/sim/refuse", json={"token": token})
    first, _ = await _poll(dev_stack)
    assert first.refused >= 1
    failures = (await dev_stack.api.get("/v1/intake/failures")).json()
    [failure] = [f for f in failures if f["connector"] == name]
    assert (failure["source_order_id"], failure["field"]) == ("", "credentials.api_token")
    assert "401" in failure["message"] and token not in failure["message"]
    assert (await _connector_row(dev_stack, name)).polled_to is None  # the cursor stays
    # No poison loop: the next polls leave the connector alone until an operator resolves.
    polled = (await dev_stack.sim.get("/prom/sim/lists", params={"token": token})).json()
    await _poll(dev_stack)
    await _poll(dev_stack)
    assert (await dev_stack.sim.get("/prom/sim/lists", params={"token": token})).json() == polled
    failures = (await dev_stack.api.get("/v1/intake/failures")).json()
    assert [f["id"] for f in failures if f["connector"] == name] == [failure["id"]]
    assert await _orders_from(dev_stack, name) == []


async def test_a_cancelled_order_is_cancelled_on_prom_with_prom_s_reason(dev_stack: Stack) -> None:
    name, token = await _prom_connector(dev_stack)
    sold = await _sell(dev_stack, token, "order_courier_card", client_notes="")  # prepaid
    await _poll(dev_stack)
    seen = await _order_of(dev_stack, name, sold["id"])
    order = Journey(dev_stack, seen["order_id"], {})
    await order.waiting_for("payment")
    cancelled = await order.act("cancel", reason="customer_request")
    assert cancelled.status_code == 200, cancelled.text

    async def told() -> list[dict[str, Any]] | None:
        calls: list[dict[str, Any]] = (
            await dev_stack.sim.get("/prom/sim/calls", params={"token": token})
        ).json()
        return calls if len(calls) >= 2 else None

    calls = await eventually(told, 30, what="Prom told of the cancellation")
    assert calls[-1] == {
        "path": "orders/set_status",
        "status": "canceled",
        "ids": [sold["id"]],
        "cancellation_reason": "buyers_request",
    }
    listed = (await dev_stack.sim.get("/prom/sim/calls", params={"token": token})).json()
    assert [call["status"] for call in listed] == ["received", "canceled"]


async def test_the_workers_schedule_polls_on_its_own(dev_stack: Stack) -> None:
    """As the worker does at its start: the schedule, here every second, takes a new order
    with nobody running a poll by hand."""
    name, token = await _prom_connector(dev_stack)
    settings = dev_stack.settings.model_copy(
        update={"marketplace_poll_interval": timedelta(seconds=1)}
    )
    await ensure_marketplace_schedule(dev_stack.client, settings)
    try:
        sold = await _sell(dev_stack, token, "order_courier_card", **COD_TO_THE_DOOR)

        async def taken() -> list[Order] | None:
            return await _orders_from(dev_stack, name) or None

        [order] = await eventually(taken, 30, what="the order taken by the schedule's poll")
        assert order.number == f"PROM-{name}-{sold['id']}"
    finally:
        schedule_id = marketplace_poll_workflow_id(settings.temporal_task_queue)
        await dev_stack.client.get_schedule_handle(schedule_id).delete()


async def test_a_write_back_keeps_its_url_and_events(dev_stack: Stack) -> None:
    name, _ = await _prom_connector(dev_stack)
    write_back = await _write_back_of(dev_stack, name)
    assert write_back.events == [
        "order.cancelled",
        "order.confirmed",
        "order.delivered",
        "order.shipped",
    ]
    for change in ({"url": "https://elsewhere.example/hook"}, {"events": ["order.paid"]}):
        refused = await dev_stack.api.patch(
            f"/v1/webhook-subscriptions/{write_back.id}", json=change
        )
        assert refused.status_code == 409, refused.text
    paused = await dev_stack.api.patch(
        f"/v1/webhook-subscriptions/{write_back.id}", json={"active": False}
    )
    assert (paused.status_code, paused.json()["active"]) == (200, False)
