"""Stages 7-9: documents, handover to the carrier with a tracking number, and the parcel's
way to the customer — or, for pickup orders, the counter: a ready notice, a reminder, and
back to stock when nobody collects it.

A parcel may also never reach the customer. The carrier says so in AfterShip's words, a tag
and a subtag (`rules.PARCEL_OUTCOMES`): refused at the door or unclaimed, the parcel goes
back — the order is `returning`, the customer told once and never again sent an interim
notice for it; when it is back (the carrier's "returned to sender" or the warehouse's word)
its goods go back on the shelf and the order closes with its reason through the ordinary
compensation (what was paid and is left is refunded). Lost or damaged, an operator decides:
a second parcel under its own booking, a refund, or closing the order. Events that came
before this change keep, on replay, the path they took (an incident, and the wait for a
delivery): `PatchId.CARRIER_OUTCOMES`.

A parcel at a carrier's branch (Nova Poshta's, with its `DatePayedKeeping`) waits to be
collected until its free storage ends: a reminder a day before, and at the end the unclaimed
path (`PatchId.BRANCH_STORAGE`). Cash on delivery with a carrier that reports paying it out (Nova
Poshta's 10 and 11) is the shop's only once paid out, in the amount the order asked;
`reconcile_payout` waits for it beside the feedback stage and opens an incident when it is
late or wrong (`PatchId.COD_PAYOUT`). The carrier's estimate of the delivery date (Nova
Poshta's EstimatedDeliveryDate) becomes the order's expected date, and the customer is told it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.inventory import InventoryActivities
    from activities.orders import OrderActivities
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        BookShipmentInput,
        CancelOrder,
        CancelReason,
        CarrierEvent,
        CodPayout,
        CustomerStatus,
        DelayReason,
        IncidentCause,
        IncidentInput,
        MessageKind,
        OrderRef,
        ParcelChoice,
        ParcelOutcome,
        PaymentMethod,
        RestockInput,
        Shipment,
        Stage,
        TrackingStatus,
        WaitingFor,
        WarehouseEventKind,
    )
    from schema.vocabulary import ErrorType, EventType, PatchId, carrier_step, parcel_step

    # Pure, but it reads time zones, which the sandbox proxies: use the real module.
    from workflows.timing import storage_ends

from workflows import failures, rules
from workflows.state import OrderState
from workflows.steps import StepFailure
from workflows.timeline import SYSTEM


async def ship(order: OrderState) -> None:
    order.waiting.check_cancelled()
    timeline = order.timeline
    await timeline.advance(Stage.HANDOVER, CustomerStatus.PACKED, EventType.SHIPMENT_BOOKING)
    shipment = await order.steps.run(
        ShippingActivities.book_shipment, BookShipmentInput(order.order_id)
    )
    order.shipment = shipment
    expected = _carriers_date(order, shipment)
    await _make_documents(order)
    order.waiting.check_cancelled()
    # From here on the parcel is the carrier's: cancellation is refused.
    order.handed_over = True
    await timeline.advance(
        Stage.HANDOVER,
        CustomerStatus.SHIPPED,
        EventType.ORDER_SHIPPED,
        {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number, **expected},
    )
    await timeline.notify(
        MessageKind.SHIPPED,
        params={
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
            **expected,
        },
    )


def _carriers_date(order: OrderState, shipment: Shipment) -> dict[str, str]:
    """The carrier's estimate of the delivery date, when it gives one, becomes the order's
    expected date (what the read model, the status page and the messages say)."""
    if shipment.expected_date is None:
        return {}
    order.timeline.expected_date = shipment.expected_date
    return {"expected_date": shipment.expected_date.isoformat()}


async def _make_documents(order: OrderState) -> None:
    """Seed 000: receipt, packing list and the shipping label before the parcel leaves."""
    await order.timeline.advance(
        Stage.DOCUMENTS, CustomerStatus.PACKED, EventType.DOCUMENTS_STARTED
    )
    docs = await order.steps.run(DocumentActivities.generate_documents, OrderRef(order.order_id))
    await order.timeline.advance(
        Stage.DOCUMENTS,
        CustomerStatus.PACKED,
        EventType.DOCUMENTS_READY,
        {"kinds": ", ".join(docs.kinds)},
    )


async def track(order: OrderState) -> None:
    """Carrier events until delivery; no news for the policy's period marks the order delayed.
    A parcel that goes back, or that an operator decides not to send again, ends the order
    (`OrderState.stop`)."""
    timeline, inbox = order.timeline, order.inbox
    await timeline.advance(Stage.TRANSIT, CustomerStatus.SHIPPED, EventType.TRANSIT_STARTED)
    silent_periods = 0
    silent_for = timedelta()  # since the carrier's last news
    while order.delivered_at is None:
        if order.going_back is not None:
            await _take_back(order)
        if order.storage_until is not None and workflow.patched(PatchId.BRANCH_STORAGE):
            if not await _wait_at_branch(order):
                continue  # its free storage ended: it goes back (taken at the loop's top)
            news = True
        else:
            news = await order.waiting.until(
                lambda: bool(inbox.carrier), WaitingFor.CARRIER, order.policy.carrier_silence
            )
        if not news:
            silent_periods += 1
            await timeline.advance(
                Stage.TRANSIT,
                CustomerStatus.DELAYED,
                EventType.TRANSIT_NO_NEWS,
                {"silent_for": str(order.policy.carrier_silence)},
            )
            await timeline.notify(
                MessageKind.DELAYED,
                f"carrier-{silent_periods}",
                {"reason": DelayReason.CARRIER_SILENT.value},
            )
            silent_for += order.policy.carrier_silence
            if silent_for >= order.policy.carrier_news_wait and workflow.patched(
                PatchId.CARRIER_NEWS_DEADLINE
            ):
                await _carrier_overdue(order, silent_for)
                silent_for = timedelta()
            continue
        silent_for = timedelta()
        while inbox.carrier:
            event = inbox.carrier.pop(0)
            if workflow.patched(PatchId.VERIFY_CARRIER_EVENTS) and not _ours(order, event):
                await timeline.incident(
                    Stage.TRANSIT,
                    IncidentCause.EXTERNAL,
                    f"carrier event {event.event_id} is for parcel {event.tracking_number}, "
                    "not this order's",
                    f"carrier-event-{event.event_id}",
                )
                continue
            outcome = rules.parcel_outcome(event.status, event.subtag)
            if outcome is not None and workflow.patched(PatchId.CARRIER_OUTCOMES):
                detail = {"outcome": outcome.value, "subtag": event.subtag, "detail": event.detail}
                await _on_outcome(order, outcome, detail)
                if order.going_back is not None:
                    break  # the rest of the news is about the way back
                continue
            await _on_carrier_event(order, event)
            if order.awaiting_payout:
                break  # the rest of the news is the payout's: `reconcile_payout` reads it
    if order.awaiting_payout:
        order.payout = asyncio.create_task(_reconcile_payout(order))


async def _carrier_overdue(order: OrderState, silent_for: timedelta) -> None:
    """A carrier silent past the policy's wait: an incident, the order flagged; it keeps
    waiting for the carrier (its news closes the incident), and an operator's retry (after
    asking the carrier) waits another while."""
    assert order.shipment is not None
    waited = StepFailure(
        "book_shipment",
        ErrorType.NO_ANSWER,
        f"no news of parcel {order.shipment.tracking_number} from {order.shipment.carrier} "
        f"for {silent_for}",
        skippable=False,
    )
    await failures.overdue(order, waited, lambda: bool(order.inbox.carrier))


def _ours(order: OrderState, event: CarrierEvent) -> bool:
    return order.shipment is not None and event.tracking_number == order.shipment.tracking_number


async def _on_carrier_event(order: OrderState, event: CarrierEvent) -> None:
    timeline, status = order.timeline, event.status
    detail = {"tracking_status": status.value, "detail": event.detail}
    if event.code:
        detail["carrier_status"] = event.code
    # At a branch with a free storage's end (Nova Poshta's 7 and 8); any other news: not.
    order.storage_until = (
        event.storage_until if status == TrackingStatus.AVAILABLE_FOR_PICKUP else None
    )
    if order.storage_until is not None:
        detail["storage_until"] = order.storage_until.isoformat()
    if status == TrackingStatus.DELIVERED:
        order.delivered_at = workflow.now()
        await timeline.advance(
            Stage.TRANSIT, CustomerStatus.DELIVERED, EventType.ORDER_DELIVERED, detail, "carrier"
        )
        if order.payment_method == PaymentMethod.COD:
            await _collected(order, event)
        await timeline.notify(MessageKind.DELIVERED)
        return
    customer_status, message = rules.CARRIER_STATUS[status]
    # Hundreds of scans in transit tell the customer once.
    repeated = customer_status == timeline.status and status == TrackingStatus.IN_TRANSIT
    await timeline.advance(Stage.TRANSIT, customer_status, carrier_step(status), detail, "carrier")
    if status in rules.CARRIER_TROUBLE:
        await timeline.incident(
            Stage.TRANSIT,
            IncidentCause.EXTERNAL,
            f"carrier reports {status.value}: {event.detail}",
            event.event_id,
        )
    if message is not None and not repeated:
        assert order.shipment is not None
        told = {"tracking_url": order.shipment.tracking_url}
        if order.storage_until is not None:
            told["kept_until"] = order.storage_until.isoformat()
        await timeline.notify(message, event.event_id, told)


async def _collected(order: OrderState, event: CarrierEvent) -> None:
    """Cash on delivery, delivered: the shop's money now, or — with a carrier that reports
    its payout — once the carrier pays it out (`reconcile_payout`)."""
    assert order.shipment is not None
    timeline = order.timeline
    if not (order.shipment.reports_payout and workflow.patched(PatchId.COD_PAYOUT)):
        await timeline.record(
            EventType.PAYMENT_COLLECTED_ON_DELIVERY, {"amount": str(order.total)}, "carrier"
        )
        return
    order.awaiting_payout = True
    await timeline.record(
        EventType.PAYMENT_AWAITING_PAYOUT, {"amount": str(order.total)}, "carrier"
    )
    if event.cod is not None:  # delivered and paid out in one piece of news (10, 11)
        order.inbox.carrier.insert(0, event)


async def _reconcile_payout(order: OrderState) -> None:
    """Beside the feedback stage: the carrier's word that the cash it collected is on its
    way (Nova Poshta's 10) and paid out (11), in the amount the order asked. Not paid out
    within the policy's days, an incident (the bookkeeper asks the carrier) and it waits on;
    paid out in another amount, an incident, and the money is not counted as the shop's."""
    timeline, inbox = order.timeline, order.inbox
    assert order.delivered_at is not None
    deadline = order.delivered_at + order.policy.cod_payout_wait
    late = False
    while True:
        while inbox.carrier:
            event = inbox.carrier.pop(0)
            if not _ours(order, event):
                await timeline.incident(
                    timeline.stage,
                    IncidentCause.EXTERNAL,
                    f"carrier event {event.event_id} is for parcel {event.tracking_number}, "
                    "not this order's",
                    f"carrier-event-{event.event_id}",
                )
            elif event.cod == CodPayout.TRANSFER_PENDING:
                await timeline.record(
                    EventType.PAYMENT_COD_TRANSFER_PENDING, {"amount": str(order.total)}, "carrier"
                )
            elif event.cod == CodPayout.PAID_OUT:
                await _paid_out(order, event, late)
                await timeline.flush()  # written now, not at the order's next step
                return
        remaining = deadline - workflow.now()
        if late or remaining.total_seconds() <= 0:
            if not late:
                late = True
                await timeline.incident(
                    timeline.stage,
                    IncidentCause.EXTERNAL,
                    f"cash on delivery ({order.total} {order.currency}) not paid out by the "
                    f"carrier {order.policy.cod_payout_wait.days} days after delivery",
                    "cod-payout-late",
                )
            await timeline.flush()
            await workflow.wait_condition(lambda: bool(inbox.carrier))
            continue
        await timeline.flush()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: bool(inbox.carrier), timeout=remaining)


