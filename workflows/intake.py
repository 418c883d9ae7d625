"""MarketplacePollWorkflow: one poll of every marketplace connector whose orders are polled
(Prom.ua). A Temporal schedule starts it every few minutes
(`ORDERFLOW_MARKETPLACE_POLL_INTERVAL`; worker.ensure_schedules), as the carrier tracking
rounds are: one schedule for every connector, so that a connector an admin adds, enables or
disables needs no schedule of its own created, paused or deleted beside its row.

Each connector is polled by its own activity, all at once: one marketplace that is down
(retried a few times) or refuses its connector (an intake failure, no retry) holds up no
other; the schedule's next run polls it again. Nothing of an order passes through here:
the activities take the orders into Postgres and return counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.marketplaces import MarketplaceActivities
    from schema.contracts import MarketplacePoll, PollOrdersInput, PollOrdersResult

from workflows.steps import NON_RETRYABLE, RETRIES

TIMEOUT = timedelta(minutes=5)  # one connector: its pages of orders, each taken


def _retries(activity: Callable[..., Any]) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=RETRIES[activity].attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


@workflow.defn(name="MarketplacePollWorkflow")
class MarketplacePollWorkflow:
    @workflow.run
    async def run(self, poll: MarketplacePoll) -> MarketplacePoll:
        polled = await workflow.execute_activity_method(
            MarketplaceActivities.polled_connectors,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_retries(MarketplaceActivities.polled_connectors),
        )
        results = await asyncio.gather(*(_poll(id) for id in polled.connector_ids))
        done = [result for result in results if result is not None]
        summary = MarketplacePoll(
            connectors=len(results),
            listed=sum(result.listed for result in done),
            accepted=sum(result.accepted for result in done),
            failed=sum(result.failed for result in done),
            refused=len(results) - len(done),
        )
        workflow.logger.info("marketplace poll: %s", summary)
        return summary


async def _poll(connector_id: str) -> PollOrdersResult | None:
    """One connector's poll; None when it failed for good (the next run polls it again,
    unless its credentials were refused: then not before an operator resolves that)."""
    try:
        return await workflow.execute_activity_method(
            MarketplaceActivities.poll_orders,
            PollOrdersInput(connector_id),
            start_to_close_timeout=TIMEOUT,
            retry_policy=_retries(MarketplaceActivities.poll_orders),
        )
    except ActivityError as failed:
        workflow.logger.warning("connector %s not polled: %s", connector_id, failed.cause)
        return None
