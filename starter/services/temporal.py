"""The orders' workflows as every room reaches them: typed calls through `OrderWorkflow`'s
methods, the workflow id from `workflow_id_for`, and Temporal's failures as named errors.

The client connects lazily: the API starts, and says so in /healthz, while Temporal is down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar, cast

import structlog
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from runtime import connect_temporal
from schema.contracts import (
    ActionResult,
    CustomerMessageInput,
    OrderResult,
    OrderStatus,
    OrderWorkflowInput,
    RefundResult,
    RefundWorkflowInput,
    ReturnProgress,
    ReturnResult,
    ReturnWorkflowInput,
    refund_workflow_id_for,
    return_workflow_id_for,
    workflow_id_for,
)
from schema.vocabulary import ErrorType
from settings import Settings
from starter.services.errors import (
    ActionRefused,
    OrderFinished,
    RefundRefused,
    TemporalUnavailable,
    WorkflowUnanswered,
)
from workflows.messages import CustomerMessageWorkflow
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow

log = structlog.get_logger(__name__)
A = TypeVar("A")
W = TypeVar("W")  # a workflow class
R = TypeVar("R")  # its result

# An operator's action: an update of OrderWorkflow taking one argument, answering ActionResult.
OrderUpdate = UpdateMethodMultiParam[[OrderWorkflow, A], Coroutine[Any, Any, ActionResult]]

# An operator's action on a return: an update of ReturnWorkflow answering its progress.
ReturnUpdate = UpdateMethodMultiParam[[ReturnWorkflow, A], Coroutine[Any, Any, ReturnProgress]]

# How long a reader waits for the live `status` before answering from the read model.
STATUS_DEADLINE = timedelta(seconds=2)
# How long a request that starts a return or a refund waits for its first answer (the
# return's assessment, the refund's provider call) before answering with where it stands.
FIRST_ANSWER = timedelta(seconds=10)


class OrderWorkflows:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect_temporal(self._settings)
                except RuntimeError as exc:
                    raise TemporalUnavailable(
                        f"Temporal is unreachable at {self._settings.temporal_address}: {exc}"
                    ) from exc
            return self._client

    async def _handle(self, order_id: uuid.UUID) -> WorkflowHandle[OrderWorkflow, OrderResult]:
        client = await self.client()
        return client.get_workflow_handle_for(OrderWorkflow.run, workflow_id_for(str(order_id)))

    def _start_options(
        self,
        workflow_id: str,
        reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    ) -> dict[str, Any]:
        """How every workflow here starts: once per id, on the workers' queue; a retried
        request finds the one running (`reuse`: whether an ended one may run again)."""
        return {
            "id": workflow_id,
            "task_queue": self._settings.temporal_task_queue,
            "id_reuse_policy": reuse,
            "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        }

    async def _start(
        self,
        run: Callable[[W, A], Awaitable[R]],
        input: A,
        workflow_id: str,
        *,
        failing: str,
        reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    ) -> WorkflowHandle[W, R]:
        """Start the workflow, or find it: running, or ended already under the id (then not
        run again unless `reuse` allows). Temporal away is TemporalUnavailable, `failing`
        saying what did not happen."""
        client = await self.client()
        try:
            return await client.start_workflow(
                run, input, **self._start_options(workflow_id, reuse)
            )
        except WorkflowAlreadyStartedError:
            return client.get_workflow_handle_for(run, workflow_id)
        except RPCError as exc:
            raise TemporalUnavailable(f"{failing} ({exc}); retry the request") from exc

    async def start(self, *, order_id: uuid.UUID, number: str) -> None:
        """Start the order's workflow; a retried request finds it already there."""
        await self._start(
            OrderWorkflow.run,
            OrderWorkflowInput(
                order_id=str(order_id), number=number, policy=self._settings.order_policy()
            ),
            workflow_id_for(str(order_id)),
            failing="order recorded, but its workflow could not start",
        )

    async def send_message(self, workflow_id: str, message: CustomerMessageInput) -> None:
        """Have a worker send a message no order's workflow sends (CustomerMessageWorkflow);
        a second request under the same id starts nothing."""
        await self._start(
            CustomerMessageWorkflow.run,
            message,
            workflow_id,
            failing="the message could not be queued",
        )

    async def status(
        self, order_id: uuid.UUID, *, deadline: timedelta = STATUS_DEADLINE
    ) -> OrderStatus:
        """The workflow's live `status`, within `deadline` whatever Temporal does (down, no
        worker polling, a frozen worker); else WorkflowUnanswered saying why (and logged)."""
        seconds = deadline.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                handle = await self._handle(order_id)
                return await handle.query(OrderWorkflow.status, rpc_timeout=deadline)
        except TimeoutError:
            reason = f"no worker answered within {seconds:g} s"
        except RPCError as exc:
            reason = (
                f"no worker answered within {seconds:g} s"
                if exc.status == RPCStatusCode.DEADLINE_EXCEEDED
                else f"Temporal: {exc.message}"
            )
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            reason = f"the workflow could not answer: {exc}"
        except TemporalUnavailable as exc:
            reason = str(exc)
        log.warning("live status unavailable", order_id=str(order_id), reason=reason)
        raise WorkflowUnanswered(reason)

    async def act(
        self,
        order_id: uuid.UUID,
        update: OrderUpdate[A],
        argument: A,
    ) -> ActionResult:
        """Run an update; its validator's refusal (or an order no longer running) is ActionRefused."""
        handle = await self._handle(order_id)
        try:
            result = await handle.execute_update(update, argument)
            # The SDK types an async update's result as its coroutine; the value is the result.
            return cast(ActionResult, result)
        except WorkflowUpdateFailedError as exc:
            raise ActionRefused(_validator_said(exc)) from exc
        except RPCError as exc:
            raise _not_running_or_unavailable(exc, ORDER_ENDED) from exc

    async def signal(
        self, order_id: uuid.UUID, signal: Callable[[OrderWorkflow, A], Any], argument: A
    ) -> None:
        """Deliver a provider event or a customer's answer; ActionRefused if the run has ended."""
        handle = await self._handle(order_id)
        try:
            await handle.signal(signal, argument)
        except RPCError as exc:
            raise _not_running_or_unavailable(exc, ORDER_ENDED) from exc

    # --- beside the order: customer returns and operators' refunds -------------------------

    async def _return(self, return_id: str) -> WorkflowHandle[ReturnWorkflow, ReturnResult]:
        client = await self.client()
        return client.get_workflow_handle_for(ReturnWorkflow.run, return_workflow_id_for(return_id))

    async def start_return(self, input: ReturnWorkflowInput) -> ReturnProgress:
        """Start the return (a retried request finds it) and answer with policy's assessment
        — accepted with its label, declined and why, or waiting for an operator's approval —
        in one call: the start carries the `assessed` update, answered once policy has spoken.
        Not answered within FIRST_ANSWER (a step failed, the workers are slow), the return's
        status as it stands."""
        client = await self.client()
        workflow_id = return_workflow_id_for(input.return_id)
        start = WithStartWorkflowOperation(
            ReturnWorkflow.run, input, **self._start_options(workflow_id)
        )
        try:
            async with asyncio.timeout(FIRST_ANSWER.total_seconds()):
                assessed = await client.execute_update_with_start_workflow(
                    # The SDK types an async update by its coroutine, not its result.
                    ReturnWorkflow.assessed,  # type: ignore[arg-type]
                    start_workflow_operation=start,
                )
                return cast(ReturnProgress, assessed)
        except TimeoutError:
            pass  # assessing takes longer: its status as it stands
        except WorkflowAlreadyStartedError:
            pass  # it ran to its end already: its status says how
        except WorkflowUpdateFailedError as exc:
            raise TemporalUnavailable(f"the return could not be assessed ({exc}); retry") from exc
        except RPCError as exc:
            raise TemporalUnavailable(f"the return could not start ({exc}); retry") from exc
        try:
            return await self.return_status(input.return_id)
        except WorkflowUnanswered as exc:
            raise TemporalUnavailable(
                f"the return did not answer in time ({exc}); ask for it again"
            ) from exc

    async def return_status(self, return_id: str) -> ReturnProgress:
        handle = await self._return(return_id)
        try:
            return await handle.query(ReturnWorkflow.status, rpc_timeout=STATUS_DEADLINE)
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError) as exc:
            raise WorkflowUnanswered(str(exc)) from exc

    async def act_on_return(
        self, return_id: str, update: ReturnUpdate[A], argument: A
    ) -> ReturnProgress:
        handle = await self._return(return_id)
        try:
            result = await handle.execute_update(update, argument)
            return cast(ReturnProgress, result)
        except WorkflowUpdateFailedError as exc:
            raise ActionRefused(_validator_said(exc)) from exc
        except RPCError as exc:
            raise _not_running_or_unavailable(exc, RETURN_ENDED) from exc

    async def signal_return(
        self, return_id: str, signal: Callable[[ReturnWorkflow, A], Any], argument: A
    ) -> None:
        handle = await self._return(return_id)
        try:
            await handle.signal(signal, argument)
        except RPCError as exc:
            raise _not_running_or_unavailable(exc, RETURN_ENDED) from exc

    async def refund(self, input: RefundWorkflowInput) -> RefundResult | None:
        """Run the refund (once per order and key: a retried request finds the first one's,
        and one that failed runs again); its result, or None while it is still trying after
        FIRST_ANSWER. The ledger's refusal is RefundRefused."""
        handle = await self._start(
            RefundWorkflow.run,
            input,
            refund_workflow_id_for(input.order_id, input.key),
            failing="the refund could not start",
            # Made before: its answer again; one that failed runs again.
            reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        try:
            async with asyncio.timeout(FIRST_ANSWER.total_seconds()):
                return await handle.result()
        except TimeoutError:
            return None
        except WorkflowFailureError as exc:
            raise _refused(exc) from exc


def _validator_said(exc: WorkflowUpdateFailedError) -> str:
    """The refusal as the validator worded it (without the error's type in front)."""
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


ORDER_ENDED = "the order is no longer in progress"
RETURN_ENDED = "the return is closed"


def _not_running_or_unavailable(exc: RPCError, ended: str) -> Exception:
    """Temporal's "workflow not found" (its run has ended) is OrderFinished saying `ended`;
    any other failure of the call, Temporal unavailable."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return OrderFinished(ended)
    return TemporalUnavailable(f"Temporal: {exc}")


def _refused(exc: WorkflowFailureError) -> Exception:
    """The ledger's refusal, found among the failure's causes; anything else may heal."""
    cause: BaseException | None = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.REFUND_REFUSED:
        return RefundRefused(f"refund refused: {cause.message}")
    return TemporalUnavailable(f"the refund failed ({cause or exc}); retry with the same key")
