"""The order's timeline and its messages: where the order stands, every step it took, and
who was told what.

Each step is written to Postgres by a local activity, idempotently: the key is the step's
position, so a retried write changes nothing. The timeline's home is Postgres: the workflow
keeps only the latest steps (`LATEST`) for the `status` query, so that an order that hears
hundreds of carrier scans holds no more in a worker's memory than one that hears a few.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError

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
        Stage,
        TimelineEntry,
    )
    from schema.vocabulary import EventType, PatchId

from workflows import search
from workflows.steps import Steps

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
        # A local activity: one short row write per step needs no task-queue round trip
        # (bench.confirmation: POST-to-e-mail p50 349 -> 163 ms).
        await self._steps.record_or_skip(
            OrderActivities.record_event,
            RecordEventInput(
                order_id=self._order_id,
                key=key,
                entry=entry,
                status=self.status,
                expected_date=self.expected_date,
                progress=self._progress(),
                paid=paid,
            ),
        )

    async def progressed(self) -> None:
        """Write what the order waits for now (a wait began). Best effort: a failed write is
        corrected by the next step's, and must not stop the order. (Orders that started
        before the read model kept it keep their stage and status there, as before.)"""
        if not workflow.patched(PatchId.PROGRESS_IN_READ_MODEL):
            return
        with contextlib.suppress(ActivityError):
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
