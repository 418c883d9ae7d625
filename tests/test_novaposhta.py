"""Orders that go with Nova Poshta, on the real stack (dev server, Postgres, SMTP, the
simulators over HTTP) with `ORDERFLOW_CARRIER=novaposhta`: the simulator speaks API 2.0 from
the documentation's fixtures; orderflow books waybills, prints stickers, deletes a waybill
on cancel, and learns every status by polling (the tracking schedule's rounds).

Two stacks, each on a database of its own (a round asks about every parcel in flight in its
database): one on autopilot, whose schedule polls every second, for whole journeys; one
driven by hand, its rounds run by the tests, for the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from schema.api.orders import OrderCreate
from schema.contracts import TrackingRound, tracking_workflow_id
from schema.database import make_engine, open_session
from schema.links import LinkPurpose
from schema.tables import Document, Incident, Order, OrderContact, TrackedParcel
from settings import Settings
from starter.services.orders import record_order
from tests.conftest import database_of_its_own
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack
from tests.support import body_text, eventually, mail_to, sample_order
from worker import ensure_tracking_schedule
from workflows.tracking import CarrierTrackingWorkflow

BRANCH = {"carrier": "novaposhta", "ref": "1ec09d2e-e1c2-11e3-8c4a-0050568002cf", "number": "25"}
CLOSED_BRANCH = {"carrier": "novaposhta", "ref": "5a39e2f2-0a9b-11e4-8c4a-0050568002cf"}
TO_THE_BRANCH = {"method": "branch", "branch": BRANCH}


@asynccontextmanager
async def polling_stack(
    env: WorkflowEnvironment,
    base: Settings,
    postgres: EmbeddedPostgres,
    maildir: Any,
    *,
    carrier: str = "novaposhta",
    scheduled: bool,
    **changes: Any,
) -> AsyncIterator[Stack]:
    """A stack whose parcels go with a carrier tracked by polling, on a database of its own;
    `scheduled`: the worker's schedule of tracking rounds runs (else the tests run rounds)."""
    with database_of_its_own(postgres, carrier) as url:
        engine = make_engine(url)
        settings = base.model_copy(update={"database_url": url, "carrier": carrier, **changes})
        async with run_stack(env, settings, engine, maildir) as stack:
            if scheduled:  # as the worker does at its start
                await ensure_tracking_schedule(stack.client, stack.settings, polls=True)
            yield stack
            if scheduled:
                schedule_id = tracking_workflow_id(stack.settings.temporal_task_queue)
                await stack.client.get_schedule_handle(schedule_id).delete()
        await engine.dispose()


