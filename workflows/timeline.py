"""The order's timeline and its messages: where the order stands, every step it took, and
who was told what.

Each step is written to Postgres by a local activity, idempotently: the key is the step's
position, so a retried write changes nothing. The steps one activation takes are held and
written together (`record_steps`) before the next activity, wait or the end, a wait's
progress in the same write (orders from before `one-write-per-activation` write each step,
and each wait's progress, in a local activity of its own). The timeline's home is Postgres:
the workflow keeps only the latest steps (`LATEST`) for the `status` query, so that an order
that hears hundreds of carrier scans holds no more in a worker's memory than one that hears
a few.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from schema.contracts import (
        CustomerStatus,
        IncidentCause,
        IncidentInput,
        MessageKind,
        NotifyInput,
        OrderProgress,
        RecordEventInput,
        RecordProgressInput,
        RecordStepsInput,
        Stage,
        TimelineEntry,
    )
    from schema.vocabulary import EventType, PatchId

from workflows import search
from workflows.steps import FAILED_FOR_GOOD, Steps

SYSTEM = "system"
LATEST = 20  # steps the `status` query answers with (all of them are in Postgres)


# Once a cancellation is decided, the customer hears nothing but the cancellation (orders
# that started before this change may have heard one more notice: QUIET_ONCE_CANCELLED).
LAST_WORDS = frozenset({MessageKind.CANCELLED, MessageKind.REJECTED})


class Timeline:
    def __init__(
        self,
        order_id: str,
        steps: Steps,
        cancelling: Callable[[], bool],
        progress: Callable[[], OrderProgress],
    ) -> None:
        self._order_id = order_id
        self._steps = steps
        self._cancelling = cancelling
        self._progress = progress
        self.telling = 0  # customer messages on their way now
        self.stage = Stage.INTAKE
        self.status = CustomerStatus.RECEIVED
        self.expected_date: date | None = None
        self.entries: deque[TimelineEntry] = deque(maxlen=LATEST)  # the latest steps
        self.steps = 0  # steps taken so far: each one's position, its key in Postgres
        # The silence guard's clock: when the customer last heard from us or the order moved.
        # It starts once the order is confirmed (before that nobody has been promised anything).
        self.quiet_since: datetime | None = None
        self._held: list[RecordEventInput] = []  # steps taken, not yet written
        steps.before_activity = self.flush

    async def advance(
        self,
        stage: Stage,
        status: CustomerStatus,
        event_type: EventType,
        detail: dict[str, str] | None = None,
        actor: str = SYSTEM,
        *,
        paid: Decimal | None = None,
    ) -> None:
        """Progress: move to `stage`/`status` and write the step (`paid`: what a payment
        brought in, with the step that records it)."""
        if stage != self.stage:
            search.mark_stage(stage.value)
        self.stage, self.status = stage, status
        if self.quiet_since is not None:
            self.quiet_since = workflow.now()
        await self.record(event_type, detail, actor, paid=paid)

    async def record(
        self,
        event_type: EventType,
        detail: dict[str, str] | None = None,
        actor: str = SYSTEM,
        *,
        paid: Decimal | None = None,
    ) -> None:
        """Write one step without moving the order."""
        entry = TimelineEntry(
            at=workflow.now(), type=event_type, stage=self.stage, actor=actor, detail=detail or {}
        )
        key = f"{self.steps:04d}:{event_type}"
        self.steps += 1
        self.entries.append(entry)
        workflow.logger.info("order %s: %s", self.stage.value, event_type)
        step = RecordEventInput(
            order_id=self._order_id,
            key=key,
            entry=entry,
            status=self.status,
            expected_date=self.expected_date,
            progress=self._progress(),
            paid=paid,
        )
        # Asked first at the order's first step, so an order keeps one way all its life.
        if workflow.patched(PatchId.ONE_WRITE_PER_ACTIVATION):
            self._held.append(step)  # written by `flush`
            return
        # A local activity: one short row write per step needs no task-queue round trip
        # (bench.confirmation: POST-to-e-mail p50 349 -> 163 ms).
        await self._steps.record_or_skip(OrderActivities.record_event, step)

    async def flush(self, progress: OrderProgress | None = None) -> None:
        """Write the steps held, in one local activity (and `progress`, a wait's, after
        them); before the next activity, wait or the end. A failed write is settled as a
        step's (an incident, retried or skipped by a person); while a failed step is being
        settled, the settling's own steps go unwritten if their write fails, and the settling
        goes on (its alert, its wait), as when each step was a write of its own."""
        if not self._held:
            return
        held, self._held = self._held, []  # steps taken while this writes wait for the next
        with contextlib.suppress(*FAILED_FOR_GOOD):  # raised only while settling (steps.py)
            await self._steps.record_or_skip(
                OrderActivities.record_steps, RecordStepsInput(self._order_id, held, progress)
            )

    async def progressed(self) -> None:
        """Write what the order waits for now (a wait began): with the steps held, if any.
        Alone, best effort: a failed write is corrected by the next step's, and must not stop
        the order. (Orders that started before the read model kept it keep their stage and
        status there, as before.)"""
        if not workflow.patched(PatchId.PROGRESS_IN_READ_MODEL):
            return
        if self._held:
            await self.flush(self._progress())
            return
        with contextlib.suppress(*FAILED_FOR_GOOD):
            await self._steps.record_or_give_up(
                OrderActivities.record_progress,
                RecordProgressInput(self._order_id, self._progress()),
            )

    async def flag_needs_action(self, needed: bool) -> None:
        """The operator queue's flag: a search attribute (no activity, so nothing to await)."""
        search.mark_needs_action(needed)

    def flag_sla_breached(self) -> None:
        search.mark_sla_breached()

    async def notify(
        self, kind: MessageKind, key: str = "1", params: dict[str, str] | None = None
    ) -> None:
        """Send a message of the catalog, once per `kind:key` (the outbox holds the key)."""
        to_customer = not kind.value.startswith("manager_")
        if (
            to_customer
            and kind not in LAST_WORDS
            and self._cancelling()
            and workflow.patched(PatchId.QUIET_ONCE_CANCELLED)
        ):
            return
        self.telling += to_customer
        try:
            await self._steps.run_or_skip(
                NotificationActivities.notify,
                NotifyInput(self._order_id, kind, f"{kind.value}:{key}", params or {}),
            )
        finally:
            self.telling -= to_customer
        if to_customer:
            self.quiet_since = workflow.now()

    async def incident(self, stage: Stage, cause: IncidentCause, summary: str, key: str) -> None:
        """Seed 000: every deviation recorded with its cause; the managers are told at once."""
        await self._steps.run(
            OrderActivities.record_incident,
            IncidentInput(self._order_id, key, stage, cause, summary),
        )
        await self.record(EventType.INCIDENT_OPENED, {"cause": cause.value, "summary": summary})
        await self.notify(
            MessageKind.MANAGER_INCIDENT, key, {"summary": summary, "cause": cause.value}
        )
