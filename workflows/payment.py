"""Stage 5: payment. Prepaid orders get a link and reminders; every failed attempt alerts a
manager at once and helps the customer (seed 001); expiry cancels the order. Cash on
delivery skips the wait, and so does an exchange's replacement order (the goods sent back
pay for it)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from schema.contracts import (
        CancelOrder,
        CancelReason,
        CreatePaymentInput,
        CustomerStatus,
        IncidentCause,
        MessageKind,
        PaymentEvent,
        PaymentFailure,
        PaymentLink,
        PaymentMethod,
        PaymentOutcome,
        Stage,
        WaitingFor,
    )
    from schema.vocabulary import EventType, PatchId

from workflows.state import OrderState
from workflows.timeline import SYSTEM


async def take(order: OrderState) -> None:
    order.waiting.check_cancelled()
    timeline, inbox = order.timeline, order.inbox
    if order.payment_method == PaymentMethod.COD:
        await timeline.record(EventType.PAYMENT_ON_DELIVERY, {"amount": str(order.total)})
        return
    if order.payment_method == PaymentMethod.EXCHANGE:  # an exchange's replacement order
        await timeline.record(EventType.PAYMENT_COVERED_BY_RETURN, {"amount": str(order.total)})
        return
    expires_at = workflow.now() + order.policy.payment_expiry
    await timeline.advance(
        Stage.PAYMENT,
        CustomerStatus.PROCESSING,
        EventType.PAYMENT_REQUESTED,
        {"amount": str(order.total)},
    )
    link = await order.steps.run(
        PaymentActivities.create_payment_link, CreatePaymentInput(order.order_id, expires_at)
    )
    order.payment = link
    await timeline.notify(
        MessageKind.PAYMENT_REQUESTED,
        params={
            "url": link.url,
            "amount": str(order.total),
            "expires_at": link.expires_at.isoformat(),
        },
    )
    requested_at = workflow.now()
    reminders = [requested_at + offset for offset in order.policy.payment_reminders]
    while order.paid is None:
        upcoming = [moment for moment in reminders if moment > workflow.now()]
        until = min([*upcoming, link.expires_at])
        await order.waiting.until(
            lambda: bool(inbox.payments), WaitingFor.PAYMENT, until - workflow.now()
        )
        while inbox.payments:
            event = inbox.payments.pop(0)
            refusal = (
                _refusal(order, link, event)
                if workflow.patched(PatchId.VERIFY_PAYMENT_EVENTS)
                else ""
            )
            if refusal:
                await timeline.incident(
                    Stage.PAYMENT,
                    IncidentCause.EXTERNAL,
                    f"payment event {event.event_id} refused: {refusal}",
                    f"payment-event-{event.event_id}",
                )
                continue
            if event.outcome == PaymentOutcome.SUCCEEDED:
                order.paid = event
            elif event.outcome == PaymentOutcome.FAILED:
                await _failed(order, event, link)
        if order.paid is not None:
            break
        if workflow.now() >= link.expires_at:
            order.stop(CancelOrder(SYSTEM, CancelReason.PAYMENT_EXPIRED, "payment link expired"))
        due = [moment for moment in upcoming if moment <= workflow.now()]
        if due:
            await timeline.notify(
                MessageKind.PAYMENT_REMINDER,
                f"{reminders.index(due[-1]) + 1}",
                {"url": link.url, "amount": str(order.total)},
            )
    paid = order.paid
    await timeline.advance(
        Stage.PAYMENT,
        CustomerStatus.PROCESSING,
        EventType.PAYMENT_SUCCEEDED,
        {"payment_id": paid.payment_id, "amount": str(paid.amount)},
        actor="payment_provider",
        paid=paid.amount,
    )
    await timeline.notify(MessageKind.PAYMENT_RECEIVED, params={"amount": str(paid.amount)})


def take_late_payment(order: OrderState) -> None:
    """A cancelled order may still have been paid: a payment for its link that arrived as
    the cancellation was decided counts (compensation then refunds it)."""
    link, inbox = order.payment, order.inbox
    if order.paid is not None or link is None:
        return
    for event in inbox.payments:
        if event.outcome == PaymentOutcome.SUCCEEDED and not _refusal(order, link, event):
            if workflow.patched(PatchId.REFUND_LATE_PAYMENTS):
                inbox.payments.remove(event)
                order.paid = event
            return


def _refusal(order: OrderState, link: PaymentLink, event: PaymentEvent) -> str:
    """Why an event cannot count for this order ("" when it can): it must be about the payment
    this order created and, when it says money arrived, the amount and currency asked for."""
    if event.payment_id != link.payment_id:
        return f"payment {event.payment_id} is not this order's ({link.payment_id})"
    if event.outcome != PaymentOutcome.SUCCEEDED:
        return ""
    if event.amount != order.total or event.currency != order.currency:
        return f"{event.amount} {event.currency} paid, {order.total} {order.currency} asked"
    return ""


async def _failed(order: OrderState, event: PaymentEvent, link: PaymentLink) -> None:
    """Seed 001: every failed attempt alerts a manager at once; the customer gets help."""
    reason = PaymentFailure.of(event.reason).value
    await order.timeline.record(
        EventType.PAYMENT_FAILED,
        {"reason": reason, "payment_id": event.payment_id},
        "payment_provider",
    )
    params = {"reason": reason, "url": link.url}
    await order.timeline.notify(MessageKind.MANAGER_PAYMENT_FAILED, event.event_id, params)
    await order.timeline.notify(MessageKind.PAYMENT_FAILED, event.event_id, params)
