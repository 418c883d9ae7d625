"""CarrierTrackingWorkflow: one round of tracking by polling, for carriers that send no
webhooks (Nova Poshta, Ukrposhta). A Temporal schedule starts it every few minutes
(`ORDERFLOW_CARRIER_POLL_INTERVAL`; worker.ensure_tracking_schedule), rather than a timer in
every order: one round asks about every parcel in flight, a hundred numbers a call.

Each run takes one page of parcels (500: five of Nova Poshta's calls), tells each order what
changed through its typed `carrier_event` signal (a customer's return parcel: its
`ReturnWorkflow`'s), records what it told, and continues as new with the next page: a run's
history stays bounded however many parcels are in flight. The events carry business facts
only (tracking number, status, dates, amounts); their ids are the parcel, the code and the
day, so news told twice is dropped by the order. The order (the return) still checks the
tracking number is its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        ParcelNews,
        PollTrackingInput,
        RecordTrackingInput,
        TrackingRound,
        return_workflow_id_for,
        workflow_id_for,
    )
    from schema.vocabulary import PatchId

from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow
from workflows.steps import NON_RETRYABLE, RETRIES

TIMEOUT = timedelta(minutes=2)  # one page: several calls to the carrier


@workflow.defn(name="CarrierTrackingWorkflow")
class CarrierTrackingWorkflow:
    @workflow.run
    async def run(self, round: TrackingRound) -> TrackingRound:
        page = await workflow.execute_activity_method(
            ShippingActivities.poll_tracking,
            PollTrackingInput(after=round.after, limit=round.page),
            start_to_close_timeout=TIMEOUT,
            retry_policy=_retries(ShippingActivities.poll_tracking),
        )
        told = await asyncio.gather(*(_tell(news) for news in page.news))
        delivered = [news for news, ok in zip(page.news, told, strict=True) if ok]
        if delivered:
            await workflow.execute_activity_method(
                ShippingActivities.record_tracking,
                RecordTrackingInput(delivered),
                start_to_close_timeout=TIMEOUT,
                retry_policy=_retries(ShippingActivities.record_tracking),
            )
        done = TrackingRound(
            after=page.after,
            asked=round.asked + page.asked,
            changed=round.changed + len(delivered),
            calls=round.calls + page.calls,
            page=round.page,
        )
        if page.after is not None:
            workflow.continue_as_new(done)
        workflow.logger.info(
            "tracking round: %d parcels asked in %d calls, %d changes told",
            done.asked,
            done.calls,
            done.changed,
        )
        return done


async def _tell(news: ParcelNews) -> bool:
    """Signal the order (a return parcel's news: the return); one whose workflow is gone is
    told nothing (its parcel leaves the rounds once its order or return is closed; until
    then it is asked again next round)."""
    try:
        if news.return_id is not None and workflow.patched(PatchId.TRACKING_TELLS_RETURNS):
            ret: workflow.ExternalWorkflowHandle[ReturnWorkflow] = (
                workflow.get_external_workflow_handle_for(
                    ReturnWorkflow.run, return_workflow_id_for(news.return_id)
                )
            )
            await ret.signal(ReturnWorkflow.carrier_event, news.event)
            return True
        order: workflow.ExternalWorkflowHandle[OrderWorkflow] = (
            workflow.get_external_workflow_handle_for(
                OrderWorkflow.run, workflow_id_for(news.order_id)
            )
        )
        await order.signal(OrderWorkflow.carrier_event, news.event)
    except FailureError as failure:
        workflow.logger.warning("order %s not told: %s", news.order_id, failure)
        return False
    return True


def _retries(activity: Callable[..., Any]) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=RETRIES[activity].attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )
