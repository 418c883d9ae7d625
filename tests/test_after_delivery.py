"""After the parcel leaves, on the time-skipping server with the real durations (21 days for a
parcel to come back, the 14-day return window): real activities, real HTTP to the provider
simulators, signed webhooks into the API, Postgres and SMTP; only the clock is fast.

Each path the issue lists: a refused cash-on-delivery parcel, a returned prepaid one
refunded, a lost one re-shipped, a return approved and refunded after inspection, a return
outside the window refused, partial refunds that never exceed what was paid; and an
exchange placing a real replacement order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from schema.api.fields import Role
from schema.contracts import ReturnProgress, Stage, return_workflow_id_for
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import Order, OrderContact, Refund
from schema.webhooks import HEADER, sign
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually, sample_order, scan_barcode

DAY = timedelta(days=1)
MUGS = [{"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "250.00"}]


@pytest.fixture
def stack(ts_stack: Stack) -> Stack:
    return ts_stack


def key() -> str:
    return uuid.uuid4().hex


async def payment(stack: Stack, order: Journey) -> dict[str, Any]:
    refs = await order.refs()
    answer: dict[str, Any] = (await stack.sim.get(f"/payment/v1/payments/{refs.payment_id}")).json()
    return answer


async def assessments(stack: Stack, return_id: str) -> list[ReturnProgress]:
    """What the return's `assessed` update answered (sent with the API's start of the
    return), as its workflow's history holds it."""
    handle = stack.client.get_workflow_handle(return_workflow_id_for(return_id))
    accepted, answers = [], []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            accepted.append(request.input.name)
        if event.HasField("workflow_execution_update_completed_event_attributes"):
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            answers += await stack.client.data_converter.decode(
                outcome.success.payloads, [ReturnProgress]
            )
    assert accepted == ["assessed"] * len(answers), accepted
    return answers


async def told(order: Journey, last: str) -> list[str] | None:
    """The messages the customer got (the managers' alerts aside), once `last` is among them."""
    sent = [kind for kind in await order.sent() if not kind.startswith("manager_")]
    return sent if last in sent else None


async def test_a_refused_cod_parcel_comes_back_to_the_shelf_and_closes_the_order(
    stack: Stack,
) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    on_the_shelf = await order.stock("MUG-01")  # before the order reserved its two mugs
    await order.shipped()
    await order.carrier("InTransit")
    await order.carrier("Exception", "recipient refused the parcel", subtag="Exception_003")
    returning = await order.waiting_for("parcel_return")
    assert returning.status == "returning"
    told_by_then = await eventually(lambda: told(order, "parcel_returning"), what="told")
    assert told_by_then[-1] == "parcel_returning"

    await order.sleep(5 * DAY)  # a slow way back: nobody is told anything more
    await order.parcel_back()
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)

    [cancelled] = [e for e in status.timeline if e.type == "order.cancelled"]
    assert cancelled.detail["reason"] == "delivery_refused"
    assert status.fulfilment_status == "returned"
    assert await order.stock("MUG-01") == on_the_shelf  # the two mugs are back
    sent = await eventually(lambda: told(order, "cancelled"), what="the cancellation told")
    assert sent[len(told_by_then) :] == ["cancelled"]  # no interim notice after the refusal
    assert "interim" not in sent
    assert any("скасовано" in subject for subject in order.mailbox())  # in Ukrainian
    [incident] = await order.incidents()
    assert (incident.cause, incident.stage) == ("human", "transit")
    restocks = (await stack.sim.get("/warehouse/v1/restocks")).json()
    assert [r["lines"] for r in restocks if r["order_ref"] == order.order_id] == [
        [{"sku": "MUG-01", "quantity": 2}]
    ]
    view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["stage"] == "cancelled" and view["progress"]["fulfilment_status"] == "returned"


async def test_a_returned_prepaid_parcel_is_refunded_what_is_left(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.shipped()
    await order.carrier("Expired", "not collected at the point")
    await order.waiting_for("parcel_return")
    await order.carrier("Exception", "back at the depot", subtag="Exception_011")
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)

    [cancelled] = [e for e in status.timeline if e.type == "order.cancelled"]
    assert cancelled.detail["reason"] == "not_collected"
    assert status.payment_status == "refunded"
    paid = await payment(stack, order)
    assert (paid["status"], paid["refunded"]) == ("refunded", "500.00")
    [incident] = await order.incidents()
    assert incident.cause == "external"


async def test_a_lost_parcel_is_reshipped_under_its_own_booking(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.shipped()
    first = (await order.refs()).tracking_number
    await order.carrier("Exception", "no trace at the hub", subtag="Exception_013")
    await order.waiting_for("parcel_decision")
    refused = await order.act("parcel-decision", choice="refund")
    assert refused.status_code == 409 and "nothing is left to refund" in refused.text

    decided = await order.act("parcel-decision", choice="reship", note="carrier confirmed")
    assert decided.status_code == 200, decided.text
    await order.reached("order.reshipped")
    second = (await order.refs()).tracking_number
    assert second and second != first
    booked = [
        s
        for s in (await stack.sim.get("/sim/shipments")).json()
        if s["order_ref"] == order.order_id
    ]
    assert len(booked) == 2  # two bookings, each under its own key
    await order.waiting_for("carrier")
    await order.carrier("Delivered")
    await order.reached("order.delivered")
    sent = await order.sent()
    assert sent.count("parcel_reshipped") == 1 and "delivery_problem" in sent


async def test_a_return_within_the_window_is_refunded_once_after_inspection(
    stack: Stack, tmp_path: Path
) -> None:
    order = await Journey.place(stack)
    await order.to_delivery()
    await order.sleep(13 * DAY)  # a day left of the 14
    request = key()
    link = await order.link_from_mail("return")  # "delivered" links the return page
    asked = await order.ask_for_return(
        {
            "lines": [{"sku": "MUG-01", "quantity": 2}],
            "reason": "wrong_size",
            "comment": "Too small",
        },
        request,
        link,
    )
    assert asked.status_code == 201, asked.text
    opened = asked.json()
    assert opened["status"] == "approved" and opened["tracking_number"]
    # Answered by the update sent with the start, not by asking the return until it knew.
    [assessed] = await assessments(stack, opened["return_id"])
    assert (assessed.status, assessed.tracking_number) == ("approved", opened["tracking_number"])
    again = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 2}], "reason": "wrong_size"}, request
    )
    assert again.status_code == 200 and again.json()["return_id"] == opened["return_id"]

    # The label's barcode scans as the return parcel's tracking number.
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=stack.api.base_url) as customer:
        label = await customer.get(f"/order/{token}/returns/{opened['return_id']}/label.pdf")
    assert label.status_code == 200 and label.headers["content-type"] == "application/pdf"
    assert await scan_barcode(label.content, tmp_path) == opened["tracking_number"]

    for scan in ("InTransit", "Delivered"):
        await order.parcel_event(opened["tracking_number"], scan)
    await order.return_reached("received")
    inspected = await stack.sim.post(
        f"/warehouse/sim/returns/{opened['return_id']}/inspect",
        json={"lines": [{"sku": "MUG-01", "received": 2, "accepted": 1, "finding": "used"}]},
    )
    assert inspected.json()["webhook_status"] == 202, inspected.text
    refunded = await order.return_reached("refunded")

    assert Decimal(refunded["refunded"]) == Decimal("250.00")
    assert refunded["lines"][0]["accepted"] == 1 and refunded["lines"][0]["finding"] == "used"
    paid = await payment(stack, order)
    assert (paid["status"], paid["refunded"]) == ("partially_refunded", "250.00")  # once
    ledger = (await stack.api.get(f"/v1/orders/{order.order_id}/refunds")).json()
    assert (Decimal(ledger["refunded"]), Decimal(ledger["left"])) == (
        Decimal("250.00"),
        Decimal("250.00"),
    )
    sent = await eventually(lambda: told(order, "return_refunded"), what="the refund told")
    assert [k for k in sent if k.startswith("return_")] == [
        "return_approved",
        "return_received",
        "return_refunded",
    ]
    steps = [e.type for e in await order.stored_events() if e.type.startswith("return.")]
    assert steps == [
        "return.requested",
        "return.approved",
        "return.label_created",
        "return.in_transit",
        "return.received",
        "return.inspected",
        "return.restocked",
        "return.refunded",
    ]
    stored = await order.stored_events()
    assert all(e.stage == "completed" for e in stored if e.type.startswith("return."))


