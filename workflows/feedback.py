"""Stage 10: the feedback request, 24-48 h after delivery in the customer's daytime (seed 000),
one reminder; a negative answer opens an incident. An answer given before the request goes
out (from the status page) ends the stage at once: no request, no reminder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

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
    from schema.vocabulary import EventType, PatchId

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

    def answered() -> bool:
        return inbox.feedback is not None

    # No silence guard in this stage: the order is delivered, the customer is not waiting
    # for us. Late (a worker was down past the moment): ask at once.
    if workflow.patched(PatchId.EARLY_FEEDBACK_ENDS_REQUEST):
        # An answer given before the request (from the status page) is the answer: no
        # request, no reminder, and a negative one opens its incident now.
        until_send = max(send_at - workflow.now(), timedelta(0))
        if not await order.waiting.until(
            answered, WaitingFor.FEEDBACK_REQUEST, until_send, guard=False
        ):
            await _request(order, answered)
    else:
        order.waiting.deadline = NextDeadline(send_at, WaitingFor.FEEDBACK_REQUEST)
        await timeline.progressed()
        if send_at > workflow.now():  # a timer may not be negative
            await workflow.sleep(send_at - workflow.now())
        await _request(order, answered)
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


async def _request(order: OrderState, answered: Callable[[], bool]) -> None:
    """The request, then one reminder; either ends once the customer answers."""
    timeline, policy = order.timeline, order.policy
    await timeline.notify(MessageKind.FEEDBACK_REQUEST)
    await timeline.record(EventType.FEEDBACK_REQUESTED)
    if not await order.waiting.until(
        answered, WaitingFor.FEEDBACK, policy.feedback_reminder, guard=False
    ):
        await timeline.notify(MessageKind.FEEDBACK_REMINDER)
        remaining = policy.feedback_wait - policy.feedback_reminder
        await order.waiting.until(answered, WaitingFor.FEEDBACK, remaining, guard=False)