async def _paid_out(order: OrderState, event: CarrierEvent, late: bool) -> None:
    timeline = order.timeline
    if event.cod_amount != order.total:
        await timeline.record(
            EventType.PAYMENT_COD_PAYOUT_MISMATCH,
            {"paid_out": str(event.cod_amount or ""), "amount": str(order.total)},
            "carrier",
        )
        await timeline.incident(
            timeline.stage,
            IncidentCause.EXTERNAL,
            f"cash on delivery paid out as {event.cod_amount or 'nothing'}, the order asked "
            f"{order.total} {order.currency}: not counted as paid",
            "cod-payout-mismatch",
        )
        return
    order.awaiting_payout = False
    await timeline.record(
        EventType.PAYMENT_COLLECTED_ON_DELIVERY,
        {"amount": str(event.cod_amount), "paid_out_by": "carrier"},
        "carrier",
    )
    if late:  # the bookkeeper's incident is settled by the payout itself
        await order.steps.run(
            OrderActivities.record_incident,
            IncidentInput(
                order.order_id,
                "cod-payout-late",
                timeline.stage,
                IncidentCause.EXTERNAL,
                "cash on delivery paid out late",
                "paid out",
            ),
        )


async def payout_settled(order: OrderState) -> None:
    """The order ends once the carrier's payout is settled: paid out, or found wrong (the
    incident says so). Waits, visibly, while it is not."""
    payout = order.payout
    if payout is None:
        return
    if not payout.done():
        await order.waiting.until(payout.done, WaitingFor.COD_PAYOUT, guard=False)
    payout.result()  # a failure of its own is the order's


