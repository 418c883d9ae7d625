"""Stages 2-3: the order is checked, confirmed by an operator where a person must decide,
and the customer gets the confirmation within minutes (seed 000)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from schema.contracts import (
        ApplyDecisionInput,
        CancelOrder,
        CancelReason,
        ConfirmOrder,
        CustomerStatus,
        MessageKind,
        RejectOrder,
        SendConfirmationInput,
        Stage,
        ValidateOrderInput,
        WaitingFor,
    )
    from schema.vocabulary import EventType

from workflows.state import OrderState


async def validate(order: OrderState) -> bool:
    """False when the stored order is broken (nobody to tell, nothing to undo)."""
    timeline = order.timeline
    await timeline.advance(
        Stage.VALIDATION, CustomerStatus.RECEIVED, EventType.ORDER_VALIDATION_STARTED
    )
    checked = await order.steps.run(
        OrderActivities.validate_order, ValidateOrderInput(order.order_id, order.policy)
    )
    order.delivery, order.payment_method = checked.delivery_method, checked.payment_method
    order.timezone, order.total = checked.timezone, checked.total
    order.currency = checked.currency
    if checked.problems:
        await timeline.advance(
            Stage.CANCELLED,
            CustomerStatus.CANCELLED,
            EventType.ORDER_INVALID,
            {"problems": "; ".join(checked.problems)},
        )
        return False
    await timeline.advance(
        Stage.VALIDATION,
        CustomerStatus.RECEIVED,
        EventType.ORDER_VALIDATED,
        {
            "total": str(checked.total),
            "currency": checked.currency,
            "lines": str(checked.line_count),
        },
    )
    if checked.review_reasons:
        await _manual_review(order, checked.review_reasons)
    return True


async def _manual_review(order: OrderState, reasons: list[str]) -> None:
    """Seeds 001, 003: an operator confirms (or rejects) what the system cannot."""
    timeline, inbox = order.timeline, order.inbox
    await timeline.advance(
        Stage.VALIDATION,
        CustomerStatus.RECEIVED,
        EventType.REVIEW_REQUESTED,
        {"reasons": "; ".join(reasons)},
    )
    await timeline.notify(MessageKind.AWAITING_REVIEW)

    def decided() -> bool:
        return inbox.review is not None

    sla = order.policy.review_sla
    order.in_review = True  # also while the escalation is sent: a confirm is welcome then
    if not await order.waiting.until(decided, WaitingFor.OPERATOR_CONFIRMATION, sla):
        await timeline.record(EventType.REVIEW_ESCALATED, {"after": str(sla)})
        await timeline.notify(
            MessageKind.MANAGER_REVIEW_ESCALATED, params={"reasons": "; ".join(reasons)}
        )
        await order.waiting.until(decided, WaitingFor.OPERATOR_CONFIRMATION)
    order.in_review = False
    review = inbox.review
    if isinstance(review, RejectOrder):
        order.stop(CancelOrder(review.actor, CancelReason.REJECTED, review.reason))
    assert isinstance(review, ConfirmOrder)
    if review.lines is not None or review.final_price is not None:
        totals = await order.steps.run(
            OrderActivities.apply_decision,
            ApplyDecisionInput(
                order.order_id, review.actor, lines=review.lines, final_price=review.final_price
            ),
        )
        order.total = totals.total
    await timeline.advance(
        Stage.VALIDATION,
        CustomerStatus.RECEIVED,
        EventType.REVIEW_CONFIRMED,
        {"total": str(order.total), "note": review.note},
        actor=review.actor,
    )


async def confirm(order: OrderState) -> None:
    """Seed 000: buyers expect the confirmation within minutes; it names the expected date."""
    order.waiting.check_cancelled()
    timeline = order.timeline
    days = order.policy.delivery_days[order.delivery]
    expected = (workflow.now() + timedelta(days=days)).date()
    timeline.expected_date = expected
    await timeline.advance(
        Stage.CONFIRMATION, CustomerStatus.RECEIVED, EventType.ORDER_CONFIRMATION_STARTED
    )
    sent = await order.steps.run_or_skip(
        NotificationActivities.send_confirmation, SendConfirmationInput(order.order_id, expected)
    )
    timeline.quiet_since = workflow.now()  # the silence guard starts here
    await timeline.advance(
        Stage.CONFIRMATION,
        CustomerStatus.PROCESSING,
        EventType.ORDER_CONFIRMED,
        {
            "channel": sent.channel if sent else "skipped",
            "notification": sent.idempotency_key if sent else "",
            "expected_date": expected.isoformat(),
        },
    )
