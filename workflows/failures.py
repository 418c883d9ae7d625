"""When a step fails for good: an incident for a manager, and a person decides.

The same for an order and for a customer return (`Settling` says what each gives). The order
(or the return) neither fails nor retries forever (architecture rule 8). It records the incident
(cause `external` when a provider is at fault, `system` otherwise), writes the step to the
timeline, alerts the managers, and waits — flagged in the operator queue — for an operator
to retry the step or, where the step allows it, go on without it. Cancelling stays possible
through the ordinary `cancel` while the order may still be cancelled. When the incident
machinery itself fails (the database or the mail is down), the wait still happens: the flag
in the queue and the workflow's status tell, and retrying re-runs the step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from schema.contracts import (
        IncidentCause,
        IncidentInput,
        MessageKind,
        ResolveStep,
        StepChoice,
        WaitingFor,
    )
    from schema.vocabulary import ErrorType, EventType

from workflows.steps import FAILED_FOR_GOOD, StepFailure, Steps
from workflows.waiting import OrderCancelled, Waiting, Writer

PROVIDER_ERRORS = frozenset(
    {ErrorType.PROVIDER_REJECTED, ErrorType.PROVIDER_UNAVAILABLE, ErrorType.NO_ANSWER}
)


class Settling(Protocol):
    """What an order's state (`OrderState`) and a return (`ReturnWorkflow`) give to settle
    their failed steps."""

    @property
    def order_id(self) -> str: ...  # the incident's order
    @property
    def steps(self) -> Steps: ...
    @property
    def timeline(self) -> Writer: ...
    @property
    def waiting(self) -> Waiting: ...
    @property
    def compensating(self) -> bool: ...  # a failed compensation step waits regardless

    failed_steps: int  # so far: each one's incident key
    failed_step: StepFailure | None  # the one a person decides on now
    step_resolution: ResolveStep | None  # the person's decision

    def incident_key(self, step: str) -> str:
        """The incident's key among the order's incidents."""


async def settle(order: Settling, failure: StepFailure) -> StepChoice:
    choice = await _settle(order, failure, None)
    assert choice is not None
    return choice


async def overdue(
    order: Settling, failure: StepFailure, answered: Callable[[], bool]
) -> StepChoice | None:
    """An outside party that never answered within the policy's wait: the same incident and
    flag as a failed step, and the order keeps waiting for it beside the operator — None
    when it answered after all (the incident is then closed as such)."""
    return await _settle(order, failure, answered)


async def _settle(
    order: Settling, failure: StepFailure, answered: Callable[[], bool] | None
) -> StepChoice | None:
    order.failed_steps += 1
    key = order.incident_key(f"step-{order.failed_steps}-{failure.activity}")
    cause = (
        IncidentCause.EXTERNAL if failure.error_type in PROVIDER_ERRORS else IncidentCause.SYSTEM
    )
    summary = f"{failure.activity} failed for good ({failure.error_type}): {failure.message}"
    incident = IncidentInput(order.order_id, key, order.timeline.stage, cause, summary)
    with contextlib.suppress(*FAILED_FOR_GOOD):
        await order.steps.run(OrderActivities.record_incident, incident)
    with contextlib.suppress(*FAILED_FOR_GOOD):
        await order.timeline.record(
            EventType.STEP_FAILED,
            {"activity": failure.activity, "error": failure.error_type, "incident": key},
        )
    with contextlib.suppress(*FAILED_FOR_GOOD):
        await order.timeline.notify(
            MessageKind.MANAGER_INCIDENT, key, {"summary": summary, "cause": cause.value}
        )
    order.step_resolution, order.failed_step = None, failure
    try:
        await order.waiting.until(
            lambda: order.step_resolution is not None or (answered is not None and answered()),
            WaitingFor.INCIDENT_RESOLUTION,
            # A failed step: the customer's messages may be what fails. An overdue answer: the
            # customer is still waiting, and hears from us as in any wait.
            guard=answered is not None,
            cancellable=not order.compensating,
        )
    except OrderCancelled:
        with contextlib.suppress(*FAILED_FOR_GOOD):
            await order.steps.run(
                OrderActivities.record_incident, _resolved(incident, "order cancelled")
            )
        raise
    finally:
        order.failed_step = None
    resolution = order.step_resolution
    if resolution is None:  # the outside party answered after all
        with contextlib.suppress(*FAILED_FOR_GOOD):
            await order.steps.run(OrderActivities.record_incident, _resolved(incident, "answered"))
        return None
    with contextlib.suppress(*FAILED_FOR_GOOD):
        await order.steps.run(
            OrderActivities.record_incident, _resolved(incident, resolution.choice.value)
        )
    with contextlib.suppress(*FAILED_FOR_GOOD):
        await order.timeline.record(
            EventType.STEP_RESOLVED,
            {"activity": failure.activity, "choice": resolution.choice.value, "incident": key},
            resolution.actor,
        )
    return resolution.choice


def _resolved(incident: IncidentInput, how: str) -> IncidentInput:
    return IncidentInput(
        incident.order_id, incident.key, incident.stage, incident.cause, incident.summary, how
    )