async def test_a_return_not_inspected_in_time_is_flagged_and_resolved_through_the_api(
    stack: Stack,
) -> None:
    """A return's overdue step is settled as an order's: an incident for the managers, the
    return in the operator queue (its row's flag) until an operator decides through the API."""
    order = await Journey.place(stack)
    await order.to_delivery()
    opened = (
        await order.ask_for_return({"lines": [{"sku": "MUG-01", "quantity": 2}], "reason": "other"})
    ).json()
    for scan in ("InTransit", "Delivered"):
        await order.parcel_event(opened["tracking_number"], scan)
    await order.return_reached("received")
    await order.sleep(4 * DAY)  # the warehouse has 3

    async def flagged() -> dict[str, Any] | None:
        return next((r for r in await order.returns() if r["needs_action"]), None)

    await eventually(flagged, what="the return in the operator queue")
    [incident] = await order.incidents()
    assert (incident.key, incident.status) == (
        f"return-{opened['number']}-step-1-inspection",
        "open",
    )
    assert "not inspected after 3 days" in incident.summary
    assert "manager_incident" in await order.sent()

    operator = stack.as_role[Role.OPERATOR]
    path = f"/v1/orders/{order.order_id}/returns/{opened['return_id']}/resolve"
    skipped = await operator.post(path, json={"choice": "skip"})
    assert skipped.status_code == 409 and "cannot be skipped" in skipped.text
    retried = await operator.post(path, json={"choice": "retry"})
    assert retried.status_code == 200, retried.text
    await eventually(lambda: _not_flagged(order), what="the return out of the queue")

    async def resolved() -> bool:  # written just after the flag is cleared
        [incident] = await order.incidents()
        return incident.status == "resolved"

    await eventually(resolved, what="the incident resolved")
    again = await operator.post(path, json={"choice": "retry"})
    assert again.status_code == 409, again.text  # nothing to resolve any more

    inspected = await stack.sim.post(f"/warehouse/sim/returns/{opened['return_id']}/inspect")
    assert inspected.json()["webhook_status"] == 202, inspected.text
    await order.return_reached("refunded")
    steps = [e.type for e in await order.stored_events() if "return" in e.detail]
    assert [t for t in steps if t.startswith("step.")] == ["step.failed", "step.resolved"]
    # Watched like an order meanwhile: the customer heard what the return waits for.
    assert "sla.silence_breached" in steps and "interim" in await order.sent()


async def _not_flagged(order: Journey) -> bool | None:
    return not any(r["needs_action"] for r in await order.returns()) or None


async def test_a_return_outside_the_window_is_refused_with_the_reason(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.sleep(15 * DAY)
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "changed_mind"}
    )
    assert asked.status_code == 409, asked.text
    assert "the time for returns ended on" in asked.json()["detail"]
    [declined] = await order.returns()
    assert (declined["status"], declined["decline"]) == ("declined", "window_closed")
    [assessed] = await assessments(stack, declined["return_id"])
    assert (assessed.status, assessed.decline) == ("declined", "window_closed")
    # Nothing of it counts as a return, and nothing else is promised.
    assert not [e for e in await order.stored_events() if e.type == "return.requested"]
    assert not [k for k in await order.sent() if k.startswith("return_")]


async def test_partial_refunds_never_exceed_what_was_paid(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.until_paid()
    operator = stack.as_role[Role.OPERATOR]

    async def refund(amount: str, request: str | None = None) -> httpx.Response:
        return await operator.post(
            f"/v1/orders/{order.order_id}/refunds",
            json={"amount": amount, "reason": "goodwill"},
            headers={"Idempotency-Key": request or key()},
        )

    first_key = key()
    first = await refund("300.00", first_key)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "refunded" and Decimal(first.json()["refunded"]) == 300
    repeated = await refund("300.00", first_key)  # a retried request refunds nothing more
    assert repeated.status_code == 201 and repeated.json()["key"] == first_key
    second = await refund("300.00")
    assert second.status_code == 409
    assert second.json()["detail"] == (
        "refund refused: 300.00 exceeds what is left to refund (200.00 of 500.00 paid, "
        "300.00 refunded)"
    )
    # Two at once that each fit alone, together not: the ledger lets one through.
    both = await asyncio.gather(refund("150.00"), refund("150.00"))
    assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]

    paid = await payment(stack, order)
    assert (paid["status"], paid["refunded"]) == ("partially_refunded", "450.00")
    async with open_session(stack.engine) as session:
        rows = (
            await session.exec(select(Refund).where(Refund.order_id == uuid.UUID(order.order_id)))
        ).all()
    assert sum(r.amount for r in rows if r.status != "rejected") == Decimal("450.00")
    # The order's own compensation refunds only what is left.
    cancelled = await order.act("cancel", reason="customer_request")
    assert cancelled.status_code == 200, cancelled.text
    paid = await payment(stack, order)
    assert (paid["status"], paid["refunded"]) == ("refunded", "500.00")
    assert (await order.sent()).count("refund_made") == 2


