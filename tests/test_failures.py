"""No poison loops: a step that fails for good opens an incident, alerts the managers and
waits for an operator to retry it, skip it (where it may be skipped) or cancel the order;
it never retries forever and never stalls without a flag (dev server, real providers)."""

from __future__ import annotations

import uuid

from sqlmodel import select

from devstack.simulators import UNSERVED_POSTAL_CODE
from schema.database import open_session
from schema.tables import Incident, Order
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually, mail_to


async def _incident(stack: Stack, order_id: str) -> Incident | None:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(Incident).where(
                Incident.order_id == uuid.UUID(order_id),
                Incident.key.startswith("step-"),  # type: ignore[attr-defined]
            )
        )
        return rows.first()


async def _flagged(stack: Stack, order_id: str) -> bool:
    async with open_session(stack.engine) as session:
        order = await session.get(Order, uuid.UUID(order_id))
        return order is not None and order.needs_action


async def test_a_gateway_down_for_good_waits_for_an_operator_who_retries(dev_stack: Stack) -> None:
    await dev_stack.sim.post("/sms/sim/fail", params={"count": 1000})
    customer = {
        "name": "Iryna Koval",
        "email": f"iryna.{uuid.uuid4().hex[:6]}@example.com",
        "phone": "+380501234567",
        "channels": ["sms"],
    }
    try:
        order = await Journey.place(dev_stack, customer=customer)
        status = await order.until(lambda s: s.waiting_for == "incident_resolution", timeout=60)
    finally:
        await dev_stack.sim.post("/sms/sim/fail", params={"count": 0})
    assert "resolve_step" in status.allowed_actions
    assert status.stage == "confirmation"  # stopped where it failed, nothing further
    incident = await _incident(dev_stack, order.order_id)
    assert incident is not None and incident.status == "open" and incident.cause == "external"
    assert "send_confirmation" in incident.summary and "ProviderUnavailable" in incident.summary
    assert await _flagged(dev_stack, order.order_id)  # in the operator queue
    managers = dev_stack.settings.manager_email
    assert any(
        order.body["number"] in str(m["Subject"]) for m in mail_to(dev_stack.maildir, managers)
    )

    retried = await order.act("resolve", choice="retry")  # the gateway is back
    assert retried.status_code == 200, retried.text
    await order.waiting_for("payment")
    sms = [
        m
        for m in (await dev_stack.sim.get("/sms/v1/messages")).json()
        if order.body["number"] in m["text"]
    ]
    assert len(sms) == 2  # the confirmation, once, and the payment request
    resolved = await _incident(dev_stack, order.order_id)
    assert resolved is not None and resolved.status == "resolved"
    assert not await _flagged(dev_stack, order.order_id)
    types = Journey.types(await order.status())
    assert (
        types.index("step.failed") < types.index("step.resolved") < types.index("order.confirmed")
    )


async def test_a_step_that_may_not_be_skipped_is_retried_or_the_order_cancelled(
    dev_stack: Stack,
) -> None:
    address = {
        "country": "UA",
        "city": "Kyiv",
        "line1": "Nowhere 1",
        "postal_code": UNSERVED_POSTAL_CODE,
    }
    order = await Journey.place(
        dev_stack,
        delivery={"method": "courier", "address": address},
        payment={"method": "cod"},
    )
    await order.waiting_for("packing")
    await order.pack()
    status = await order.until(lambda s: s.waiting_for == "incident_resolution")
    incident = await _incident(dev_stack, order.order_id)
    assert incident is not None and "book_shipment" in incident.summary
    assert "ProviderRejected" in incident.summary  # refused: no retry heals it
    assert set(status.allowed_actions) >= {"resolve_step", "cancel"}

    skipped = await order.act("resolve", choice="skip")
    assert skipped.status_code == 409 and "cannot be skipped" in skipped.json()["detail"]
    cancelled = await order.act("cancel", reason="other", note="the carrier does not go there")
    assert cancelled.status_code == 200, cancelled.text
    status = await order.until(lambda s: s.stage == "cancelled")
    assert status.timeline[-1].type == "order.cancelled"
    reservation = (await dev_stack.sim.get(f"/warehouse/v1/reservations/{order.order_id}")).json()
    assert all(line["reserved"] == 0 for line in reservation["lines"])
    closed = await eventually(
        lambda: _closed(dev_stack, order.order_id), what="the incident closed"
    )
    assert closed


async def _closed(stack: Stack, order_id: str) -> bool:
    incident = await _incident(stack, order_id)
    return incident is not None and incident.status == "resolved"
