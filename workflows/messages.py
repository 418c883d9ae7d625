"""CustomerMessageWorkflow: a message that the API sends, not an order's workflow — the
thanks for an answer to the feedback request (an answer may come after the order's workflow
has ended) and the "my orders" link. One activity, retried with backoff; the workflow id
names the message (`schema.contracts.message_workflow_id`), so a repeated request starts
nothing new, and the order's outbox key makes its message exactly-once besides.

No personal data: ids, codes and the bonus code only (the activities read the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from schema.contracts import CustomerMessageInput

from workflows.steps import NON_RETRYABLE, RETRIES

# As an order's messages are retried by default (workflows/steps.py): a mail outage of about
# seven minutes is ridden out; after that the workflow fails, visible in Temporal's UI.
TIMEOUT = timedelta(seconds=30)


def _retries(activity: Callable[..., Any]) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=RETRIES[activity].attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


@workflow.defn(name="CustomerMessageWorkflow")
class CustomerMessageWorkflow:
    @workflow.run
    async def run(self, message: CustomerMessageInput) -> None:
        if message.notify is not None:
            await workflow.execute_activity_method(
                NotificationActivities.notify,
                message.notify,
                start_to_close_timeout=TIMEOUT,
                retry_policy=_retries(NotificationActivities.notify),
            )
        if message.order_list is not None:
            await workflow.execute_activity_method(
                NotificationActivities.send_order_list,
                message.order_list,
                start_to_close_timeout=TIMEOUT,
                retry_policy=_retries(NotificationActivities.send_order_list),
            )
