"""The whole lifecycle through the real providers' simulators on autopilot, as `make dev` runs
it: Nova Poshta with LiqPay (to a branch, cash on delivery paid out) and with Monobank
(prepaid, to the door). Nobody drives a step: the warehouse packs, the payment page pays,
the waybill goes from code to code, and orderflow learns each one by its tracking rounds.

On a time-skipping server, so the feedback request comes at its real 24-48 h after delivery:
one of each test's own, whose clock starts at the wall clock the simulators date by (on the
session's, days already skipped would make a branch's free storage, dated by Nova Poshta's
simulator, end the moment the parcel arrives). Each test on a database of its own too (a round
asks about every parcel in flight there). That server has no schedules, so the test starts the
rounds the worker's schedule would: one at a time, one after another (`tracking_rounds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from babel.dates import format_date
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Replayer

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from runtime import DATA_CONVERTER
from schema.contracts import OrderStatus, Stage, TrackingRound, tracking_workflow_id
from schema.database import make_engine
from schema.shop_events import ShopEventType
from settings import Settings
from tests.conftest import database_of_its_own, time_skipping_server
from tests.lifecycle import Journey
from tests.payments import payment_state, webhook_rows
from tests.stack import Stack, run_stack
from tests.support import body_text, eventually, mail_to, order_handle
from tests.test_novaposhta import TO_THE_BRANCH, waybill
from worker import WORKFLOW_RUNNER
from workflows.order import OrderWorkflow
from workflows.tracking import CarrierTrackingWorkflow

DAY = timedelta(days=1)
# The autopilot's step, `make dev`'s: far longer than a tracking round takes, so every code
# of the waybill's is told on its own (10, then 11: the money on its way, then paid out).
STEP_SECONDS = 3.0


@asynccontextmanager
async def autopilot_stack(
    base: Settings,
    postgres: EmbeddedPostgres,
    maildir: Any,
    provider: str,
    **changes: Any,
) -> AsyncIterator[Stack]:
    """The time-skipping stack as `make dev` runs: Nova Poshta, `provider` taking the money,
    the simulators on autopilot, the policies' real durations; tracking rounds running."""
    with database_of_its_own(postgres, provider) as url:
        engine = make_engine(url)
        settings = base.model_copy(
            update={
                "database_url": url,
                "carrier": "novaposhta",
                "payment_provider": provider,
                "simulator_autopilot": True,
                "simulator_step_seconds": STEP_SECONDS,
                **changes,
            }
        )
        async with (
            time_skipping_server() as env,
            run_stack(env, settings, engine, maildir) as stack,
            tracking_rounds(stack),
        ):
            # The shop's backend (the simulators' receiver) hears of every order's steps.
            subscribed = await stack.api.post(
                "/v1/webhook-subscriptions",
                json={"url": f"{stack.sim.base_url}/shop/events", "events": list(ShopEventType)},
            )
            assert subscribed.status_code == 201, subscribed.text
            yield stack
        await engine.dispose()


@asynccontextmanager
async def tracking_rounds(stack: Stack) -> AsyncIterator[None]:
    """The worker's schedule of tracking rounds, played by the test: a round, once the last
    has ended (the schedule's overlap SKIP). Each is watched by `describe`: waiting on its
    result would let the time-skipping server skip time."""

    async def rounds() -> None:
        for n in range(1_000_000):
            handle = await stack.client.start_workflow(
                CarrierTrackingWorkflow.run,
                TrackingRound(),
                id=f"{tracking_workflow_id(stack.settings.temporal_task_queue)}-{n}",
                task_queue=stack.settings.temporal_task_queue,
            )
            while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)

    running = asyncio.create_task(rounds())
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def at(status: OrderStatus, event_type: str) -> Any:
    return next(e for e in status.timeline if e.type == event_type)


def in_order(steps: list[str], *expected: str) -> bool:
    """Each of `expected` in `steps`, in this order."""
    positions = [steps.index(step) for step in expected]
    return positions == sorted(positions)


