"""One OrderWorkflow on the time-skipping server with stand-in activities: start it, drive it
as the shop's operators and providers would, and read what a user would see.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schema.contracts import (
    ActionResult,
    CancelOrder,
    CancelReason,
    CarrierEvent,
    ConfirmOrder,
    FeedbackReceived,
    InspectedLine,
    MarkDelayed,
    OrderResult,
    OrderStatus,
    OrderWorkflowInput,
    ParcelChoice,
    ParcelDecision,
    PaymentEvent,
    PaymentMethod,
    PaymentOutcome,
    RefundMade,
    RejectOrder,
    ResolveStep,
    ReturnDecision,
    ReturnInspection,
    ReturnLine,
    ReturnProgress,
    ReturnReason,
    ReturnResolution,
    ReturnResult,
    ReturnWorkflowInput,
    StepChoice,
    StockChoice,
    StockDecision,
    TrackingStatus,
    WarehouseEvent,
    WarehouseEventKind,
    order_id_of,
    return_workflow_id_for,
    workflow_id_for,
)
from settings import Settings
from tests.workflows.standins import (
    PAYMENT_ID,
    RETURN_TRACKING_NUMBER,
    TRACKING_NUMBER,
    OrderStandIns,
)
from worker import WORKFLOW_RUNNER  # the worker's sandbox (test_standins checks it is used)
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow

OPERATOR = "key:operator"
T = TypeVar("T")


def stand_in_worker(client: Client, standins: OrderStandIns, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow, ReturnWorkflow, RefundWorkflow],
        activities=standins.activities(),
        workflow_runner=WORKFLOW_RUNNER,
    )


def types(status: OrderStatus) -> list[str]:
    """The timeline's event types, in order."""
    return [entry.type for entry in status.timeline]


async def refusal(update: Any) -> str:
    """The reason an update was refused (its validator's message); fails if it was accepted."""
    try:
        result = await asyncio.wait_for(update, 10)
    except WorkflowUpdateFailedError as refused:
        cause = refused.cause
        return cause.message if isinstance(cause, ApplicationError) else str(cause)
    raise AssertionError(f"the update was accepted: {result}")


S = TypeVar("S")


