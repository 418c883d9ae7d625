"""Stage 10: the feedback request, 24-48 h after delivery in the customer's daytime (seed 000),
one reminder; a negative answer opens an incident."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.contracts import (
        CustomerStatus,
        IncidentCause,
        MessageKind,
        NextDeadline,
        Stage,
        WaitingFor,
    )
    from schema.vocabulary import EventType

    # Pure, but it reads time zones, which the sandbox proxies: use the real module.
    from workflows.timing import feedback_send_time

from workflows.state import OrderState


async def ask(order: OrderState) -> None:
    timeline, inbox, policy = order.timeline, order.inbox, order.policy
    assert order.delivered_at is not None
    send_at = feedback_send_time(
        order.delivered_at,
        order.timezone,
        earliest=policy.feedback_earliest,
        latest=policy.feedback_latest,
        quiet_from_hour=policy.quiet_from_hour,
        quiet_until_hour=policy.quiet_until_hour,
    )
    await timeline.advance(
        Stage.FEEDBACK,
        CustomerStatus.DELIVERED,
        EventType.FEEDBACK_SCHEDULED,
        {"at": send_at.isoformat()},
    )
    order.waiting.deadline = NextDeadline(send_at, WaitingFor.FEEDBACK_REQUEST)
    await timeline.progressed()
    # Late (a worker was down past the moment): ask at once. A timer may not be negative.
    if send_at > workflow.now():
        await workflow.sleep(send_at - workflow.now())
    await timeline.notify(MessageKind.FEEDBACK_REQUEST)
    await timeline.record(EventType.FEEDBACK_REQUESTED)

    def answered() -> bool:
        return inbox.feedback is not None

    # No silence guard here: the order is delivered, the customer is not waiting for us.
    if not await order.waiting.until(
        answered, WaitingFor.FEEDBACK, policy.feedback_reminder, guard=False
    ):
        await timeline.notify(MessageKind.FEEDBACK_REMINDER)
        remaining = policy.feedback_wait - policy.feedback_reminder
        await order.waiting.until(answered, WaitingFor.FEEDBACK, remaining, guard=False)
    feedback = inbox.feedback
    if feedback is None:
        await timeline.record(EventType.FEEDBACK_NONE)
        return
    score = {
        "rating": str(feedback.rating or ""),
        "nps": "" if feedback.nps is None else str(feedback.nps),
    }
    await timeline.record(
        EventType.FEEDBACK_RECEIVED, {**score, "feedback_id": feedback.feedback_id}, "customer"
    )
    if feedback.negative:
        await timeline.incident(
            Stage.FEEDBACK, IncidentCause.HUMAN, f"negative feedback {score}", "feedback"
        )