async def shop_heard(order: Journey, last: str) -> list[dict[str, Any]]:
    """The order's events as the shop's backend received them, once `last` has arrived."""

    async def arrived() -> list[dict[str, Any]] | None:
        received = (await order.stack.sim.get("/shop/sim/events")).json()
        events = [r["event"] for r in received if r["event"]["data"]["order_id"] == order.order_id]
        return events if last in [e["type"] for e in events] else None

    return await eventually(arrived, what=f"the shop told {last}")


async def feedback_after_a_day_or_two(order: Journey) -> OrderStatus:
    """The request 24-48 h after delivery (time skipped), answered with a 5: completed, thanked."""
    await order.sleep(2 * DAY)
    requested = await order.reached("feedback.requested")
    waited = at(requested, "feedback.requested").at - at(requested, "order.delivered").at
    assert timedelta(hours=24) <= waited <= timedelta(hours=48), waited
    answer = await order.answer("feedback", {"rating": 5})
    assert answer.status_code == 200 and answer.json()["accepted"], answer.text
    done = await order.until(lambda s: s.stage == Stage.COMPLETED)

    async def thanked() -> bool:  # the thanks go out beside the order's workflow
        return "feedback_thanks" in await order.sent()

    await eventually(thanked, what="the thank-you message")
    return done


async def replays(order: Journey) -> None:
    """The order's history, as the worker wrote it, replays against today's workflow."""
    history = await order_handle(order.stack.client, order.order_id).fetch_history()
    await Replayer(
        workflows=[OrderWorkflow], data_converter=DATA_CONVERTER, workflow_runner=WORKFLOW_RUNNER
    ).replay_workflow(history)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cod", ["backward_delivery", "payment_control"])
async def test_nova_poshta_and_liqpay_a_branch_order_paid_in_cash_and_paid_out(
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
    cod: str,
) -> None:
    async with autopilot_stack(
        base_settings,
        postgres,
        mail_sink.maildir,
        "liqpay",
        novaposhta_cod=cod,
    ) as stack:
        order = await Journey.place(stack, delivery=TO_THE_BRANCH, payment={"method": "cod"})
        received = await order.until(lambda s: s.status == "delivered", timeout=120)
        assert received.payment_status == "awaiting_payout"  # a step (3 s) before the payout
        paid = await order.until(
            lambda s: "payment.collected_on_delivery" in Journey.types(s), timeout=120
        )

        steps = Journey.types(paid)
        assert in_order(
            steps,
            "order.confirmed",
            "stock.reserved",
            "order.packed",
            "order.shipped",
            "carrier.InTransit",
            "carrier.AvailableForPickup",
            "order.delivered",
            "payment.awaiting_payout",  # received (10): delivered, the money not yet the shop's
            "payment.cod_transfer_pending",
            "payment.collected_on_delivery",  # paid out (11): now it is
        ), steps
        collected = at(paid, "payment.collected_on_delivery")
        assert collected.detail == {"amount": "500", "paid_out_by": "carrier"}
        assert paid.payment_status == "collected_on_delivery"
        heard = await shop_heard(order, "order.paid")
        told = [e["type"] for e in heard]
        assert in_order(told, "order.shipped", "order.delivered", "order.paid"), told
        [money] = [e["data"] for e in heard if e["type"] == "order.paid"]
        assert (money["amount"], money["payment_method"]) == ("500", "cod")

        # The InternetDocument.save Nova Poshta's simulator got: to branch 25, the total back.
        number = str((await order.refs()).tracking_number)
        sent = await waybill(stack, number)
        assert (sent["service"], sent["branch_number"], sent["city"]) == (
            "WarehouseWarehouse",
            "25",
            "Київ",
        )
        assert sent["reference"] == order.body["number"]
        assert (sent["redelivery"], sent["afterpayment"]) == (
            ("500", "") if cod == "backward_delivery" else ("", "500")
        )
        assert sent["codes"] == ["1", "4", "5", "7", "10", "11"]
        # Cash on delivery: LiqPay is never asked for a checkout.
        checkouts = (await stack.sim.get("/liqpay/sim/payments")).json()
        assert [p for p in checkouts if p["order_id"] == order.order_id] == []

        # At the branch: the customer told until when it is kept free.
        at_branch = at(paid, "carrier.AvailableForPickup")
        kept_until = date.fromisoformat(at_branch.detail["storage_until"])
        [ready] = [
            m
            for m in mail_to(stack.maildir, order.body["customer"]["email"])
            if "чекає на вас" in str(m["Subject"])
        ]
        assert (
            f"зберігатимуть безкоштовно до {format_date(kept_until, 'd MMMM y', locale='uk')}"
            in body_text(ready, "plain")
        )
        view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
        assert view["progress"]["payment_status"] == "collected_on_delivery"

        await feedback_after_a_day_or_two(order)

        expected = [
            "confirmation",
            "picking",
            "packed",
            "shipped",
            "in_transit",
            "ready_for_pickup",
            "delivered",
            "feedback_request",
            "feedback_thanks",
        ]
        assert await order.sent() == expected
        assert len(order.mailbox()) == len(expected)  # each arrived, once
        assert await order.incidents() == []
        await replays(order)


