"""The bare-Temporal ceiling: a workflow that issues an order's business work and nothing else.

`BareOrderWorkflow` runs a list of steps: activities on the task queue (A), local activities
(L), search-attribute upserts (U) and waits for a signal (S, with a deadline after a T), each
with no-op bodies and no database, mail or provider behind them. A no-op activity that an
order follows with provider events asks its worker to send that many signals to its workflow
once it has returned, as a provider's webhook would. Its worker is configured as orderflow's
(the same sandbox and cache), so the difference between the two is what orderflow does
beside Temporal.

The steps are a fixed minimal business mix (`BUSINESS`: what a cash-on-delivery courier
order cannot do without), not a copy of what orderflow's order issues today (`mix_of` reads
that, for the table): a command orderflow stops issuing then shows as a gain.

    python -m bench.ceiling --address 127.0.0.1:7233 --task-queue bare   (the worker)
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

BARE_STAGE = SearchAttributeKey.for_keyword("OrderStage")
TIMEOUT = timedelta(seconds=30)


@dataclass
class Noop:
    workflow_id: str
    step: int
    signals: int = 0  # signals the "provider" sends to the workflow after this step


class BareActivities:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._sending: set[asyncio.Task[None]] = set()

    @activity.defn(name="bare_noop")
    async def noop(self, input: Noop) -> int:
        if input.signals:
            task = asyncio.create_task(self._signal(input.workflow_id, input.signals))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return input.step

    async def _signal(self, workflow_id: str, count: int) -> None:
        handle = self._client.get_workflow_handle(workflow_id)
        for _ in range(count):
            await handle.signal(BareOrderWorkflow.event)


@workflow.defn(name="BareOrderWorkflow")
class BareOrderWorkflow:
    def __init__(self) -> None:
        self._events = 0

    @workflow.run
    async def run(self, steps: str) -> int:
        """`steps`: one letter per step (A, L, U, T, S), as `mix_of` reads them from an order."""
        waited, timer = 0, False
        for position, step in enumerate(steps):
            if step in "AL":
                # An activity brings the signals that come before the next one.
                following = steps[position + 1 :].split("A", 1)[0] if step == "A" else ""
                noop = Noop(workflow.info().workflow_id, position, following.count("S"))
                if step == "A":
                    await workflow.execute_activity(
                        BareActivities.noop, noop, start_to_close_timeout=TIMEOUT
                    )
                else:
                    await workflow.execute_local_activity(
                        BareActivities.noop, noop, start_to_close_timeout=TIMEOUT
                    )
            elif step == "U":
                workflow.upsert_search_attributes([BARE_STAGE.value_set(f"step-{position}")])
            elif step == "T":
                timer = True  # the next wait has a deadline (orderflow's silence guard)
            elif step == "S":
                waited += 1
                await workflow.wait_condition(
                    lambda wanted=waited: self._events >= wanted,
                    timeout=timedelta(days=1) if timer else None,
                )
                timer = False
        return len(steps)

    @workflow.signal
    def event(self) -> None:
        self._events += 1


# A cash-on-delivery courier order's business, and nothing of orderflow's own bookkeeping (its
# timeline's local activities, upserts beyond one per stage): 5 business activities, 7
# messages, 5 signals, 4 timers, 8 upserts.
BUSINESS = "".join(
    (
        "U",  # started: number, stage, flags
        "AA",  # validated; the confirmation
        "UA",  # stock reserved
        "U",  # payment: on delivery, nothing to wait for
        "UATSSA",  # picking: the pick task, picked and packed (a deadline), told
        "UAAA",  # handover: booked, documents, the shipped message
        "UTSATSATSA",  # transit: in transit, out for delivery, delivered, each told
        "UA",  # feedback: the request
        "U",  # completed
    )
)

# History events -> the step they stand for (local activities leave a marker each).
STEPS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "A",
    EventType.EVENT_TYPE_MARKER_RECORDED: "L",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "U",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "S",
    EventType.EVENT_TYPE_TIMER_STARTED: "T",
}


def mix_of(history: WorkflowHistory) -> str:
    """An order's Temporal work as steps: its activities, local activities, upserts and signals
    (a `workflow.patched` marker is no local activity: it is left out)."""
    return "".join(
        STEPS[event.event_type]
        for event in history.events
        if event.event_type in STEPS
        and event.marker_recorded_event_attributes.marker_name in ("", "core_local_activity")
    )


def history_figures(history: WorkflowHistory) -> dict[str, int]:
    """What an order's history costs Temporal: its events, workflow tasks, local activities
    and search-attribute upserts, and how many of those upserts changed no value."""
    figures = Counter(events=len(history.events))
    current: dict[str, bytes] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            fields = event.workflow_execution_started_event_attributes.search_attributes
            current.update({name: p.data for name, p in fields.indexed_fields.items()})
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            figures["workflow tasks"] += 1
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ):
            figures["local activities"] += 1
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attributes = event.upsert_workflow_search_attributes_event_attributes
            fields = attributes.search_attributes.indexed_fields
            figures["upserts"] += 1
            if all(current.get(name) == p.data for name, p in fields.items()):
                figures["upserts changing nothing"] += 1
            current.update({name: p.data for name, p in fields.items()})
    return dict(figures)


def describe(steps: str) -> str:
    counts = Counter(steps)
    return (
        f"{counts['A']} activities, {counts['L']} local, {counts['S']} signals, "
        f"{counts['U']} upserts, {counts['T']} timers"
    )


def bare_worker(client: Client, task_queue: str) -> Worker:
    """As worker.build_worker configures orderflow's: its module passed through, defaults."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareOrderWorkflow],
        activities=[BareActivities(client).noop],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("pydantic", "bench")
        ),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    async with bare_worker(client, task_queue):
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
