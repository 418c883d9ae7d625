"""The whole order lifecycle on the time-skipping server, with the real durations.

Real activities, real HTTP to the provider simulators, real signed webhooks into the API,
real Postgres and SMTP; only the clock is fast.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schema.api.fields import Role
from schema.api.orders import OrderCreate
from schema.contracts import Stage
from schema.database import open_session
from schema.links import LinkPurpose
from starter.services.orders import record_order
from starter.services.temporal import OrderWorkflows
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually, sample_order
from tests.test_sign_in import Console, _account

DAY = timedelta(days=1)
KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
def stack(ts_stack: Stack) -> Stack:
    return ts_stack


async def test_prepaid_courier_order_goes_from_intake_to_feedback(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.to_delivery()
    status = await order.status()
    assert status.tracking_number and status.tracking_url
    assert status.payment_status == "paid"
    assert status.fulfilment_status == "delivered"

    await order.sleep(2 * DAY)  # the feedback request goes out 24-48 h after delivery
    await order.reached("feedback.requested")
    answer = await order.answer("feedback", {"rating": 5, "comment": "Fast!"})
    assert answer.status_code == 200 and answer.json()["accepted"]
    done = await order.until(lambda s: s.stage == Stage.COMPLETED)

    assert Journey.types(done)[-2:] == ["feedback.received", "order.completed"]

    async def thanked() -> bool:  # the thanks go out beside the order's workflow
        return "feedback_thanks" in await order.sent()

    await eventually(thanked, what="the thank-you message")
    assert await order.sent() == [
        "confirmation",
        "payment_requested",
        "payment_received",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "feedback_request",
        "feedback_thanks",
    ]
    assert len(order.mailbox()) == 11  # every one of them arrived, once
    assert await order.incidents() == []
    documents = (await stack.api.get(f"/v1/orders/{order.order_id}/documents")).json()
    assert [d["kind"] for d in documents] == ["label", "packing_list", "receipt"]
    stored = [e.type for e in await order.stored_events()]
    assert stored == Journey.types(done)  # the read model's timeline is the workflow's


async def test_cash_on_delivery_skips_the_payment_wait(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    status = await order.waiting_for("packing")
    assert status.payment_status == "cash_on_delivery"
    await order.to_delivery()
    status = await order.reached("payment.collected_on_delivery")
    assert status.payment_status == "collected_on_delivery"
    assert "payment_requested" not in await order.sent()


async def test_pickup_order_collected(stack: Stack) -> None:
    order = await Journey.place(
        stack, delivery={"method": "pickup", "pickup_point": "KYIV-01"}, payment={"method": "cod"}
    )
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("collection")
    await order.collect()
    status = await order.reached("order.collected")
    assert status.status == "delivered"
    sent = await order.sent()
    assert "ready_for_pickup" in sent and "shipped" not in sent
    documents = (await stack.api.get(f"/v1/orders/{order.order_id}/documents")).json()
    assert [d["kind"] for d in documents] == ["packing_list", "receipt"]


async def test_uncollected_pickup_goes_back_to_stock_with_a_refund(stack: Stack) -> None:
    order = await Journey.place(stack, delivery={"method": "pickup"})
    await order.until_paid()
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("collection")
    await order.sleep(8 * DAY)  # reminder on day 5, hold ends on day 7

    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.payment_status == "refunded"
    sent = await order.sent()
    assert sent.count("pickup_reminder") == 1 and sent[-1] == "cancelled"
    refs = await order.refs()
    assert (await stack.sim.get(f"/payment/v1/payments/{refs.payment_id}")).json()[
        "status"
    ] == "refunded"
    reservation = (await stack.sim.get(f"/warehouse/v1/reservations/{order.order_id}")).json()
    assert all(line["reserved"] == 0 for line in reservation["lines"])


async def test_payment_expiry_cancels_and_releases_stock(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    await order.sleep(timedelta(hours=73))

    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    cancelled = status.timeline[-1]
    assert cancelled.type == "order.cancelled" and cancelled.detail["reason"] == "payment_expired"
    sent = await order.sent()
    assert sent.count("payment_reminder") == 2  # at 24 h and 60 h
    assert sent[-1] == "cancelled"
    reservation = (await stack.sim.get(f"/warehouse/v1/reservations/{order.order_id}")).json()
    assert all(line["reserved"] == 0 for line in reservation["lines"])
    refs = await order.refs()
    assert (await stack.sim.get(f"/payment/v1/payments/{refs.payment_id}")).json()[
        "status"
    ] == "cancelled"


async def test_failed_payment_alerts_a_manager_and_helps_the_customer(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    await order.pay("fail", reason="insufficient funds")
    await order.reached("payment.failed")
    await order.until(lambda s: s.waiting_for == "payment")
    await order.pay("succeed")
    await order.waiting_for("packing")

    sent = await order.sent()
    assert (
        sent.index("manager_payment_failed")
        < sent.index("payment_failed")
        < sent.index("payment_received")
    )
    help_mail = [s for s in order.mailbox() if "не пройшла" in s]
    assert len(help_mail) == 1


async def test_partial_stock_backordered_then_arrives(stack: Stack) -> None:
    order = await Journey.place(
        stack, lines=[{"sku": "RARE-01", "name": "Teapot", "quantity": 3, "unit_price": "900.00"}]
    )
    status = await order.waiting_for("stock_decision")
    assert "decide_stock" in status.allowed_actions
    decided = await order.act("stock-decision", choice="backorder")
    assert decided.status_code == 200, decided.text
    await order.waiting_for("backorder_arrival")
    backorders = (await stack.sim.get("/warehouse/v1/backorders")).json()
    [backorder_id] = [
        key for key, item in backorders.items() if item["order_ref"] == order.order_id
    ]
    arrived = await stack.sim.post(
        f"/warehouse/sim/backorders/{backorder_id}/arrive"
    )  # the supplier delivers
    assert arrived.json()["webhook_status"] == 202
    status = await order.until(lambda s: s.waiting_for == "payment")
    assert "stock.backordered" in Journey.types(status)
    assert Journey.types(status).count("stock.reserved") == 1
    assert "backordered" in await order.sent()


async def test_backorder_that_never_arrives_cancels_the_order(stack: Stack) -> None:
    order = await Journey.place(
        stack, lines=[{"sku": "UNKNOWN-9", "name": "Ghost", "quantity": 1, "unit_price": "10.00"}]
    )
    await order.waiting_for("stock_decision")
    await order.act("stock-decision", choice="backorder")
    await order.waiting_for("backorder_arrival")
    await order.sleep(15 * DAY)
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "out_of_stock"


async def test_manual_review_confirmed_with_a_final_price(stack: Stack) -> None:
    order = await Journey.place(stack, note="Please deliver after 18:00")
    status = await order.waiting_for("operator_confirmation")
    assert set(status.allowed_actions) >= {"confirm", "reject", "cancel"}
    assert order.mailbox() and "перевірці" in order.mailbox()[0]  # told at once, before any promise
    confirmed = await order.act("confirm", final_price="450.00", note="discount")
    assert confirmed.status_code == 200, confirmed.text
    status = await order.waiting_for("payment")
    review = next(e for e in status.timeline if e.type == "review.confirmed")
    assert review.actor == "key:operator" and review.detail["total"] == "450.00"
    view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["total"] == "450.00"
    sent = await order.sent()
    assert sent[:3] == ["awaiting_review", "confirmation", "payment_requested"]


async def test_manual_review_rejected(stack: Stack) -> None:
    order = await Journey.place(
        stack, lines=[{"sku": "MUG-01", "name": "Mug", "quantity": 50, "unit_price": "250.00"}]
    )
    await order.waiting_for("operator_confirmation")
    rejected = await order.act("reject", reason="wholesale orders go through the B2B desk")
    assert rejected.status_code == 200, rejected.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)
    assert status.timeline[-1].detail["reason"] == "rejected"
    assert status.timeline[-1].actor == "key:operator"
    assert "confirmation" not in await order.sent()


async def test_manual_review_escalates_when_nobody_decides(stack: Stack) -> None:
    order = await Journey.place(
        stack,
        lines=[{"sku": "KETTLE-01", "name": "Kettle", "quantity": 1, "unit_price": "25000.00"}],
    )
    await order.waiting_for("operator_confirmation")
    await order.sleep(timedelta(hours=3))
    status = await order.reached("review.escalated")
    assert status.waiting_for == "operator_confirmation"
    assert "manager_review_escalated" in await order.sent()


async def test_three_silent_days_give_exactly_three_interim_notices(stack: Stack) -> None:
    order = await Journey.place(
        stack,
        lines=[{"sku": "KETTLE-01", "name": "Kettle", "quantity": 1, "unit_price": "25000.00"}],
    )
    await order.waiting_for("operator_confirmation")
    await order.sleep(3 * DAY + timedelta(hours=1))
    status = await order.until(lambda s: len(s.sla_breaches) == 3)

    assert (await order.sent()).count("interim") == 3
    assert [b.waiting_for for b in status.sla_breaches] == ["operator_confirmation"] * 3
    gaps = [b.at - a.at for a, b in zip(status.sla_breaches, status.sla_breaches[1:], strict=False)]
    assert all(abs(gap - DAY) < timedelta(seconds=1) for gap in gaps), gaps
    assert sum("пам'ятаємо" in s for s in order.mailbox()) == 3


async def test_delay_is_told_to_the_customer(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    delayed = await order.act("delay", reason="supplier_late", new_date="2030-01-15")
    assert delayed.status_code == 200, delayed.text
    status = await order.reached("order.delayed")
    assert status.status == "delayed" and str(status.expected_date) == "2030-01-15"
    assert "delayed" in await order.sent()
    assert any("затримується" in s for s in order.mailbox())


@pytest.mark.parametrize("stage", ["review", "payment", "packing", "packed"])
async def test_cancellation_compensates_what_was_done(stack: Stack, stage: str) -> None:
    if stage == "review":
        order = await Journey.place(stack, note="call me")
        await order.waiting_for("operator_confirmation")
    else:
        order = await Journey.place(stack)
        await order.waiting_for("payment")
        if stage != "payment":
            await order.pay()
            await order.waiting_for("packing")
    if stage == "packed":
        await order.pack()
        await order.reached("order.packed")

    cancelled = await order.act("cancel", reason="customer_request", note="changed mind")
    assert cancelled.status_code == 200, cancelled.text
    status = await order.until(lambda s: s.stage == Stage.CANCELLED)

    last = status.timeline[-1]
    assert last.type == "order.cancelled" and last.actor == "key:operator"
    if stage != "review":
        refs = await order.refs()
        payment = (await stack.sim.get(f"/payment/v1/payments/{refs.payment_id}")).json()
        assert payment["status"] == ("cancelled" if stage == "payment" else "refunded")
        if (
            stage != "payment"
        ):  # the provider confirms the refund with a signed webhook, recorded once
            webhooks = (await stack.sim.get("/sim/webhooks")).json()
            refunds = [
                w
                for w in webhooks
                if w["payload"].get("order_ref") == order.order_id
                and w["payload"]["type"] == "payment.refunded"
            ]
            assert [w["status"] for w in refunds] == [202]
        reservation = (await stack.sim.get(f"/warehouse/v1/reservations/{order.order_id}")).json()
        assert all(line["reserved"] == 0 for line in reservation["lines"])
    assert (await order.sent())[-1] == "cancelled"
    refused = await order.act("cancel", reason="other")
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]


async def test_cancellation_after_handover_is_refused(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    refused = await order.act("cancel", reason="customer_request")
    assert refused.status_code == 409
    assert "carrier" in refused.json()["detail"]
    assert (await order.status()).stage == Stage.TRANSIT


async def test_update_in_the_wrong_stage_is_refused_with_a_reason(stack: Stack) -> None:
    order = await Journey.place(stack)
    await order.waiting_for("payment")
    refused = await order.act("confirm")
    assert refused.status_code == 409
    assert "not awaiting confirmation" in refused.json()["detail"]
    refused = await order.act("stock-decision", choice="ship_available")
    assert refused.status_code == 409 and "no stock decision is pending" in refused.json()["detail"]


async def test_picking_defect_opens_an_incident_and_goes_back_to_picking(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack(defects=["MUG-01: cracked handle"])
    await order.reached("incident.opened")
    await order.until(
        lambda s: Journey.types(s).count("picking.started") == 2 and s.waiting_for == "packing"
    )
    await order.pack()
    await order.reached("order.packed")
    [incident] = await order.incidents()
    assert (
        incident.stage == "picking" and incident.cause == "human" and "cracked" in incident.summary
    )


async def test_feedback_waits_for_the_customers_daytime(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    # Deliver at 22:30 in Kyiv: 24 h later is night, so the request waits for 09:00.
    now = (await stack.env.get_current_time()).astimezone(KYIV)
    evening = now.replace(hour=22, minute=30, second=0, microsecond=0)
    if evening <= now:
        evening += DAY
    await order.sleep(evening - now)
    await order.carrier("Delivered")
    status = await order.reached("order.delivered")
    delivered_at = next(e.at for e in status.timeline if e.type == "order.delivered")

    await order.sleep(2 * DAY)
    status = await order.reached("feedback.requested")
    requested_at = next(e.at for e in status.timeline if e.type == "feedback.requested")
    local = requested_at.astimezone(KYIV)
    assert 9 <= local.hour < 21, f"sent at {local}"
    assert timedelta(hours=24) <= requested_at - delivered_at <= timedelta(hours=48)


async def test_negative_feedback_opens_an_incident(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.sleep(2 * DAY)
    await order.reached("feedback.requested")
    answer = await order.answer("feedback", {"nps": 3, "comment": "Box was wet"})
    assert answer.status_code == 200
    again = await order.answer("feedback", {"nps": 9})
    assert again.json()["duplicate"] is True
    await order.until(lambda s: s.stage == Stage.COMPLETED)
    [incident] = await order.incidents()
    assert incident.stage == "feedback" and "negative" in incident.summary
    assert "manager_incident" in await order.sent()


async def test_feedback_given_before_the_request_ends_it_and_opens_the_incident_at_once(
    stack: Stack,
) -> None:
    """Rated from the status page while the request waits for its time: no "how was your
    order?" and no reminder ever arrive, the incident is in the managers' queue at once, and
    the console's order page shows the answer."""
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.reached("feedback.scheduled")
    answer = await order.answer("feedback", {"nps": 2}, token=order.link(LinkPurpose.STATUS))
    assert answer.status_code == 200, answer.text

    done = await order.until(lambda s: s.stage == Stage.COMPLETED)  # no timer skipped
    assert Journey.types(done)[-3:] == ["feedback.received", "incident.opened", "order.completed"]
    [incident] = await order.incidents()
    assert incident.stage == "feedback" and "negative" in incident.summary
    await order.sleep(10 * DAY)
    sent = await order.sent()
    assert "feedback_request" not in sent and "feedback_reminder" not in sent
    assert "manager_incident" in sent

    console = Console(stack)
    assert (await console.sign_in(await _account(stack, Role.SUPPORT))).status_code == 303
    page = await console.http.get(f"/console/orders/{order.order_id}")
    assert page.status_code == 200
    assert "feedback.received" in page.text and "negative feedback" in page.text