async def _wait_at_branch(order: OrderState) -> bool:
    """A parcel at a carrier's branch: any news (True); else a reminder before its free
    storage ends, and at the end the unclaimed path (False: it goes back)."""
    timeline, inbox, waiting = order.timeline, order.inbox, order.waiting
    assert order.storage_until is not None
    kept_until = order.storage_until.isoformat()
    ends = storage_ends(order.storage_until)

    def news() -> bool:
        return bool(inbox.carrier)

    if not order.storage_reminded:
        remind_at = ends - order.policy.branch_storage_reminder
        if workflow.now() < remind_at and await waiting.until(
            news, WaitingFor.COLLECTION, remind_at - workflow.now()
        ):
            return True
        order.storage_reminded = True
        await timeline.notify(
            MessageKind.PICKUP_REMINDER, f"branch-{order.parcels}", {"kept_until": kept_until}
        )
    if workflow.now() < ends and await waiting.until(
        news, WaitingFor.COLLECTION, ends - workflow.now()
    ):
        return True
    if news():
        return True
    await _on_outcome(
        order,
        ParcelOutcome.UNCLAIMED,
        {"outcome": ParcelOutcome.UNCLAIMED.value, "kept_until": kept_until},
    )
    return False


async def _on_outcome(order: OrderState, outcome: ParcelOutcome, detail: dict[str, str]) -> None:
    timeline = order.timeline
    order.storage_until = None
    if outcome in rules.GONE:
        await _lost(order, outcome, detail)
        return
    order.going_back = outcome
    if outcome == ParcelOutcome.RETURNED:
        return  # back already: `_take_back` closes the order
    await timeline.advance(
        Stage.TRANSIT, CustomerStatus.RETURNING, EventType.PARCEL_RETURNING, detail, "carrier"
    )
    # Told once; the waits from here on have no silence guard.
    await timeline.notify(MessageKind.PARCEL_RETURNING, params={"outcome": outcome.value})