@pytest.fixture(scope="module")
async def autopilot(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    """Everything on its own: payments, packing, Nova Poshta's codes a step every 2 s; the
    schedule polls every second; a feedback window of seconds, so orders end."""
    async with polling_stack(
        temporal_env,
        base_settings,
        postgres,
        mail_sink.maildir,
        scheduled=True,
        carrier_poll_interval=timedelta(seconds=1),
        simulator_autopilot=True,
        simulator_step_seconds=2.0,
        policy_feedback_earliest=timedelta(seconds=1),
        policy_feedback_latest=timedelta(seconds=3),
        policy_feedback_reminder=timedelta(seconds=2),
        policy_feedback_wait=timedelta(seconds=4),
        policy_quiet_from_hour=24,  # no night: the feedback request goes at once
        policy_quiet_until_hour=0,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def by_hand(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    """Nova Poshta's codes set by hand, rounds run by the tests; a payout is late after 3 s."""
    async with polling_stack(
        temporal_env,
        base_settings,
        postgres,
        mail_sink.maildir,
        scheduled=False,
        policy_cod_payout_wait=timedelta(seconds=3),
    ) as stack:
        yield stack


async def tracking_round(stack: Stack, page: int = 500) -> TrackingRound:
    """One round of the schedule's, now."""
    return await stack.client.execute_workflow(
        CarrierTrackingWorkflow.run,
        TrackingRound(page=page),
        id=f"round-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal_task_queue,
    )


async def waybill(stack: Stack, number: str) -> dict[str, Any]:
    documents = (await stack.sim.get("/novaposhta/sim/documents")).json()
    [found] = [d for d in documents if d["number"] == number]
    return dict(found)


async def set_code(stack: Stack, number: str, code: str, **more: str) -> None:
    answer = await stack.sim.post(
        f"/novaposhta/sim/documents/{number}/status", json={"code": code, **more}
    )
    assert answer.status_code == 200, answer.text


async def shipped(order: Journey) -> str:
    """From packing to the waybill: its number."""
    await order.waiting_for("packing")
    await order.pack()
    await order.waiting_for("carrier")
    return str((await order.refs()).tracking_number)


# --- whole journeys, on autopilot -----------------------------------------------------------


async def test_a_branch_order_paid_in_cash_reaches_the_branch_and_its_money_the_shop(
    autopilot: Stack,
) -> None:
    order = await Journey.place(autopilot, delivery=TO_THE_BRANCH, payment={"method": "cod"})
    done = await order.until(lambda s: s.stage == "completed", timeout=90)

    steps = Journey.types(done)
    assert steps.index("carrier.AvailableForPickup") < steps.index("order.delivered")
    assert steps.index("payment.awaiting_payout") < steps.index("payment.cod_transfer_pending")
    assert steps.index("payment.cod_transfer_pending") < steps.index(
        "payment.collected_on_delivery"
    )
    assert done.payment_status == "collected_on_delivery"
    at_branch = next(e for e in done.timeline if e.type == "carrier.AvailableForPickup")
    assert at_branch.detail["carrier_status"] == "7" and at_branch.detail["storage_until"]
    collected = next(e for e in done.timeline if e.type == "payment.collected_on_delivery")
    assert collected.detail == {"amount": "500", "paid_out_by": "carrier"}

    number = str((await order.refs()).tracking_number)
    sent = await waybill(autopilot, number)
    assert (sent["service"], sent["branch_number"], sent["city"]) == (
        "WarehouseWarehouse",
        "25",
        "Київ",
    )
    assert sent["redelivery"] == "500"  # BackwardDeliveryData: the order's total back
    assert sent["codes"] == ["1", "4", "5", "7", "10", "11"]
    assert str((await order.refs()).tracking_url).endswith(f"?cargo_number={number}")
    assert await order.sent() == [
        "confirmation",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "ready_for_pickup",
        "delivered",
        "feedback_request",
        "feedback_reminder",
    ]
    [ready] = [m for m in order.mailbox() if "чекає на вас" in m]
    assert ready
    documents = (await autopilot.api.get(f"/v1/orders/{order.order_id}/documents")).json()
    assert [d["kind"] for d in documents] == ["carrier_label", "label", "packing_list", "receipt"]
    async with open_session(autopilot.engine) as session:
        sticker = (
            await session.exec(
                select(Document).where(
                    Document.order_id == uuid.UUID(order.order_id), Document.kind == "carrier_label"
                )
            )
        ).one()
    assert sticker.content.startswith(b"%PDF")
    assert await order.incidents() == []
    page = (await autopilot.api.get(f"/v1/customer/orders/{order.link(LinkPurpose.STATUS)}")).json()
    kept_until = date.fromisoformat(at_branch.detail["storage_until"])
    assert page["pickup"]["point"] == "Nova Poshta №25"
    assert page["pickup"]["hold_until"].startswith(kept_until.isoformat())  # midnight in Kyiv
    assert page["payment"]["status"] == "collected_on_delivery"


async def test_a_door_delivery_prepaid_is_delivered_by_the_courier(autopilot: Stack) -> None:
    order = await Journey.place(autopilot)  # courier to Khreshchatyk 1, prepaid
    done = await order.until(lambda s: s.stage == "completed", timeout=90)
    assert done.payment_status == "paid"
    steps = Journey.types(done)
    assert "carrier.OutForDelivery" in steps and "payment.awaiting_payout" not in steps
    sent = await waybill(autopilot, str((await order.refs()).tracking_number))
    assert sent["service"] == "WarehouseDoors" and sent["redelivery"] == ""
    assert sent["codes"] == ["1", "4", "5", "101", "9"]
    # The carrier's estimate of the delivery date is the order's, and the customer's.
    expected = date(*map(int, reversed(sent["estimated"].split("."))))
    shipped_step = next(e for e in done.timeline if e.type == "order.shipped")
    assert shipped_step.detail["expected_date"] == expected.isoformat()
    view = (await autopilot.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["expected_date"] == expected.isoformat()
    [mail] = [
        m
        for m in mail_to(autopilot.maildir, order.body["customer"]["email"])
        if "відправлено" in str(m["Subject"])
    ]
    assert "Очікувана дата доставки за даними перевізника" in body_text(mail, "plain")


async def test_a_customer_return_goes_back_with_nova_poshta_and_is_refunded(
    autopilot: Stack,
) -> None:
    """Nova Poshta's return order of the delivered waybill: nothing to print, the return's
    waybill tracked by the rounds to the shop's branch, inspected, refunded."""
    order = await Journey.place(autopilot)  # courier, prepaid
    await order.until(lambda s: s.stage == "completed", timeout=90)
    delivered = str((await order.refs()).tracking_number)
    asked = await order.ask_for_return(
        {"lines": [{"sku": "MUG-01", "quantity": 2}], "reason": "wrong_size"}
    )
    assert asked.status_code == 201, asked.text
    opened = asked.json()
    assert opened["status"] == "approved" and opened["needs_label"] is False
    number = opened["tracking_number"]
    orders = (await autopilot.sim.get("/novaposhta/sim/returns")).json()
    [ordered] = [o for o in orders if o["waybill"] == number]
    assert (ordered["document"], ordered["note"]) == (delivered, opened["number"])

    await order.return_reached("received")  # the rounds told the return, not the order
    assert (await waybill(autopilot, number))["codes"] == ["1", "4", "5", "7", "9"]
    inspected = await autopilot.sim.post(
        f"/warehouse/sim/returns/{opened['return_id']}/inspect",
        json={
            "order_ref": order.order_id,
            "lines": [{"sku": "MUG-01", "received": 2, "accepted": 2}],
        },
    )
    assert inspected.json()["webhook_status"] == 202, inspected.text
    refunded = await order.return_reached("refunded")
    assert refunded["refunded"] == "500.00"
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

    async def left_the_rounds() -> TrackedParcel | None:  # received: never asked about again
        async with open_session(autopilot.engine) as session:
            parcel = await session.get(TrackedParcel, number)
        return parcel if parcel is not None and parcel.done else None

    parcel = await eventually(left_the_rounds, what="the return parcel out of the rounds")
    assert (str(parcel.return_id), parcel.code) == (opened["return_id"], "9")

    # No label is made, none is promised: the branch makes out the return's waybill.
    token = order.link(LinkPurpose.STATUS)
    label = await autopilot.api.get(f"/order/{token}/returns/{opened['return_id']}/label.pdf")
    assert label.status_code == 404
    [approved] = [
        m
        for m in mail_to(autopilot.maildir, order.body["customer"]["email"])
        if opened["number"] in str(m["Subject"]) and "схвалено" in str(m["Subject"])
    ]
    text = body_text(approved, "plain")
    assert "label.pdf" not in text and "етикет" not in text
    assert f"cargo_number={number}" in text
    page = await autopilot.api.get(f"/order/{token}/return")
    assert "label.pdf" not in page.text


async def test_a_second_return_of_one_waybill_is_refused_by_nova_poshta_in_its_words(
    by_hand: Stack,
) -> None:
    """Nova Poshta takes one return order a waybill: a second return of the same order is
    refused for good, an incident with Nova Poshta's own words, the return flagged."""
    order = await Journey.place(by_hand)
    await order.waiting_for("payment")
    await order.pay()
    number = await shipped(order)
    await set_code(by_hand, number, "9")
    await tracking_round(by_hand)
    await order.reached("order.delivered")
    one_mug = {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "wrong_size"}
    first = await order.ask_for_return(one_mug)
    assert first.status_code == 201 and first.json()["status"] == "approved", first.text
    second = await order.ask_for_return(one_mug)
    assert second.status_code == 201, second.text

    async def flagged() -> bool:
        rows = await order.returns()
        return any(r["return_id"] == second.json()["return_id"] and r["needs_action"] for r in rows)

    await eventually(flagged, what="the refused return flagged for an operator")

    incidents = await eventually(order.incidents, what="the refused return's incident")
    [refused] = [i for i in incidents if "AdditionalService" in i.summary]
    assert f"Заявка на повернення {number} вже існує" in refused.summary
    orders = (await by_hand.sim.get("/novaposhta/sim/returns")).json()
    assert [o["document"] for o in orders].count(number) == 1


async def test_the_worker_keeps_one_schedule_of_rounds_at_the_interval_set(
    autopilot: Stack,
) -> None:
    schedule_id = tracking_workflow_id(autopilot.settings.temporal_task_queue)
    await ensure_tracking_schedule(autopilot.client, autopilot.settings, polls=True)  # again
    described = await autopilot.client.get_schedule_handle(schedule_id).describe()
    [interval] = described.schedule.spec.intervals
    assert interval.every == timedelta(seconds=1)
    assert described.info.num_actions > 0  # it has been polling all along


# --- by hand ----------------------------------------------------------------------------------


async def test_rounds_ask_a_hundred_numbers_a_call_and_page_through_many_parcels(
    by_hand: Stack,
) -> None:
    """250 parcels in flight: a round of pages of 100 asks about each once, a hundred
    numbers a call at most, each page a run of its own (continued as new)."""
    numbers = await _parcels_in_flight(by_hand, 250)
    before = len((await by_hand.sim.get("/novaposhta/sim/calls")).json()["tracking"])
    first = await by_hand.client.start_workflow(
        CarrierTrackingWorkflow.run,
        TrackingRound(page=100),
        id=f"round-{uuid.uuid4().hex[:8]}",
        task_queue=by_hand.settings.temporal_task_queue,
    )
    done = await first.result()

    calls = (await by_hand.sim.get("/novaposhta/sim/calls")).json()["tracking"][before:]
    assert done.asked >= 250
    assert max(calls) == 100 and sum(calls) == done.asked and len(calls) == done.calls
    history = await by_hand.client.get_workflow_handle(
        first.id, run_id=first.first_execution_run_id
    ).fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert len(history.events) < 400  # a page of 100 parcels, whatever else is in flight
    async with open_session(by_hand.engine) as session:  # they leave the rounds
        await session.execute(
            update(Order).where(col(Order.number).in_(numbers)).values(stage="cancelled")
        )
        await session.commit()


async def _parcels_in_flight(stack: Stack, count: int) -> list[str]:
    """Orders in transit with a waybill each, written straight to Postgres and the simulator
    (no workflow behind them: the rounds' news to them is not delivered, and asked again)."""
    orders = []
    async with open_session(stack.engine) as session:
        for _ in range(count):
            body = OrderCreate.model_validate(sample_order())
            order, _ = await record_order(session, body=body)
            orders.append(order)
        booked = []
        for order in orders:
            saved = await stack.sim.post(
                "/novaposhta/v2.0/json/",
                json={
                    "apiKey": stack.settings.novaposhta_api_key,
                    "modelName": "InternetDocument",
                    "calledMethod": "save",
                    "methodProperties": {
                        "ServiceType": "WarehouseDoors",
                        "RecipientCityName": "Kyiv",
                        "RecipientAddressName": "Khreshchatyk",
                        "RecipientName": "Iryna Koval",
                        "RecipientsPhone": "380501234567",
                        "Sender": "s",
                        "ContactSender": "c",
                        "SenderAddress": "a",
                        "CitySender": "k",
                    },
                },
            )
            number = saved.json()["data"][0]["IntDocNumber"]
            booked.append(
                TrackedParcel(tracking_number=number, carrier_api="novaposhta", order_id=order.id)
            )
        session.add_all(booked)
        await session.execute(
            update(Order).where(col(Order.id).in_([o.id for o in orders])).values(stage="transit")
        )
        await session.commit()
    return [order.number for order in orders]


async def test_news_of_one_parcel_reaches_its_own_order_and_an_unknown_code_none(
    by_hand: Stack,
) -> None:
    mine = await Journey.place(by_hand, payment={"method": "cod"})
    theirs = await Journey.place(by_hand, payment={"method": "cod"})
    mine_number, theirs_number = await shipped(mine), await shipped(theirs)
    await tracking_round(by_hand)  # both: created (1)
    await mine.reached("carrier.InfoReceived")
    await set_code(by_hand, theirs_number, "5")
    await tracking_round(by_hand)
    await theirs.reached("carrier.InTransit")
    assert "carrier.InTransit" not in Journey.types(await mine.status())

    steps_before = len((await mine.status()).timeline)
    await set_code(by_hand, mine_number, "999")  # a code orderflow's table does not know
    await tracking_round(by_hand)
    await mine.waiting_for("carrier")
    assert len((await mine.status()).timeline) == steps_before
    async with open_session(by_hand.engine) as session:
        kept = await session.get(TrackedParcel, mine_number)
    assert kept is not None and kept.code == "1"  # nothing it understood changed
    assert await mine.incidents() == []


async def test_a_payout_late_then_made_and_a_payout_in_another_amount(by_hand: Stack) -> None:
    late = await Journey.place(by_hand, payment={"method": "cod"})
    wrong = await Journey.place(by_hand, payment={"method": "cod"})
    late_number, wrong_number = await shipped(late), await shipped(wrong)
    await set_code(by_hand, late_number, "10")
    await set_code(by_hand, wrong_number, "11", paid_out="450")
    await tracking_round(by_hand)

    status = await late.reached("payment.cod_transfer_pending")
    assert status.payment_status == "awaiting_payout"
    [incident] = await eventually(late.incidents, what="the late payout's incident", timeout=30)
    assert incident.key == "cod-payout-late" and incident.status == "open"
    view = (await by_hand.api.get(f"/v1/orders/{late.order_id}")).json()
    assert view["progress"]["payment_status"] == "awaiting_payout"

    mismatch = await wrong.reached("payment.cod_payout_mismatch")
    assert mismatch.payment_status == "awaiting_payout"
    [wrong_amount] = await eventually(wrong.incidents, what="the mismatch's incident")
    assert "paid out as 450" in wrong_amount.summary

    await set_code(by_hand, late_number, "11")
    await tracking_round(by_hand)
    paid = await late.reached("payment.collected_on_delivery")
    assert paid.payment_status == "collected_on_delivery"

    async def resolved() -> bool:
        async with open_session(by_hand.engine) as session:
            row = (
                await session.exec(
                    select(Incident).where(Incident.order_id == uuid.UUID(late.order_id))
                )
            ).one()
        return row.status == "resolved"

    await eventually(resolved, what="the late payout's incident resolved")


async def test_cancel_deletes_the_waybill(by_hand: Stack) -> None:
    """The sticker cannot be printed (Nova Poshta answers a login page): the step fails for
    good, an operator cancels, and compensation deletes the waybill."""
    await by_hand.sim.post("/novaposhta/sim/stickers", json={"refused": True})
    try:
        order = await Journey.place(by_hand, payment={"method": "cod"})
        await order.waiting_for("packing")
        await order.pack()
        await order.waiting_for("incident_resolution")
        number = str((await order.refs()).tracking_number)
        cancelled = await order.act("cancel", reason="other", note="no sticker")
        assert cancelled.status_code == 200, cancelled.text
    finally:
        await by_hand.sim.post("/novaposhta/sim/stickers", json={"refused": False})
    status = await order.until(lambda s: s.stage == "cancelled")
    assert "shipment cancelled" in status.timeline[-1].detail["undone"]
    deleted = await waybill(by_hand, number)
    assert deleted["code"] == "2"
    calls = (await by_hand.sim.get("/novaposhta/sim/calls")).json()
    assert deleted["ref"] in calls["deleted"]
    async with open_session(by_hand.engine) as session:
        parcel = await session.get(TrackedParcel, number)
    assert parcel is not None and parcel.done  # never asked about again


async def test_a_branch_nova_poshta_does_not_know_as_working_waits_for_an_operator(
    by_hand: Stack,
) -> None:
    order = await Journey.place(
        by_hand, delivery={"method": "branch", "branch": CLOSED_BRANCH}, payment={"method": "cod"}
    )
    status = await order.waiting_for("operator_confirmation")
    requested = next(e for e in status.timeline if e.type == "review.requested")
    assert (
        "novaposhta branch 5a39e2f2-0a9b-11e4-8c4a-0050568002cf is not working"
        in (requested.detail["reasons"])
    )


async def test_a_post_order_nova_poshta_cannot_take_waits_for_an_operator(by_hand: Stack) -> None:
    """Nova Poshta delivers to the door or a branch, nothing by `post`: the order is held
    before the customer is asked to pay, not stopped at handover, paid and packed."""
    address = sample_order()["delivery"]["address"]
    order = await Journey.place(by_hand, delivery={"method": "post", "address": address})
    status = await order.waiting_for("operator_confirmation")
    requested = next(e for e in status.timeline if e.type == "review.requested")
    assert requested.detail["reasons"] == (
        "nothing could ship it: no carrier rule for {'country': 'UA', 'method': 'post', "
        "'speed': 'standard', 'goods_class': 'general'} at 1.0 kg with novaposhta"
    )
    assert await order.sent() == ["awaiting_review"]  # no payment link, no promise
    rejected = await order.act("reject", reason="Nova Poshta delivers no post: choose a branch")
    assert rejected.status_code == 200, rejected.text
    await order.reached("order.cancelled")
    assert await order.incidents() == []


@pytest.mark.parametrize(
    ("delivery", "field"),
    [
        ({"method": "branch"}, "delivery.branch"),
        (
            {
                "method": "courier",
                "branch": BRANCH,
                "address": {
                    "country": "UA",
                    "city": "Kyiv",
                    "line1": "Khreshchatyk 1",
                    "postal_code": "01001",
                },
            },
            "delivery.branch",
        ),
        ({"method": "branch", "branch": {**BRANCH, "ref": "25"}}, "delivery.branch.ref"),
        ({"method": "branch", "branch": {**BRANCH, "carrier": "meest"}}, "delivery.branch.carrier"),
    ],
)
async def test_a_wrong_branch_is_422_naming_the_field(
    by_hand: Stack, delivery: dict[str, Any], field: str
) -> None:
    answer = await by_hand.api.post("/v1/orders", json=sample_order(delivery=delivery))
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_a_branch_order_is_kept_with_its_branch_and_erased_with_the_address(
    by_hand: Stack,
) -> None:
    order = await Journey.place(by_hand, delivery=TO_THE_BRANCH, payment={"method": "cod"})
    view = (await by_hand.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["delivery_method"] == "branch"
    erased = await by_hand.api.post(
        "/v1/admin/erasures", json={"email": order.body["customer"]["email"]}
    )
    assert erased.status_code == 200, erased.text
    async with open_session(by_hand.engine) as session:
        contact = await session.get(OrderContact, uuid.UUID(order.order_id))
    assert contact is not None and contact.branch_ref is None and contact.branch_number is None
    assert contact.country == "UA"  # names nobody: the carrier rules still read it
