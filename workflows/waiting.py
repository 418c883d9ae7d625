"""Every wait of an order or a customer return, and the silence guard that runs beside it.

A wait ends when its condition holds (True), at its deadline (False), or with
`OrderCancelled` once a cancellation is decided. Beside every wait runs the silence guard
(seed 000): whenever the customer has heard nothing for the policy's period, they get an
interim notice saying what the order waits for, support sees an SLA breach, and it repeats
each period up to a bound. All of it on durable timers: a worker may die in between.

Both workflows wait the same way: each gives `Waiting` its `Writer` (the order's `Timeline`,
a return's `ReturnTimeline`), where the steps, the messages and the flags are written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.contracts import (
        WAITS_FOR_A_PERSON,
        MessageKind,
        NextDeadline,
        SlaBreach,
        Stage,
        WaitingFor,
    )
    from schema.vocabulary import EventType, PatchId


class SilencePolicy(Protocol):
    """The silence guard's numbers: an `OrderPolicy`'s, a `ReturnPolicy`'s."""

    @property
    def silence_period(self) -> timedelta: ...
    @property
    def silence_max_notices(self) -> int: ...


class Writer(Protocol):
    """Where a workflow's waits and failed steps are written and told (the order's
    `Timeline`, a return's `ReturnTimeline`)."""

    # The stage incidents and SLA breaches are filed under.
    @property
    def stage(self) -> Stage: ...

    # The silence guard's clock: when the customer last heard from us or things moved
    # (None: not started, nobody has been promised anything yet).
    quiet_since: datetime | None

    async def record(
        self, event_type: EventType, detail: dict[str, str] | None = None, actor: str = ...
    ) -> None:
        """Write one step."""

    async def notify(
        self, kind: MessageKind, key: str = ..., params: dict[str, str] | None = None
    ) -> None:
        """Send a message of the catalog once per `kind:key`."""

    async def progressed(self) -> None:
        """A wait began: write what it waits for, where the workflow keeps it."""

    async def flag_needs_action(self, needed: bool) -> None:
        """Show or clear the flag of the operator queue."""

    def flag_sla_breached(self) -> None:
        """Show support the silence guard's breach."""


class OrderCancelled(Exception):
    """Raised out of any wait or step once a cancellation is decided."""


class Waiting:
    def __init__(
        self, policy: SilencePolicy, timeline: Writer, cancelled: Callable[[], bool]
    ) -> None:
        self._policy = policy
        self._timeline = timeline
        self._cancelled = cancelled
        self.waiting_for: WaitingFor | None = None
        self.deadline: NextDeadline | None = None
        self.breaches: list[SlaBreach] = []
        self._notices = 0

    def check_cancelled(self) -> None:
        if self._cancelled():
            raise OrderCancelled

    async def until(
        self,
        ready: Callable[[], bool],
        waiting_for: WaitingFor,
        timeout: timedelta | None = None,
        *,
        guard: bool = True,
        cancellable: bool = True,
    ) -> bool:
        """Wait until `ready()` (True) or `timeout` (False); a cancellation raises
        OrderCancelled (unless not `cancellable`: compensation's own waits)."""
        end = workflow.now() + timeout if timeout is not None else None
        self.waiting_for = waiting_for
        self.deadline = NextDeadline(end, waiting_for) if end is not None else None
        await self._timeline.flag_needs_action(waiting_for in WAITS_FOR_A_PERSON)
        await self._timeline.progressed()
        try:
            ready_in_time = await self._until(ready, waiting_for, end, guard, cancellable)
        except Exception:
            await self._done_waiting()
            raise
        # Not in a `finally`: when a cached workflow is evicted, its coroutines are closed
        # outside the workflow's event loop, where no workflow API may be called.
        await self._done_waiting()
        return ready_in_time

    async def _until(
        self,
        ready: Callable[[], bool],
        waiting_for: WaitingFor,
        end: datetime | None,
        guard: bool,
        cancellable: bool,
    ) -> bool:
        def cancelled() -> bool:
            return cancellable and self._cancelled()

        while True:
            if cancelled():
                raise OrderCancelled
            if ready():
                return True
            now = workflow.now()
            if end is not None and now >= end:
                return False
            wakes = [end] if end is not None else []
            guard_at = self._guard_due()
            if guard and guard_at is not None:
                wakes.append(guard_at)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: ready() or cancelled(),
                    timeout=(min(wakes) - now) if wakes else None,
                )
            if (
                end is not None
                and workflow.now() >= end
                and not ready()
                and workflow.patched(PatchId.DEADLINE_BEFORE_GUARD)
            ):
                return False  # the caller acts on its deadline (a reminder is news enough)
            if guard and not ready() and not cancelled():
                guard_at = self._guard_due()
                if guard_at is not None and workflow.now() >= guard_at:
                    await self._silence_notice(waiting_for)
                    # The next period counts from when this one ended.
                    self._timeline.quiet_since = guard_at

    async def _done_waiting(self) -> None:
        self.waiting_for = None
        self.deadline = None
        await self._timeline.flag_needs_action(False)

    def _guard_due(self) -> datetime | None:
        quiet_since = self._timeline.quiet_since
        if quiet_since is None or self._notices >= self._policy.silence_max_notices:
            return None
        return quiet_since + self._policy.silence_period

    async def _silence_notice(self, waiting_for: WaitingFor) -> None:
        self._notices += 1
        self.breaches.append(
            SlaBreach(at=workflow.now(), stage=self._timeline.stage, waiting_for=waiting_for)
        )
        self._timeline.flag_sla_breached()
        await self._timeline.record(
            EventType.SLA_SILENCE_BREACHED,
            {"waiting_for": waiting_for.value, "notice": str(self._notices)},
        )
        await self._timeline.notify(
            MessageKind.INTERIM, f"{self._notices}", {"waiting_for": waiting_for.value}
        )
