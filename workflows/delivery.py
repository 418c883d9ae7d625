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
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.inventory import InventoryActivities
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        BookShipmentInput,
        CancelOrder,
        CancelReason,
        CarrierEvent,
        CustomerStatus,
        DelayReason,
        IncidentCause,
        MessageKind,
        OrderRef,
        ParcelChoice,
        ParcelOutcome,
        PaymentMethod,
        RestockInput,
        Stage,
        TrackingStatus,
        WaitingFor,
        WarehouseEventKind,
    )
    from schema.vocabulary import EventType, PatchId, carrier_step, parcel_step

from workflows import rules
from workflows.state import OrderState
from workflows.timeline import SYSTEM


async def ship(order: OrderState) -> None:
    order.waiting.check_cancelled()
    timeline = order.timeline
    await timeline.advance(Stage.HANDOVER, CustomerStatus.PACKED, EventType.SHIPMENT_BOOKING)
    shipment = await order.steps.run(
        ShippingActivities.book_shipment, BookShipmentInput(order.order_id)
    )
    order.shipment = shipment
    await _make_documents(order)
    order.waiting.check_cancelled()
    # From here on the parcel is the carrier's: cancellation is refused.
    order.handed_over = True
    await timeline.advance(
        Stage.HANDOVER,
        CustomerStatus.SHIPPED,
        EventType.ORDER_SHIPPED,
        {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number},
    )
    await timeline.notify(
        MessageKind.SHIPPED,
        params={
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
        },
    )


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
    while order.delivered_at is None:
        if order.going_back is not None:
            await _take_back(order)
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
            continue
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
                await _on_outcome(order, event, outcome)
                if order.going_back is not None:
                    break  # the rest of the news is about the way back
                continue
            await _on_carrier_event(order, event)


def _ours(order: OrderState, event: CarrierEvent) -> bool:
    return order.shipment is not None and event.tracking_number == order.shipment.tracking_number


async def _on_carrier_event(order: OrderState, event: CarrierEvent) -> None:
    timeline, status = order.timeline, event.status
    detail = {"tracking_status": status.value, "detail": event.detail}
    if status == TrackingStatus.DELIVERED:
        order.delivered_at = workflow.now()
        await timeline.advance(
            Stage.TRANSIT, CustomerStatus.DELIVERED, EventType.ORDER_DELIVERED, detail, "carrier"
        )
        if order.payment_method == PaymentMethod.COD:
            await timeline.record(
                EventType.PAYMENT_COLLECTED_ON_DELIVERY, {"amount": str(order.total)}, "carrier"
            )
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
        await timeline.notify(
            message, event.event_id, {"tracking_url": order.shipment.tracking_url}
        )


async def _on_outcome(order: OrderState, event: CarrierEvent, outcome: ParcelOutcome) -> None:
    timeline = order.timeline
    detail = {"outcome": outcome.value, "subtag": event.subtag, "detail": event.detail}
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
