"""How the order workflow calls its activities: typed, through the activity classes' methods,
with the timeouts and retries of the order's policy.

`Steps.run(OrderActivities.validate_order, ValidateOrderInput(...))` is checked by mypy:
the method names the activity (the name recorded in history is the method's), its
argument type is the input, its return type the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schema.contracts import OrderPolicy

I = TypeVar("I")  # noqa: E741 - an activity's input
O = TypeVar("O")  # noqa: E741 - an activity's output

# Errors that no retry heals: the order is gone, or a provider refused the request.
NON_RETRYABLE = ["OrderNotFound", "ProviderRejected"]


class Steps:
    def __init__(self, policy: OrderPolicy) -> None:
        self._options: dict[str, Any] = {
            "start_to_close_timeout": policy.activity_timeout,
            "retry_policy": RetryPolicy(
                initial_interval=policy.activity_retry_initial,
                maximum_interval=policy.activity_retry_max,
                non_retryable_error_types=NON_RETRYABLE,
            ),
        }

    async def run(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O:
        """One activity on the worker's task queue."""
        result: O = await workflow.execute_activity_method(activity, arg, **self._options)
        return result

    async def run_local(self, activity: Callable[[Any, I], Awaitable[O]], arg: I) -> O:
        """A short, idempotent activity in the workflow's own worker (no task-queue round trip)."""
        result: O = await workflow.execute_local_activity_method(activity, arg, **self._options)
        return result