@pytest.mark.timeout(300)
async def test_nova_poshta_and_monobank_a_prepaid_order_to_the_door(
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
) -> None:
    async with autopilot_stack(base_settings, postgres, mail_sink.maildir, "monobank") as stack:
        order = await Journey.place(stack)  # courier to Khreshchatyk 1, prepaid
        delivered = await order.until(lambda s: "order.delivered" in Journey.types(s), 120)

        steps = Journey.types(delivered)
        assert in_order(
            steps,
            "order.confirmed",
            "stock.reserved",
            "payment.requested",
            "payment.succeeded",
            "order.packed",
            "order.shipped",
            "carrier.InTransit",
            "carrier.OutForDelivery",
            "order.delivered",
        ), steps
        assert delivered.payment_status == "paid"
        assert "payment.awaiting_payout" not in steps

        # The invoice Monobank's simulator got: the total in kopecks, hryvnia, our order.
        [invoice] = [
            i
            for i in (await stack.sim.get("/monobank/sim/invoices")).json()
            if i["reference"] == order.order_id
        ]
        assert (invoice["amount"], invoice["ccy"], invoice["status"]) == (50000, 980, "success")
        assert invoice["webHookUrl"] == f"{stack.settings.public_url}/v1/webhooks/monobank"
        assert (await order.refs()).payment_id == invoice["invoiceId"]
        # Its webhooks, signed (X-Sign, ECDSA), were verified and taken, each once.
        answered = [
            (d["payload"]["status"], d["status"])
            for d in (await stack.sim.get("/sim/webhooks")).json()
            if d["payload"].get("invoiceId") == invoice["invoiceId"]
        ]
        assert answered == [("processing", 200), ("success", 200)]
        assert [r.type for r in await webhook_rows(stack, order)] == [
            "payment.pending",
            "payment.succeeded",
        ]
        state = await payment_state(stack, order)
        assert state is not None and state.outcome == "succeeded"
        heard = await shop_heard(order, "order.delivered")
        told = [e["type"] for e in heard]
        assert in_order(told, "order.paid", "order.shipped", "order.delivered"), told
        [money] = [e["data"] for e in heard if e["type"] == "order.paid"]
        assert (money["amount"], money["payment_method"]) == ("500.00", "prepaid")

        # To the door, nothing to collect: Nova Poshta's courier (101), then received (9).
        sent = await waybill(stack, str((await order.refs()).tracking_number))
        assert (sent["service"], sent["redelivery"], sent["afterpayment"]) == (
            "WarehouseDoors",
            "",
            "",
        )
        assert sent["codes"] == ["1", "4", "5", "101", "9"]
        view = (await stack.api.get(f"/v1/orders/{order.order_id}")).json()
        assert view["progress"]["payment_status"] == "paid"

        await feedback_after_a_day_or_two(order)

        expected = [
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
        assert await order.sent() == expected
        assert len(order.mailbox()) == len(expected)  # each arrived, once
        assert await order.incidents() == []
        await replays(order)