def _back(order: OrderState) -> bool:
    """The parcel is back: the carrier returned it to sender, or the warehouse received it."""
    returned = (
        rules.parcel_outcome(event.status, event.subtag) == ParcelOutcome.RETURNED
        for event in order.inbox.carrier
    )
    return (
        order.going_back == ParcelOutcome.RETURNED
        or order.inbox.has_warehouse(WarehouseEventKind.RETURNED)
        or any(returned)
    )


async def _take_back(order: OrderState) -> None:
    """Wait (without interim notices) for the parcel to be back; put its goods on the shelf,
    open the incident, and close the order with its reason (compensation refunds what is
    left of the payment and tells the customer)."""
    assert order.going_back is not None
    timeline, inbox, waiting = order.timeline, order.inbox, order.waiting
    reason, cause = rules.GOING_BACK[order.going_back]
    wait = order.policy.parcel_return_wait
    if not await waiting.until(lambda: _back(order), WaitingFor.PARCEL_RETURN, wait, guard=False):
        await timeline.incident(
            Stage.TRANSIT,
            IncidentCause.EXTERNAL,
            f"the {order.going_back.value} parcel is not back after {wait.days} days",
            "parcel-return-late",
        )
        await waiting.until(lambda: _back(order), WaitingFor.PARCEL_RETURN, guard=False)
    inbox.carrier.clear()  # the way back's scans: nothing to tell
    await timeline.advance(
        Stage.TRANSIT,
        CustomerStatus.RETURNING,
        EventType.PARCEL_RETURNED,
        {"outcome": order.going_back.value},
        "warehouse" if inbox.has_warehouse(WarehouseEventKind.RETURNED) else "carrier",
    )
    await order.steps.run_or_skip(  # skipped: put back on the shelf by hand
        InventoryActivities.restock, RestockInput(order.order_id, "restock:returned-parcel")
    )
    order.restocked = True
    await timeline.record(EventType.STOCK_RESTOCKED, {"why": "parcel returned"})
    await timeline.incident(
        Stage.TRANSIT,
        cause,
        f"parcel {order.going_back.value}: back at the warehouse, order closed",
        "parcel-returned",
    )
    order.stop(CancelOrder(SYSTEM, reason, f"parcel {order.going_back.value}"))


