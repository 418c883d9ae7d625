"""Stages 7-9: documents, handover to the carrier with a tracking number, and the parcel's
way to the customer — or, for pickup orders, the counter: a ready notice, a reminder, and
back to stock when nobody collects it."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        CancelOrder,
        CancelReason,
        CarrierEvent,
        CustomerStatus,
        DelayReason,
        IncidentCause,
        MessageKind,
        OrderRef,
        PaymentMethod,
        Stage,
        TrackingStatus,
        WaitingFor,
        WarehouseEventKind,
    )

from workflows import rules
from workflows.state import OrderState
from workflows.timeline import SYSTEM

# Carrier events must carry this order's tracking number (see payment.VERIFY_PAYMENT_EVENTS).
VERIFY_CARRIER_EVENTS = "verify-carrier-events"


async def ship(order: OrderState) -> None:
    order.waiting.check_cancelled()
    timeline = order.timeline
    await timeline.advance(Stage.HANDOVER, CustomerStatus.PACKED, "shipment.booking")
    shipment = await order.steps.run(ShippingActivities.book_shipment, OrderRef(order.order_id))
    order.shipment = shipment
    await _make_documents(order)
    order.waiting.check_cancelled()
    # From here on the parcel is the carrier's: cancellation is refused.
    order.handed_over = True
    await timeline.advance(
        Stage.HANDOVER,
        CustomerStatus.SHIPPED,
        "order.shipped",
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
    await order.timeline.advance(Stage.DOCUMENTS, CustomerStatus.PACKED, "documents.started")
    docs = await order.steps.run(DocumentActivities.generate_documents, OrderRef(order.order_id))
    await order.timeline.advance(
        Stage.DOCUMENTS, CustomerStatus.PACKED, "documents.ready", {"kinds": ", ".join(docs.kinds)}
    )


async def track(order: OrderState) -> None:
    """Carrier events until delivery; no news for the policy's period marks the order delayed."""
    timeline, inbox = order.timeline, order.inbox
    await timeline.advance(Stage.TRANSIT, CustomerStatus.SHIPPED, "transit.started")
    silent_periods = 0
    while order.delivered_at is None:
        news = await order.waiting.until(
            lambda: bool(inbox.carrier), WaitingFor.CARRIER, order.policy.carrier_silence
        )
        if not news:
            silent_periods += 1
            await timeline.advance(
                Stage.TRANSIT,
                CustomerStatus.DELAYED,
                "transit.no_news",
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
            if workflow.patched(VERIFY_CARRIER_EVENTS) and not _ours(order, event):
                await timeline.incident(
                    Stage.TRANSIT,
                    IncidentCause.EXTERNAL,
                    f"carrier event {event.event_id} is for parcel {event.tracking_number}, "
                    "not this order's",
                    f"carrier-event-{event.event_id}",
                )
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
            Stage.TRANSIT, CustomerStatus.DELIVERED, "order.delivered", detail, "carrier"
        )
        if order.payment_method == PaymentMethod.COD:
            await timeline.record(
                "payment.collected_on_delivery", {"amount": str(order.total)}, "carrier"
            )
        await timeline.notify(MessageKind.DELIVERED)
        return
    customer_status, message = rules.CARRIER_STATUS[status]
    # Hundreds of scans in transit tell the customer once.
    repeated = customer_status == timeline.status and status == TrackingStatus.IN_TRANSIT
    await timeline.advance(
        Stage.TRANSIT, customer_status, f"carrier.{status.value}", detail, "carrier"
    )
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


async def hand_over_at_counter(order: OrderState) -> None:
    """Pickup orders: ready at the counter, one reminder, back to stock after the hold period."""
    timeline, inbox, policy = order.timeline, order.inbox, order.policy
    await _make_documents(order)
    await timeline.advance(Stage.TRANSIT, CustomerStatus.READY_FOR_PICKUP, "pickup.ready")
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
        Stage.TRANSIT, CustomerStatus.DELIVERED, "order.collected", actor="warehouse"
    )
    if order.payment_method == PaymentMethod.COD:
        await timeline.record(
            "payment.collected_on_delivery", {"amount": str(order.total)}, "warehouse"
        )
    await timeline.notify(MessageKind.DELIVERED)