async def test_an_exchange_places_a_real_replacement_order(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.to_delivery()
    asked = await order.ask_for_return(
        {
            "lines": [{"sku": "MUG-01", "quantity": 1}],
            "reason": "defective",
            "resolution": "exchange",
        },
    )
    assert asked.status_code == 201, asked.text
    opened = asked.json()
    for scan in ("InTransit", "Delivered"):
        await order.parcel_event(opened["tracking_number"], scan)
    await order.return_reached("received")
    await stack.sim.post(f"/warehouse/sim/returns/{opened['return_id']}/inspect")
    exchanged = await order.return_reached("exchanged")

    replacement = uuid.UUID(exchanged["exchange_order_id"])
    async with open_session(stack.engine) as session:
        placed = await session.get(Order, replacement)
        contact = await session.get(OrderContact, replacement)
        original = await session.get(OrderContact, uuid.UUID(order.order_id))
        first = await session.get(Order, uuid.UUID(order.order_id))
    assert placed is not None and placed.number == f"{opened['number']}-X"
    # The key that placed the original reads the replacement and hears of its events.
    assert first is not None and first.created_by_key_id is not None
    assert placed.created_by_key_id == first.created_by_key_id
    assert (placed.payment_method, placed.total) == ("exchange", Decimal("250.00"))
    assert contact is not None and original is not None
    assert (contact.email, contact.line1) == (original.email, original.line1)
    exchange = Journey(stack, str(replacement), sample_order())
    status = await exchange.waiting_for("packing")  # its own workflow, nothing to pay
    assert status.payment_status == "covered_by_return"
    assert "return_exchanged" in await order.sent()
    assert (await payment(stack, order))["refunded"] == "0.00"  # like for like: no money back


async def _signed(stack: Stack, provider: str, secret: str, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    answer = await stack.api.post(
        f"/v1/webhooks/{provider}",
        content=body,
        headers={HEADER: sign(secret, body), "content-type": "application/json"},
    )
    return answer.status_code


async def test_a_return_counts_only_its_own_label_and_is_inspected_only_once_arrived(
    stack: Stack,
) -> None:
    """A carrier event for the return with any other tracking number (the order's own
    parcel's, say) changes nothing, and an inspection before the parcel arrives is refused."""
    order = await Journey.place(stack)
    await order.to_delivery()
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}
    )
    assert asked.status_code == 201, asked.text
    opened = asked.json()
    ref = {"order_ref": order.order_id, "return_ref": opened["return_id"]}
    settings = stack.settings
    outbound = (await order.refs()).tracking_number
    assert outbound and outbound != opened["tracking_number"]
    for tracking_number in (outbound, "SIM999999999999"):
        forged = {
            **ref,
            "event_id": f"trk-{uuid.uuid4().hex[:8]}",
            "type": "tracking",
            "tracking_number": tracking_number,
            "status": "Delivered",
            "at": datetime.now(UTC).isoformat(),
        }
        assert await _signed(stack, "carrier", settings.carrier_webhook_secret, forged) == 409
    early = {
        **ref,
        "event_id": f"wh-{uuid.uuid4().hex[:8]}",
        "type": "return_inspected",
        "lines": [{"sku": "MUG-01", "received": 1, "accepted": 1}],
    }
    assert await _signed(stack, "warehouse", settings.warehouse_webhook_secret, early) == 409
    await asyncio.sleep(1)
    [still] = await order.returns()
    assert still["status"] == "approved" and still["refunded"] in (None, "0", "0.00")

    # Its own label's number: received; then the inspection counts.
    await order.parcel_event(opened["tracking_number"], "Delivered")
    await order.return_reached("received")
    assert await _signed(stack, "warehouse", settings.warehouse_webhook_secret, early) == 202
    await order.return_reached("refunded")


def _pdf_text(content: bytes, folder: Path) -> str:
    (folder / "document.pdf").write_bytes(content)
    done = subprocess.run(
        ["pdftotext", "-layout", "document.pdf", "-"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


async def test_pdfs_through_the_customer_link_are_masked_like_the_page(
    stack: Stack, tmp_path: Path
) -> None:
    """Whoever holds a forwarded status link reads the receipt and the return label with the
    name as the page shows it and no street, postcode or phone; staff read the originals."""
    address = {"country": "UA", "city": "Lviv", "line1": "Zelena 12", "postal_code": "79000"}
    order = await Journey.place(stack, delivery={"method": "courier", "address": address})
    await order.to_delivery()
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}
    )
    assert asked.status_code == 201, asked.text
    return_id = asked.json()["return_id"]
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=stack.api.base_url) as holder:
        receipt = await holder.get(f"/order/{token}/receipt.pdf")
        label = await holder.get(f"/order/{token}/returns/{return_id}/label.pdf")
    assert receipt.status_code == label.status_code == 200
    for served in (receipt, label):
        text = _pdf_text(served.content, tmp_path)
        assert "Iryna K." in text, text
        for secret in ("Koval", "Zelena", "79000", "+380501234567", "iryna"):
            assert secret not in text, (secret, text)
    assert await scan_barcode(label.content, tmp_path) == asked.json()["tracking_number"]
    original = await stack.api.get(f"/v1/orders/{order.order_id}/documents/receipt.pdf")
    assert original.status_code == 200
    assert "Iryna Koval" in _pdf_text(original.content, tmp_path)
