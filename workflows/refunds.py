"""Refunds made beside an order's own workflow: an operator's partial refund (any time after
payment, also after the order's workflow ended) and a customer return's refund.

`RefundWorkflow` is one operator's refund, started by the API under an id made of the order
and the caller's idempotency key (a retried request finds it). It asks the ledger through
`PaymentActivities.refund_payment` (which refuses for good what would exceed the payment:
the workflow then fails, and the API answers 409 with the reason), writes the refund to the
order's timeline, tells the customer, and tells the order's workflow while it runs
(`OrderWorkflow.refund_made`), so that its own compensation refunds only what is left.
"""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from activities.payments import PaymentActivities
    from schema.contracts import (
        CustomerStatus,
        MessageKind,
        NotifyInput,
        RecordEventInput,
        RefundInput,
        RefundMade,
        RefundResult,
        RefundWorkflowInput,
        Stage,
        TimelineEntry,
        workflow_id_for,
    )
    from schema.vocabulary import EventType

from workflows.order import OrderWorkflow
from workflows.steps import Steps


async def refund_beside_the_order(steps: Steps, refund: RefundInput) -> None:
    """Refund through the ledger, then tell the order's workflow (if it still runs). A
    refund that failed for good may be skipped by an operator (refunded by hand): the
    order is then told of it all the same."""
    await steps.run_or_skip(PaymentActivities.refund_payment, refund)
    handle: workflow.ExternalWorkflowHandle[OrderWorkflow] = (
        workflow.get_external_workflow_handle_for(
            OrderWorkflow.run, workflow_id_for(refund.order_id)
        )
    )
    with contextlib.suppress(FailureError):  # it has ended: it has nothing left to compensate
        await handle.signal(OrderWorkflow.refund_made, RefundMade(refund.step, refund.amount))


async def record_beside_the_order(
    steps: Steps, order_id: str, key: str, event_type: EventType, detail: dict[str, str], actor: str
) -> None:
    """A step on the order's timeline that does not move the order (its stage and status
    stay its workflow's: the stage and status given here are not used)."""
    entry = TimelineEntry(workflow.now(), event_type, Stage.COMPLETED, actor, detail)
    await steps.record_or_skip(
        OrderActivities.record_event,
        RecordEventInput(order_id, key, entry, CustomerStatus.DELIVERED, moves_order=False),
    )


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow:
    @workflow.run
    async def run(self, input: RefundWorkflowInput) -> RefundResult:
        # No operator waits here: a refund that fails for good fails this workflow, and the
        # API (which waits for it) says why; asked again under the same key, it runs again.
        steps = Steps(input.policy)
        step = f"refund:{input.key}"
        await refund_beside_the_order(
            steps,
            RefundInput(
                input.order_id,
                input.payment_id,
                input.amount,
                step=step,
                reason=input.reason.value,
                actor=input.actor,
            ),
        )
        detail = {"amount": str(input.amount), "reason": input.reason.value, "refund": step}
        if input.lines:
            detail["lines"] = ", ".join(f"{line.sku} ×{line.quantity}" for line in input.lines)
        # The money went back: what follows (each retried as its policy says) must not make
        # the refund look failed.
        with contextlib.suppress(ActivityError):
            await record_beside_the_order(
                steps,
                input.order_id,
                step,
                EventType.PAYMENT_PARTIALLY_REFUNDED,
                detail,
                input.actor,
            )
        with contextlib.suppress(ActivityError):
            await steps.run(
                NotificationActivities.notify,
                NotifyInput(
                    input.order_id,
                    MessageKind.REFUND_MADE,
                    f"{MessageKind.REFUND_MADE.value}:{input.key}",
                    {"amount": str(input.amount), "reason": input.reason.value},
                ),
            )
        return RefundResult(input.order_id, step, input.amount)