async def poll(
    read: Callable[[], Awaitable[S]],
    holds: Callable[[S], bool],
    what: str,
    timeout: float,
    seen: Callable[[S], str],
) -> S:
    """Read a workflow's status (in real time: no timer is skipped) until `holds`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await read()
        if holds(status):
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s: {seen(status)}")
        await asyncio.sleep(0.02)


class OrderRun:
    """A running order: its handle, its stand-ins, and the world around it."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        handle: WorkflowHandle[OrderWorkflow, OrderResult],
        standins: OrderStandIns,
        task_queue: str,
    ) -> None:
        self.env = env
        self.handle = handle
        self.standins = standins
        self.task_queue = task_queue
        self.background_tasks: list[asyncio.Task[Any]] = []
        self._events = 0

    @property
    def order_id(self) -> str:
        order_id = order_id_of(self.handle.id)
        assert order_id is not None
        return order_id

    def meanwhile(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` beside the test (e.g. a sleep across a held activity); ended at teardown."""
        task = asyncio.create_task(work)
        self.background_tasks.append(task)
        return task

    # --- what a user sees -------------------------------------------------------------------

    async def status(self) -> OrderStatus:
        """The workflow's `status`, with the timeline read where it lives: the rows written
        (the stand-in's `record_event` calls; the query answers only the latest steps)."""
        status = await self.handle.query(OrderWorkflow.status)
        return dataclasses.replace(status, timeline=self.standins.timeline())

    async def until(
        self, holds: Callable[[OrderStatus], bool], what: str = "condition", timeout: float = 10.0
    ) -> OrderStatus:
        """Poll the status query (in real time: no timer is skipped) until `holds`."""

        def seen(s: OrderStatus) -> str:
            return f"stage={s.stage}, waiting_for={s.waiting_for}, timeline={types(s)}"

        return await poll(self.status, holds, what, timeout, seen)

    async def waiting_for(self, what: str) -> OrderStatus:
        return await self.until(lambda s: s.waiting_for == what, f"waiting for {what}")

    async def reached(self, event_type: str) -> OrderStatus:
        return await self.until(lambda s: event_type in types(s), f"timeline has {event_type}")

    async def result(self, timeout: float = 10.0) -> OrderResult:
        """The run's end; waiting on it lets the server skip time to the next timer."""
        return await asyncio.wait_for(self.handle.result(), timeout)

    async def sleep(self, delta: timedelta) -> None:
        """Let durable timers run: the time-skipping server passes `delta` in milliseconds."""
        await self.env.sleep(delta)

    async def settled(self, timeout: float = 5.0) -> bool:
        return await settled(self.handle, timeout)

    # --- what operators do -------------------------------------------------------------------
    # The SDK types an async handler declared with `@workflow.update(name=...)` as returning a
    # coroutine, which no execute_update overload takes: hence the arg-type ignores below.

    async def confirm(self, **decision: Any) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.confirm,  # type: ignore[arg-type]
            ConfirmOrder(OPERATOR, **decision),
        )

    async def decide_stock(self, choice: StockChoice, **decision: Any) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.decide_stock,  # type: ignore[arg-type]
            StockDecision(OPERATOR, choice, **decision),
        )

    async def reject(self, reason: str) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.reject,  # type: ignore[arg-type]
            RejectOrder(OPERATOR, reason),
        )

    async def delay(self, reason: str, new_date: date) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.mark_delayed,  # type: ignore[arg-type]
            MarkDelayed(OPERATOR, reason, new_date),
        )

    async def cancel(
        self, reason: CancelReason = CancelReason.CUSTOMER_REQUEST, note: str = "changed mind"
    ) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.cancel,  # type: ignore[arg-type]
            CancelOrder(OPERATOR, reason, note),
        )

    async def decide_parcel(self, choice: ParcelChoice) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.decide_parcel,  # type: ignore[arg-type]
            ParcelDecision(OPERATOR, choice),
        )

    async def resolve(self, choice: StepChoice) -> ActionResult:
        return await self.handle.execute_update(
            OrderWorkflow.resolve_step,  # type: ignore[arg-type]
            ResolveStep(OPERATOR, choice),
        )

    async def reject_accepted(self, reason: str) -> WorkflowUpdateHandle[ActionResult]:
        """Send a rejection; return once accepted (it answers when the order is cancelled)."""
        return await self.handle.start_update(
            OrderWorkflow.reject,  # type: ignore[arg-type]
            RejectOrder(OPERATOR, reason),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )

    async def cancel_accepted(
        self, reason: CancelReason = CancelReason.CUSTOMER_REQUEST, note: str = "changed mind"
    ) -> WorkflowUpdateHandle[ActionResult]:
        """Send a cancel; return once the workflow accepted it (its compensation may still run)."""
        return await self.handle.start_update(
            OrderWorkflow.cancel,  # type: ignore[arg-type]
            CancelOrder(OPERATOR, reason, note),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )

    # --- what providers and the customer report ---------------------------------------------

    def event_id(self, prefix: str) -> str:
        self._events += 1
        return f"{prefix}-{self._events}"

    async def pay(
        self,
        outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
        *,
        amount: Decimal | None = None,
        reason: str = "",
        event_id: str | None = None,
        payment_id: str = PAYMENT_ID,
        currency: str = "UAH",
    ) -> PaymentEvent:
        event = PaymentEvent(
            event_id or self.event_id("payment"),
            outcome,
            payment_id,
            self.standins.total if amount is None else amount,
            reason,
            currency,
        )
        await self.handle.signal(OrderWorkflow.payment_event, event)
        return event

    async def pack(
        self, *, missing: list[str] | None = None, defects: list[str] | None = None
    ) -> None:
        """The warehouse reports the latest pick task packed (with its checklist's findings)."""
        task_id = f"task-{len(self.standins.inputs('create_pick_task'))}"
        await self.warehouse(
            WarehouseEventKind.PACKED, task_id=task_id, missing=missing or [], defects=defects or []
        )

    async def warehouse(self, kind: WarehouseEventKind, **event: Any) -> None:
        await self.handle.signal(
            OrderWorkflow.warehouse_event, WarehouseEvent(self.event_id("warehouse"), kind, **event)
        )

    async def carrier(
        self,
        status: TrackingStatus,
        detail: str = "",
        event_id: str | None = None,
        *,
        subtag: str = "",
        tracking_number: str = TRACKING_NUMBER,
    ) -> None:
        event = CarrierEvent(
            event_id or self.event_id("carrier"),
            tracking_number,
            status,
            datetime.now(UTC),
            detail,
            subtag,
        )
        await self.handle.signal(OrderWorkflow.carrier_event, event)

    async def refund_made(self, key: str, amount: Decimal) -> None:
        """A refund made outside the workflow (an operator's, a return's) is told to it."""
        await self.handle.signal(OrderWorkflow.refund_made, RefundMade(key, amount))

    async def feedback(self, *, rating: int | None = None, nps: int | None = None) -> None:
        await self.handle.signal(
            OrderWorkflow.feedback_received,
            FeedbackReceived(self.event_id("feedback"), rating, nps),
        )

    # --- whole stretches of a journey ---------------------------------------------------------

    async def paid(self) -> OrderStatus:
        await self.waiting_for("payment")
        await self.pay()
        return await self.waiting_for("packing")

    async def packed(self) -> OrderStatus:
        await self.waiting_for("packing")
        await self.pack()
        return await self.reached("order.packed")

    async def shipped(self) -> OrderStatus:
        """From payment (or packing, for cash on delivery) to the carrier."""
        status = await self.until(
            lambda s: s.waiting_for in ("payment", "packing"), "payment or packing"
        )
        if status.waiting_for == "payment":
            await self.paid()
        await self.packed()
        return await self.waiting_for("carrier")

    async def delivered(self) -> OrderStatus:
        """From payment (or packing, for cash on delivery) to the doorstep."""
        await self.shipped()
        for event in (
            TrackingStatus.IN_TRANSIT,
            TrackingStatus.OUT_FOR_DELIVERY,
            TrackingStatus.DELIVERED,
        ):
            await self.carrier(event)
        return await self.reached("order.delivered")


async def settled(handle: WorkflowHandle[Any, Any], timeout: float = 5.0) -> bool:
    """Wait until nothing is in flight: no activity pending, the history no longer growing.
    False when the run has already ended."""
    deadline = asyncio.get_running_loop().time() + timeout
    length = -1
    while True:
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return False
        idle = not described.raw_description.pending_activities
        if idle and described.history_length == length:
            return True
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{handle.id} did not settle within {timeout} s")
        length = described.history_length
        await asyncio.sleep(0.05)


class ReturnRun:
    """A customer return's workflow beside its order (which may run or not): drive it as the
    carrier, the warehouse and the operators would, and read what they would see."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        handle: WorkflowHandle[ReturnWorkflow, ReturnResult],
        standins: OrderStandIns,
        input: ReturnWorkflowInput,
    ) -> None:
        self.env = env
        self.handle = handle
        self.standins = standins
        self.input = input
        self.background_tasks: list[asyncio.Task[Any]] = []
        self._events = 0

    async def status(self) -> ReturnProgress:
        return await self.handle.query(ReturnWorkflow.status)

    async def until(
        self, holds: Callable[[ReturnProgress], bool], what: str, timeout: float = 10.0
    ) -> ReturnProgress:
        return await poll(self.status, holds, what, timeout, str)

    async def waiting_for(self, what: str) -> ReturnProgress:
        return await self.until(lambda s: s.waiting_for == what, f"waiting for {what}")

    async def result(self, timeout: float = 10.0) -> ReturnResult:
        return await asyncio.wait_for(self.handle.result(), timeout)

    async def sleep(self, delta: timedelta) -> None:
        await self.env.sleep(delta)

    async def settled(self, timeout: float = 5.0) -> bool:
        return await settled(self.handle, timeout)

    def steps(self) -> list[str]:
        """The return's steps on the order's timeline, in order."""
        return [
            input.entry.type
            for input in self.standins.inputs("record_event")
            if input.entry.detail.get("return_id") == self.input.return_id
        ]

    def told(self) -> list[str]:
        """The kinds of the messages this return sent, in order."""
        return [
            input.kind.value
            for input in self.standins.inputs("notify")
            if self.input.number in input.key
        ]

    async def carrier(self, status: TrackingStatus) -> None:
        self._events += 1
        await self.handle.signal(
            ReturnWorkflow.carrier_event,
            CarrierEvent(
                f"return-scan-{self._events}",
                RETURN_TRACKING_NUMBER,
                status,
                datetime.now(UTC),
            ),
        )

    async def delivered(self) -> ReturnProgress:
        """The parcel travels to the warehouse."""
        await self.waiting_for("parcel")
        for status in (TrackingStatus.IN_TRANSIT, TrackingStatus.DELIVERED):
            await self.carrier(status)
        return await self.waiting_for("inspection")

    async def inspect(self, *lines: InspectedLine) -> None:
        await self.handle.signal(
            ReturnWorkflow.inspected,
            ReturnInspection(f"inspection-{self.input.return_id}", list(lines)),
        )

    async def decide(self, approve: bool) -> ReturnProgress:
        return await self.handle.execute_update(
            ReturnWorkflow.decide,  # type: ignore[arg-type]
            ReturnDecision(OPERATOR, approve),
        )

    async def resolve(self, choice: StepChoice) -> ReturnProgress:
        return await self.handle.execute_update(
            ReturnWorkflow.resolve_step,  # type: ignore[arg-type]
            ResolveStep(OPERATOR, choice),
        )


class OrderDesk:
    """Starts orders for one test: each on its own task queue, with its own stand-in worker."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env
        self.policy = Settings().order_policy()  # the real 2 h / 24 h / 72 h durations
        self.workers = AsyncExitStack()
        self._runs: list[OrderRun | ReturnRun] = []

    async def place(
        self, standins: OrderStandIns | None = None, *, worker: bool = True
    ) -> OrderRun:
        """Start an order's workflow; with `worker=False` it has no worker until `start_worker`."""
        standins = standins or OrderStandIns()
        order_id = str(uuid.uuid4())
        task_queue = f"fast-{order_id[:8]}"
        handle = await self.env.client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(order_id=order_id, number=f"T-{order_id[:6]}", policy=self.policy),
            id=workflow_id_for(order_id),
            task_queue=task_queue,
        )
        run = OrderRun(self.env, handle, standins, task_queue)
        self._runs.append(run)
        if worker:
            await self.start_worker(run)
        return run

    async def open_return(
        self,
        order: OrderRun | None = None,
        *,
        standins: OrderStandIns | None = None,
        delivered_ago: timedelta = timedelta(days=2),
        **given: Any,
    ) -> ReturnRun:
        """Start a return of `order` (on its worker), or of an order whose workflow ended
        long ago (a worker of its own): by default 2 mugs of 250.00, prepaid, delivered two
        days ago on the server's clock, for a refund."""
        if order is not None:
            standins, task_queue, order_id = order.standins, order.task_queue, order.order_id
        else:
            standins = standins or OrderStandIns()
            order_id = str(uuid.uuid4())
            task_queue = f"fast-{order_id[:8]}"
            await self.workers.enter_async_context(
                stand_in_worker(self.env.client, standins, task_queue)
            )
        return_id = str(uuid.uuid4())
        now = await self.env.get_current_time()
        prepaid = standins.payment == PaymentMethod.PREPAID
        fields: dict[str, Any] = {
            "return_id": return_id,
            "order_id": order_id,
            "number": f"T-{order_id[:6]}-R1",
            "lines": [ReturnLine("MUG-01", 2, Decimal("250.00"), 2)],
            "reason": ReturnReason.CHANGED_MIND,
            "resolution": ReturnResolution.REFUND,
            "delivered_at": now - delivered_ago,
            "payment_method": standins.payment,
            "policy": self.policy,
            "returns": Settings().return_policy(),  # the real 14 days
            "actor": "customer",
            "payment_id": PAYMENT_ID if prepaid else None,
            "paid": standins.total if prepaid else None,
        }
        input = ReturnWorkflowInput(**{**fields, **given})
        handle = await self.env.client.start_workflow(
            ReturnWorkflow.run,
            input,
            id=return_workflow_id_for(return_id),
            task_queue=task_queue,
        )
        run = ReturnRun(self.env, handle, standins, input)
        self._runs.append(run)
        return run

    async def start_worker(self, run: OrderRun) -> None:
        await self.workers.enter_async_context(
            stand_in_worker(self.env.client, run.standins, run.task_queue)
        )

    async def let_go(self) -> None:
        """Release every held activity, then let the work a test left beside it finish (a
        time-skipping sleep cut short could leave the server skipping)."""
        for run in self._runs:
            run.standins.release_all()
        for run in self._runs:
            if run.background_tasks:
                await asyncio.wait(run.background_tasks, timeout=10)
            for task in run.background_tasks:
                task.cancel()
            await asyncio.gather(*run.background_tasks, return_exceptions=True)

    async def terminate(self) -> None:
        """Terminate every order once it has settled. The time-skipping server stops skipping
        time while an activity or workflow task is in flight; one terminated mid-flight keeps
        it stopped for the rest of the session."""
        for run in self._runs:
            with suppress(RPCError):
                if await run.settled():
                    await run.handle.terminate(reason="test over")


@asynccontextmanager
async def order_desk(env: WorkflowEnvironment) -> AsyncIterator[OrderDesk]:
    """A desk whose orders end with the test, before their workers stop."""
    desk = OrderDesk(env)
    async with desk.workers:
        try:
            yield desk
        finally:
            await desk.let_go()
            await desk.terminate()
    del desk
    close_abandoned_workflow_coroutines()


def close_abandoned_workflow_coroutines() -> None:
    """Close, here and now, the coroutines of orders a stopped worker still had cached.

    The SDK does not evict idle cached workflows when a worker stops; Python's garbage
    collector closes their coroutines later, on whatever thread it runs, and a `finally`
    that issues a command (OrderWorkflow._wait upserts a search attribute) then lands in
    whichever workflow runs on that thread: a stray command, and a nondeterminism error in
    an unrelated order (sdk-python issue 494). Collected on this thread, where no workflow
    runs, that command only finds no workflow event loop, which is expected and ignored.
    """
    default = sys.unraisablehook

    def ignore_no_workflow_loop(unraisable: Any) -> None:
        if type(unraisable.exc_value).__name__ != "_NotInWorkflowEventLoopError":
            default(unraisable)

    sys.unraisablehook = ignore_no_workflow_loop
    try:
        gc.collect()
    finally:
        sys.unraisablehook = default
    gc.freeze()  # what survives stays: the next collection only looks at the next test's objects