async def test_no_feedback_gets_one_reminder(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.to_delivery()
    await order.sleep(10 * DAY)
    status = await order.until(lambda s: s.stage == Stage.COMPLETED)
    assert "feedback.none" in Journey.types(status)
    sent = await order.sent()
    assert sent.count("feedback_request") == 1 and sent.count("feedback_reminder") == 1


async def test_carrier_silence_marks_the_order_delayed(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    await order.carrier("InTransit")
    await order.reached("carrier.InTransit")
    await order.sleep(timedelta(days=3, hours=1))
    status = await order.reached("transit.no_news")
    assert status.status == "delayed"
    await order.carrier("Delivered")
    await order.reached("order.delivered")


async def test_partial_stock_ships_what_is_there(stack: Stack) -> None:
    lines = [
        {"sku": "MUG-01", "name": "Mug", "quantity": 1, "unit_price": "250.00"},
        {"sku": "GONE-01", "name": "Sold out", "quantity": 2, "unit_price": "100.00"},
    ]
    order = await Journey.place(stack, lines=lines, payment={"method": "cod"})
    await order.waiting_for("stock_decision")
    decided = await order.act("stock-decision", choice="ship_available")
    assert decided.status_code == 200, decided.text
    status = await order.waiting_for("packing")
    assert "order.changed" in Journey.types(status)
    view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert [line["sku"] for line in view["lines"]] == ["MUG-01"] and view["total"] == "250.00"


async def test_partial_stock_takes_an_alternative(stack: Stack) -> None:
    lines = [{"sku": "GONE-02", "name": "Sold out", "quantity": 1, "unit_price": "100.00"}]
    order = await Journey.place(stack, lines=lines, payment={"method": "cod"})
    await order.waiting_for("stock_decision")
    refused = await order.act("stock-decision", choice="alternative")
    assert refused.status_code == 409 and "alternative_lines" in refused.json()["detail"]
    alternative = [
        {"sku": "TEA-01", "name": "Green tea 100 g", "quantity": 2, "unit_price": "60.00"}
    ]
    decided = await order.act(
        "stock-decision",
        choice="alternative",
        alternative_lines=alternative,
    )
    assert decided.status_code == 200, decided.text
    status = await order.waiting_for("packing")
    assert Journey.types(status).count("stock.reserved") == 1
    view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["total"] == "120.00"


async def test_carrier_exception_opens_an_external_incident(stack: Stack) -> None:
    order = await Journey.place(stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    await order.carrier("Exception", "parcel damaged at hub")
    status = await order.reached("incident.opened")
    assert status.status == "delayed"
    [incident] = await order.incidents()
    assert incident.cause == "external" and "damaged" in incident.summary

    async def told() -> bool:
        return {"delivery_problem", "manager_incident"} <= set(await order.sent())

    await eventually(told, what="the customer and the managers told")


async def test_the_customer_chooses_to_cancel_when_stock_is_missing(stack: Stack) -> None:
    order = await Journey.place(
        stack, lines=[{"sku": "GONE-03", "name": "Sold out", "quantity": 1, "unit_price": "10.00"}]
    )
    await order.waiting_for("stock_decision")
    chosen = await order.answer("stock-choice", {"choice": "cancel"})  # the e-mail's link, no key
    assert chosen.status_code == 200, chosen.text
    # The step written, not only the stage: the query may say "cancelled" a moment before.
    status = await order.reached("order.cancelled")
    decided = next(e for e in status.timeline if e.type == "stock.decided")
    assert decided.actor == "customer" and status.timeline[-1].detail["reason"] == "out_of_stock"
    again = await order.answer("stock-choice", {"choice": "backorder"})
    assert again.status_code == 409


async def test_an_order_in_flight_survives_its_customers_erasure(
    stack: Stack, tmp_path: Path
) -> None:
    order = await Journey.place(
        stack, customer={**sample_order()["customer"], "channels": ["sms", "email"]}
    )
    await order.waiting_for("payment")
    told = await order.outbox()
    assert [(n.kind, n.status) for n in told] == [
        ("confirmation", "sent"),
        ("payment_requested", "sent"),
    ]
    erased = await stack.api.post(
        "/v1/admin/erasures", json={"email": order.body["customer"]["email"]}
    )
    assert erased.status_code == 200, erased.text

    await order.to_delivery()
    await order.sleep(10 * DAY)
    done = await order.until(lambda s: s.stage == Stage.COMPLETED)

    assert Journey.types(done)[-2:] == ["feedback.none", "order.completed"]
    after = (await order.outbox())[len(told) :]
    assert [n.kind for n in after] == [
        "payment_received",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "feedback_request",
        "feedback_reminder",
    ]
    assert {(n.channel, n.recipient_masked, n.status, n.attempts) for n in after} == {
        ("none", "erased", "recipient_erased", 0)
    }  # nobody to tell, and the outbox says why
    texts = (await stack.sim.get("/sms/v1/messages")).json()
    assert len([m for m in texts if m["key"].startswith(order.order_id)]) == len(told)
    assert order.mailbox() == []
    assert await order.incidents() == []
    documents = (await stack.api.get(f"/v1/orders/{order.order_id}/documents")).json()
    assert [d["kind"] for d in documents] == ["packing_list", "receipt"]  # no label to print
    receipt = await stack.api.get(f"/v1/orders/{order.order_id}/documents/receipt.pdf")
    (tmp_path / "receipt.pdf").write_bytes(receipt.content)
    text = await asyncio.to_thread(
        subprocess.run,
        ["pdftotext", "receipt.pdf", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert order.body["number"] in text.stdout and "erased" not in text.stdout


async def test_an_order_erased_before_its_checks_is_checked_and_goes_on(stack: Stack) -> None:
    body = sample_order(payment={"method": "cod"})
    async with open_session(stack.engine) as session:
        recorded, _ = await record_order(session, body=OrderCreate.model_validate(body))
    erased = await stack.api.post("/v1/admin/erasures", json={"email": body["customer"]["email"]})
    assert erased.json()["orders"] == [str(recorded.id)]
    await OrderWorkflows(stack.settings, stack.client).start(
        order_id=recorded.id, number=recorded.number
    )
    order = Journey(stack, str(recorded.id), body)

    status = await order.waiting_for("packing")  # checked, confirmed, reserved: no retry loop

    assert "order.confirmed" in Journey.types(status)
    told = await order.outbox()
    assert told[0].kind == "confirmation"
    assert {n.status for n in told} == {"recipient_erased"}


async def test_shipping_what_picking_found_refunds_the_rest(stack: Stack) -> None:
    lines = [
        {"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "250.00"},
        {"sku": "TEA-01", "name": "Green tea 100 g", "quantity": 1, "unit_price": "60.00"},
    ]
    order = await Journey.place(stack, lines=lines)
    await order.until_paid()
    for attempt in range(1, stack.settings.policy_picking_attempts + 1):
        await order.until(
            lambda s, n=attempt: (
                s.waiting_for == "packing" and Journey.types(s).count("picking.started") == n
            )
        )
        await order.pack(missing=["TEA-01"])
    await order.waiting_for("stock_decision")
    decided = await order.act("stock-decision", choice="ship_available")
    assert decided.status_code == 200, decided.text
    await order.waiting_for("carrier")

    view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert [line["sku"] for line in view["lines"]] == ["MUG-01"] and view["total"] == "500.00"
    refs = await order.refs()
    payment = (await stack.sim.get(f"/payment/v1/payments/{refs.payment_id}")).json()
    assert (payment["status"], payment["refunded"]) == ("partially_refunded", "60.00")
    assert any("не вдалося зібрати" in subject for subject in order.mailbox())


async def test_the_read_model_keeps_what_the_order_waits_for(stack: Stack) -> None:
    """Lists, the status page and the console read progress from Postgres, no live query."""
    order = await Journey.place(stack)
    live = await order.waiting_for("payment")

    async def kept() -> dict[str, object] | None:
        view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
        return view["progress"] if view["progress"]["waiting_for"] == "payment" else None

    progress = await eventually(kept, what="the wait in the read model")
    assert progress["payment_status"] == "awaiting_payment"
    assert set(progress["allowed_actions"]) == set(live.allowed_actions)
    assert live.next_deadline is not None
    assert progress["next_deadline"].startswith(live.next_deadline.at.isoformat()[:16])

    await order.pay()
    packing = await order.waiting_for("packing")

    async def moved() -> dict[str, object] | None:
        view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
        return view["progress"] if view["progress"]["waiting_for"] == "packing" else None

    progress = await eventually(moved, what="the next wait in the read model")
    assert progress["payment_status"] == "paid"
    assert packing.next_deadline is not None  # the warehouse has a day (an incident after)
    assert progress["next_deadline"].startswith(packing.next_deadline.at.isoformat()[:16])
