"""How the order workflow calls its activities: typed, through the activity classes' methods,
each with its own retry policy — and what happens when one fails for good.

`Steps.run(OrderActivities.validate_order, ValidateOrderInput(...))` is checked by mypy:
the method names the activity (the name recorded in history is the method's), its argument
type is the input, its return type the result.

No poison loops: every activity is tried a bounded number of times (`RETRIES`); an error an
activity classifies as permanent (a non-retryable ApplicationError) is not retried at all.
When a step has failed for good, the order does not fail and does not retry forever: the
`on_failure` hook (workflows/failures.py) opens an incident, alerts a manager and waits for
an operator to retry the step or, where `RETRIES` allows it, skip it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.inventory import InventoryActivities
    from activities.marketplaces import MarketplaceActivities
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from activities.payments import PaymentActivities
    from activities.returns import ReturnActivities
    from activities.shipping import ShippingActivities
    from activities.warehouse import WarehouseActivities
    from schema.contracts import OrderPolicy, StepChoice
    from schema.vocabulary import ErrorType

I = TypeVar("I")  # noqa: E741 - an activity's input
O = TypeVar("O")  # noqa: E741 - an activity's output

# Errors that no retry heals, whatever the activity says: the order is gone, or a provider
# refused the request (activities also raise non-retryable ApplicationErrors of their own).
NON_RETRYABLE = [ErrorType.ORDER_NOT_FOUND, ErrorType.PROVIDER_REJECTED]


# What a step that failed for good raises: an activity on the task queue, an ActivityError;
# a local activity, its ApplicationError bare (temporalio 1.35 does not wrap it).
FAILED_FOR_GOOD = (ActivityError, ApplicationError)


@dataclass(frozen=True)
class Retries:
    attempts: int  # tries in all before a person decides (backoff from the order's policy)
    skippable: bool = False  # a person may decide to go on without it


# Every activity the workflow calls. Ten attempts with the policy's backoff (1 s doubling,
# capped at a minute) ride out a provider or mail outage of four to six minutes; longer
# outages become an incident that an operator retries once the provider is back.
RETRIES: dict[Callable[..., Any], Retries] = {
    OrderActivities.record_event: Retries(10, skippable=True),  # a timeline row
    OrderActivities.record_steps: Retries(10, skippable=True),  # an activation's rows
    OrderActivities.record_progress: Retries(3),  # best effort: the next step writes it again
    OrderActivities.validate_order: Retries(10),
    OrderActivities.apply_decision: Retries(10),
    OrderActivities.record_incident: Retries(30),
    NotificationActivities.send_confirmation: Retries(10, skippable=True),
    NotificationActivities.notify: Retries(10, skippable=True),
    # Called by CustomerMessageWorkflow (workflows/messages.py), never by an order's.
    NotificationActivities.send_order_list: Retries(10),
    InventoryActivities.reserve_stock: Retries(10),
    InventoryActivities.release_stock: Retries(10, skippable=True),  # or released by hand
    InventoryActivities.request_backorder: Retries(10),
    WarehouseActivities.create_pick_task: Retries(10),
    PaymentActivities.create_payment_link: Retries(10),
    PaymentActivities.refund_payment: Retries(10, skippable=True),  # or refunded by hand
    PaymentActivities.cancel_payment_link: Retries(10, skippable=True),
    ShippingActivities.book_shipment: Retries(10),
    ShippingActivities.cancel_shipment: Retries(10, skippable=True),
    DocumentActivities.generate_documents: Retries(10),
    # After the parcel leaves: parcels that come back, customer returns, exchanges.
    InventoryActivities.restock: Retries(10, skippable=True),  # or put on the shelf by hand
    ShippingActivities.book_return_shipment: Retries(10),
    DocumentActivities.generate_return_label: Retries(10),
    ReturnActivities.record_return_step: Retries(10),
    ReturnActivities.create_exchange_order: Retries(10),
    ReturnActivities.exchange_outcome: Retries(10),
    # Called by CarrierTrackingWorkflow (workflows/tracking.py): a round that fails for good
    # ends; the schedule's next round asks again.
    ShippingActivities.poll_tracking: Retries(5),
    ShippingActivities.record_tracking: Retries(10),
    # Called by MarketplacePollWorkflow (workflows/intake.py): a connector's poll that fails
    # for good waits for the schedule's next run.
    MarketplaceActivities.polled_connectors: Retries(5),
    MarketplaceActivities.poll_orders: Retries(5),
}


@dataclass(frozen=True)
class StepFailure:
    activity: str
    error_type: str  # the ApplicationError's type (an ErrorType, mostly), or the failure's class
    message: str
    skippable: bool


class Steps:
    def __init__(self, policy: OrderPolicy) -> None:
        self._policy = policy
        self._settling = False
        # Decides about a step that failed for good (set by the workflow's state).
        self.on_failure: Callable[[StepFailure], Awaitable[StepChoice]] | None = None
        # Runs before each activity on the task queue (the order's timeline writes the steps
        # it holds: workflows/timeline.py).
        self.before_activity: Callable[[], Awaitable[None]] | None = None

    async def run(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O:
        """One activity on the worker's task queue; a person may only retry it."""
        if self.before_activity is not None:
            await self.before_activity()
        while True:
            try:
                result: O = await workflow.execute_activity_method(
                    activity, arg, **self._options(activity)
                )
                return result
            except ActivityError as failure:
                await self._settle(activity, failure)

    async def run_or_skip(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O | None:
        """One activity a person may decide to go on without (then None)."""
        if self.before_activity is not None:
            await self.before_activity()
        return await self._skippable(activity, arg, local=False)

    async def record_or_skip(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O | None:
        """A short, idempotent write in the workflow's own worker (a local activity: no
        task-queue round trip); a person may decide to go on without it."""
        return await self._skippable(activity, arg, local=True)

    async def record_or_give_up(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O:
        """A local write whose failure nobody needs to settle (it raises FAILED_FOR_GOOD)."""
        result: O = await workflow.execute_local_activity_method(
            activity, arg, **self._options(activity)
        )
        return result

    async def _skippable(
        self, activity: Callable[[Any, I], Awaitable[O]], arg: I, *, local: bool
    ) -> O | None:
        execute = (
            workflow.execute_local_activity_method if local else workflow.execute_activity_method
        )
        while True:
            try:
                result: O = await execute(activity, arg, **self._options(activity))
                return result
            except FAILED_FOR_GOOD as failure:
                if await self._settle(activity, failure) == StepChoice.SKIP:
                    return None

    def _options(self, activity: Callable[..., Any]) -> dict[str, Any]:
        policy = self._policy
        return {
            "start_to_close_timeout": policy.activity_timeout,
            "retry_policy": RetryPolicy(
                initial_interval=policy.activity_retry_initial,
                maximum_interval=policy.activity_retry_max,
                maximum_attempts=RETRIES[activity].attempts,
                non_retryable_error_types=NON_RETRYABLE,
            ),
        }

    async def _settle(
        self, activity: Callable[..., Any], failure: ActivityError | ApplicationError
    ) -> StepChoice:
        """Hand a failed step to a person; while one is being settled, a failure of the
        settling itself (the incident, the alert) is raised to it, never settled in turn."""
        if self._settling or self.on_failure is None:
            raise failure
        cause = failure.cause if isinstance(failure, ActivityError) else failure
        error_type = cause.type or "" if isinstance(cause, ApplicationError) else ""
        self._settling = True
        try:
            return await self.on_failure(
                StepFailure(
                    activity=activity.__name__,
                    error_type=error_type or type(cause or failure).__name__,
                    message=str(cause or failure)[:300],
                    skippable=RETRIES[activity].skippable,
                )
            )
        finally:
            self._settling = False
