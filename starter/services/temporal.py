"""The orders' workflows as every room reaches them: typed calls through `OrderWorkflow`'s
methods, the workflow id from `workflow_id_for`, and Temporal's failures as named errors.

The client connects lazily: the API starts, and says so in /healthz, while Temporal is down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar, cast

import structlog
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from runtime import connect_temporal
from schema.contracts import (
    ActionResult,
    CustomerMessageInput,
    OrderResult,
    OrderStatus,
    OrderWorkflowInput,
    workflow_id_for,
)
from settings import Settings
from starter.services.errors import (
    ActionRefused,
    OrderFinished,
    TemporalUnavailable,
    WorkflowUnanswered,
)
from workflows.messages import CustomerMessageWorkflow
from workflows.order import OrderWorkflow

log = structlog.get_logger(__name__)
A = TypeVar("A")

# An operator's action: an update of OrderWorkflow taking one argument, answering ActionResult.
OrderUpdate = UpdateMethodMultiParam[[OrderWorkflow, A], Coroutine[Any, Any, ActionResult]]

# How long a reader waits for the live `status` before answering from the read model.
STATUS_DEADLINE = timedelta(seconds=2)


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

    async def start(self, *, order_id: uuid.UUID, number: str) -> None:
        """Start the order's workflow; a retried request finds it already there."""
        client = await self.client()
        try:
            await client.start_workflow(
                OrderWorkflow.run,
                OrderWorkflowInput(
                    order_id=str(order_id), number=number, policy=self._settings.order_policy()
                ),
                id=workflow_id_for(str(order_id)),
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            pass  # it ran to its end already
        except RPCError as exc:
            raise TemporalUnavailable(
                f"order recorded, but its workflow could not start ({exc}); retry the request"
            ) from exc

    async def send_message(self, workflow_id: str, message: CustomerMessageInput) -> None:
        """Have a worker send a message no order's workflow sends (CustomerMessageWorkflow);
        a second request under the same id starts nothing."""
        client = await self.client()
        try:
            await client.start_workflow(
                CustomerMessageWorkflow.run,
                message,
                id=workflow_id,
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            pass  # sent already
        except RPCError as exc:
            raise TemporalUnavailable(f"the message could not be queued ({exc}); retry") from exc

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
            raise ActionRefused(str(exc.cause or exc)) from exc
        except RPCError as exc:
            raise _not_running_or_unavailable(exc) from exc

    async def signal(
        self, order_id: uuid.UUID, signal: Callable[[OrderWorkflow, A], Any], argument: A
    ) -> None:
        """Deliver a provider event or a customer's answer; ActionRefused if the run has ended."""
        handle = await self._handle(order_id)
        try:
            await handle.signal(signal, argument)
        except RPCError as exc:
            raise _not_running_or_unavailable(exc) from exc


def _not_running_or_unavailable(exc: RPCError) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return OrderFinished("the order is no longer in progress")
    return TemporalUnavailable(f"Temporal: {exc}")