async def _lost(order: OrderState, outcome: ParcelOutcome, detail: dict[str, str]) -> None:
    """The parcel will not arrive: the customer hears of a problem, an operator decides."""
    timeline, inbox = order.timeline, order.inbox
    assert order.shipment is not None
    await timeline.advance(
        Stage.TRANSIT, CustomerStatus.DELAYED, parcel_step(outcome), detail, "carrier"
    )
    await timeline.incident(
        Stage.TRANSIT,
        IncidentCause.EXTERNAL,
        f"carrier reports the parcel {outcome.value}: re-ship, refund or cancel",
        f"parcel-{outcome.value}-{order.parcels}",
    )
    await timeline.notify(
        MessageKind.DELIVERY_PROBLEM,
        f"parcel-{order.parcels}",
        {"tracking_url": order.shipment.tracking_url},
    )
    inbox.parcel_decision = None
    await order.waiting.until(lambda: inbox.parcel_decision is not None, WaitingFor.PARCEL_DECISION)
    decision = inbox.parcel_decision
    assert decision is not None
    await timeline.record(
        EventType.PARCEL_DECIDED,
        {"choice": decision.choice.value, "outcome": outcome.value},
        decision.actor,
    )
    if decision.choice != ParcelChoice.RESHIP:
        order.stop(CancelOrder(decision.actor, rules.GONE[outcome], note_id=decision.note_id))
    await _reship(order, outcome)


async def _reship(order: OrderState, outcome: ParcelOutcome) -> None:
    """A second parcel: its own booking (and key), its own label; tracking starts again."""
    order.parcels += 1
    shipment = await order.steps.run(
        ShippingActivities.book_shipment, BookShipmentInput(order.order_id, order.parcels)
    )
    order.shipment = shipment
    _carriers_date(order, shipment)
    docs = await order.steps.run(DocumentActivities.generate_documents, OrderRef(order.order_id))
    await order.timeline.advance(
        Stage.TRANSIT,
        CustomerStatus.SHIPPED,
        EventType.ORDER_RESHIPPED,
        {
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "parcel": str(order.parcels),
            "documents": ", ".join(docs.kinds),
        },
    )
    await order.timeline.notify(
        MessageKind.PARCEL_RESHIPPED,
        f"{order.parcels}",
        {
            "outcome": outcome.value,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
        },
    )


async def hand_over_at_counter(order: OrderState) -> None:
    """Pickup orders: ready at the counter, one reminder, back to stock after the hold period."""
    timeline, inbox, policy = order.timeline, order.inbox, order.policy
    await _make_documents(order)
    await timeline.advance(Stage.TRANSIT, CustomerStatus.READY_FOR_PICKUP, EventType.PICKUP_READY)
    await timeline.notify(MessageKind.READY_FOR_PICKUP)
    ready_at = workflow.now()

    def collected() -> bool:
        return inbox.has_warehouse(WarehouseEventKind.COLLECTED)

    if not await order.waiting.until(collected, WaitingFor.COLLECTION, policy.pickup_reminder):
        await timeline.notify(MessageKind.PICKUP_REMINDER)
        remaining = ready_at + policy.pickup_hold - workflow.now()
        if not await order.waiting.until(collected, WaitingFor.COLLECTION, remaining):
            order.stop(
                CancelOrder(SYSTEM, CancelReason.NOT_COLLECTED, "not collected in the hold period")
            )
    order.handed_over = True
    order.delivered_at = workflow.now()
    await timeline.advance(
        Stage.TRANSIT, CustomerStatus.DELIVERED, EventType.ORDER_COLLECTED, actor="warehouse"
    )
    if order.payment_method == PaymentMethod.COD:
        await timeline.record(
            EventType.PAYMENT_COLLECTED_ON_DELIVERY, {"amount": str(order.total)}, "warehouse"
        )
    await timeline.notify(MessageKind.DELIVERED)
