"""ReturnWorkflow: one customer return, from the request to the refund or the exchange.

Why a workflow per return, started by the API, and not the order's workflow kept open for
the return window: the order's workflow ends after its feedback stage (7-10 days after
delivery), and every order already finished could then never take a return — a closed
workflow does not reopen, and changing every order to stay open 14 days longer (behind a
patch) would keep all of them running for the few that come back, each with a longer
history. A return of its own runs whether its order's workflow still runs or ended long ago;
several returns of one order run side by side; its history is small (about 100 events:
a handful of steps, the parcel's scans) and bounded, so it needs no continue-as-new. It
writes each step to the order's timeline (`return.*` events, beside the order: the order's
stage stays its workflow's) and tells the order's workflow what it refunded while that runs.

The steps, each told to the customer: policy assesses the request on the workflow's clock
(14 days from delivery; a non-returnable SKU or part of a set waits for an operator's
approval); an approved return books a return parcel with a Code128 label; the parcel is
tracked to the warehouse; the warehouse inspects it; accepted items go back on the shelf
(unless returned as defective) and are refunded — or, for an exchange whose items were all
accepted, a replacement order is placed (a real order, its own `OrderWorkflow`, a child that
outlives nothing: when it ends cancelled or shipped for less, the difference is refunded).

A return is watched like an order, with the order's machinery: its waits are `Waiting.until`
with the silence guard beside them (an interim notice when the customer heard nothing for the
policy's period), a failed step or a late inspection is settled by `failures.settle` /
`failures.overdue` (an incident, the managers alerted, the return flagged in the operator
queue until a person decides). Its `ReturnTimeline` writes all of it beside the order. Returns
started before this (no `return-on-order-machinery` marker) keep their own simpler waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from activities.inventory import InventoryActivities
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from activities.returns import ReturnActivities
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        CarrierEvent,
        ExchangeOrder,
        ExchangeOrderInput,
        IncidentCause,
        IncidentInput,
        InspectedLine,
        MessageKind,
        NotifyInput,
        OrderRef,
        OrderWorkflowInput,
        PaymentMethod,
        RefundInput,
        ResolveStep,
        RestockInput,
        ReturnDecision,
        ReturnDecline,
        ReturnInspection,
        ReturnLine,
        ReturnProgress,
        ReturnReason,
        ReturnRef,
        ReturnResolution,
        ReturnResult,
        ReturnStatus,
        ReturnStepInput,
        ReturnWorkflowInput,
        Shipment,
        Stage,
        StepChoice,
        StockLine,
        TrackingStatus,
        WaitingFor,
        workflow_id_for,
    )
    from schema.vocabulary import ErrorType, EventType, PatchId, ReturnAction

from workflows import failures, rules
from workflows.failures import PROVIDER_ERRORS
from workflows.order import OrderWorkflow
from workflows.refunds import record_beside_the_order, refund_beside_the_order
from workflows.steps import StepFailure, Steps
from workflows.timeline import SYSTEM
from workflows.waiting import Waiting

# Incidents of a return are filed under the stage after the order's own.
RETURN_STAGE = Stage.COMPLETED


class ReturnTimeline:
    """A return's `Writer` (workflows/waiting.py): its steps go on the order's timeline (beside
    the order's own, keyed by the return's number), its messages are keyed by the return's
    number, and its flag in the operator queue is its row's `needs_action`."""

    stage = RETURN_STAGE

    def __init__(
        self, input: ReturnWorkflowInput, steps: Steps, row: Callable[[], ReturnStepInput]
    ) -> None:
        self._in = input
        self._steps = steps
        self._row = row
        self.written = 0  # steps written so far: each one's key
        self.needs_action = False
        # The silence guard's clock (started at the request, on the new path only).
        self.quiet_since: datetime | None = None

    async def record(
        self, event_type: EventType, detail: dict[str, str] | None = None, actor: str = SYSTEM
    ) -> None:
        self.written += 1
        key = f"{self._in.number}:{self.written:02d}:{event_type}"
        await record_beside_the_order(
            self._steps,
            self._in.order_id,
            key,
            event_type,
            {"return": self._in.number, "return_id": self._in.return_id, **(detail or {})},
            actor,
        )

    async def notify(
        self, kind: MessageKind, key: str = "", params: dict[str, str] | None = None
    ) -> None:
        await self._steps.run_or_skip(
            NotificationActivities.notify,
            NotifyInput(
                self._in.order_id,
                kind,
                f"{kind.value}:{self._in.number}{key and ':' + key}",
                {"return_number": self._in.number, **(params or {})},
            ),
        )
        if self.quiet_since is not None and not kind.value.startswith("manager_"):
            self.quiet_since = workflow.now()

    async def progressed(self) -> None:
        """Nothing to write: the return's row keeps no wait (its status query says it)."""

    async def flag_needs_action(self, needed: bool) -> None:
        if needed != self.needs_action:
            self.needs_action = needed
            await self.write_row()

    def flag_sla_breached(self) -> None:
        """The return's row has no such flag: the breach is its `sla.silence_breached` step
        on the order's timeline."""

    async def write_row(self) -> None:
        """The return's row follows (best effort: the next step writes it again)."""
        with contextlib.suppress(ActivityError):
            await self._steps.run(ReturnActivities.record_return_step, self._row())


@workflow.defn(name="ReturnWorkflow")
class ReturnWorkflow:
    @workflow.init
    def __init__(self, input: ReturnWorkflowInput) -> None:
        self._in = input
        self.steps = Steps(input.policy)
        self.steps.on_failure = self._on_failure
        self.timeline = ReturnTimeline(input, self.steps, self._row)
        self.waiting = Waiting(input.returns, self.timeline, lambda: False)  # never cancelled
        # Returns started before the order's machinery served them keep their own waits.
        self._machinery = False
        self._status = ReturnStatus.REQUESTED
        self._waiting_for: str | None = None  # the old path's wait
        self._inspected_lines: list[InspectedLine] | None = None
        self._decline: ReturnDecline | None = None
        self._decision: ReturnDecision | None = None
        self._carrier: list[CarrierEvent] = []
        self._inspection: ReturnInspection | None = None
        self._seen: set[str] = set()
        self._shipment: Shipment | None = None
        self._refunded = Decimal(0)
        self._exchange: ExchangeOrder | None = None
        # Failed steps (`failures.Settling`): so far, the one a person decides on, the decision.
        self.failed_steps = 0
        self.failed_step: StepFailure | None = None
        self.step_resolution: ResolveStep | None = None

    # --- the return ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReturnWorkflowInput) -> ReturnResult:
        self._machinery = workflow.patched(PatchId.RETURN_ON_ORDER_MACHINERY)
        if self._machinery:
            self.timeline.quiet_since = workflow.now()
        assessment = rules.assess_return(
            input.lines, delivered_at=input.delivered_at, now=workflow.now(), policy=input.returns
        )
        if assessment.decline is not None:
            # Told at once by the API that asked; nothing was started.
            assert assessment.window_closes is not None
            await self._record(
                EventType.RETURN_REFUSED,
                {
                    "decline": assessment.decline.value,
                    "window_closed": str(assessment.window_closes),
                },
                input.actor,
            )
            return await self._declined(assessment.decline, tell=False)
        await self._record(
            EventType.RETURN_REQUESTED,
            {
                "reason": input.reason.value,
                "resolution": input.resolution.value,
                "lines": _lines(input.lines),
            },
            input.actor,
        )
        if assessment.needs_approval:
            if not await self._approved(list(assessment.needs_approval)):
                return await self._declined(ReturnDecline.NOT_APPROVED)
        else:
            await self._record(EventType.RETURN_APPROVED, {"by": "policy"})
        await self._send_label()
        if not await self._parcel_arrived():
            return await self._declined(ReturnDecline.NOT_SENT)
        accepted = await self._inspected()
        value = sum(
            (line.unit_price * accepted.get(line.sku, 0) for line in input.lines), Decimal(0)
        )
        whole = all(accepted.get(line.sku, 0) >= line.quantity for line in input.lines)
        if input.resolution == ReturnResolution.EXCHANGE and whole and input.replacement:
            await self._exchanged(value)
        else:
            await self._refund(value)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _approved(self, reasons: list[str]) -> bool:
        """Policy wants a person: the customer hears it is being looked at; an operator
        approves or not (the return shows in the console's queue meanwhile)."""
        await self._step(ReturnStatus.AWAITING_APPROVAL, needs_action=True)
        await self._record(EventType.RETURN_AWAITING_APPROVAL, {"why": "; ".join(reasons)})
        await self._tell(MessageKind.RETURN_REQUESTED)
        await self._wait(lambda: self._decision is not None, WaitingFor.RETURN_APPROVAL)
        decision = self._decision
        assert decision is not None
        if not decision.approve:
            await self._record(EventType.RETURN_REJECTED, {}, decision.actor)
            return False
        await self._record(EventType.RETURN_APPROVED, {"by": decision.actor}, decision.actor)
        return True

    async def _send_label(self) -> None:
        ref = ReturnRef(self._in.return_id)
        shipment = await self.steps.run(ShippingActivities.book_return_shipment, ref)
        self._shipment = shipment
        await self.steps.run(DocumentActivities.generate_return_label, ref)
        await self._step(ReturnStatus.APPROVED)
        await self._record(
            EventType.RETURN_LABEL_CREATED,
            {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number},
        )
        await self._tell(
            MessageKind.RETURN_APPROVED,
            {"return_id": self._in.return_id, "tracking_url": shipment.tracking_url},
        )

    async def _parcel_arrived(self) -> bool:
        """The parcel's way to the warehouse; False when it never set off in the policy's
        time (once with the carrier, it is waited for as long as it takes)."""
        deadline = workflow.now() + self._in.returns.shipping_wait
        while True:
            moving = self._status == ReturnStatus.IN_TRANSIT
            left = None if moving else deadline - workflow.now()
            if left is not None and left <= timedelta(0):
                return False
            # The customer sends it when they like; with the carrier, it is watched.
            arrived = lambda: bool(self._carrier)  # noqa: E731
            if not await self._wait(arrived, WaitingFor.RETURN_PARCEL, left, guard=moving):
                return False
            while self._carrier:
                event = self._carrier.pop(0)
                if event.status == TrackingStatus.DELIVERED:
                    self._carrier.clear()
                    await self._step(ReturnStatus.RECEIVED)
                    await self._record(EventType.RETURN_RECEIVED, {}, "carrier")
                    await self._tell(MessageKind.RETURN_RECEIVED)
                    return True
                if self._status != ReturnStatus.IN_TRANSIT:
                    await self._step(ReturnStatus.IN_TRANSIT)
                    await self._record(
                        EventType.RETURN_IN_TRANSIT,
                        {"tracking_status": event.status.value},
                        "carrier",
                    )

    async def _inspected(self) -> dict[str, int]:
        """The warehouse's inspection: what it accepts per SKU (never more than was sent);
        not inspected in the policy's time, an incident flags it and the wait goes on (an
        operator's retry waits another such time before it flags it again)."""
        ready = lambda: self._inspection is not None  # noqa: E731
        wait = self._in.returns.inspection_wait
        late = f"return {self._in.number} received but not inspected after {wait.days} days"
        if not self._machinery:
            if not await self._wait(ready, WaitingFor.RETURN_INSPECTION, wait):
                await self._incident(IncidentCause.HUMAN, late, "inspection-late")
                await self._wait(ready, WaitingFor.RETURN_INSPECTION)
        else:
            while not await self._wait(ready, WaitingFor.RETURN_INSPECTION, wait):
                overdue = StepFailure("inspection", ErrorType.NO_ANSWER, late, skippable=False)
                if await failures.overdue(self, overdue, ready) is None:
                    break  # inspected while a person looked at it
        inspection = self._inspection
        assert inspection is not None
        sent = {line.sku: line.quantity for line in self._in.lines}
        found = {line.sku: line for line in inspection.lines if line.sku in sent}
        inspected = [
            InspectedLine(
                sku,
                found[sku].received if sku in found else 0,
                min(found[sku].accepted, quantity) if sku in found else 0,
                found[sku].finding if sku in found else None,
            )
            for sku, quantity in sent.items()
        ]
        accepted = {line.sku: line.accepted for line in inspected}
        self._inspected_lines = inspected
        await self._step(ReturnStatus.RECEIVED)
        self._inspected_lines = None
        await self._record(
            EventType.RETURN_INSPECTED,
            {
                "accepted": ", ".join(f"{sku} ×{n}" for sku, n in accepted.items() if n) or "none",
                "findings": ", ".join(
                    f"{line.sku}: {line.finding.value}" for line in inspected if line.finding
                ),
            },
            "warehouse",
        )
        back = [StockLine(sku, n) for sku, n in accepted.items() if n > 0]
        if back and self._in.reason != ReturnReason.DEFECTIVE:  # a defect is not resold
            await self.steps.run_or_skip(
                InventoryActivities.restock,
                RestockInput(self._in.order_id, f"restock:return:{self._in.return_id}", back),
            )
            await self._record(EventType.RETURN_RESTOCKED, {"lines": _lines(back)})
        return accepted

    async def _refund(self, value: Decimal) -> None:
        """The refund follows the inspection: everything accepted, part of it, or nothing
        (the findings say why). Paid in cash on delivery: a manager refunds it by hand."""
        by_hand = value > 0 and not self._can_refund()
        if value > 0 and not by_hand:
            await self._refund_step(value, f"return:{self._in.return_id}")
        if by_hand:
            await self._incident(
                IncidentCause.HUMAN,
                f"return {self._in.number}: refund {value} by hand (not paid through the provider)",
                "refund-by-hand",
            )
        findings = sorted({line.finding.value for line in self._inspection_lines() if line.finding})
        await self._step(ReturnStatus.REFUNDED)
        await self._record(
            EventType.RETURN_REFUNDED,
            {
                "amount": str(value),
                "by_hand": "yes" if by_hand else "",
                "findings": ", ".join(findings),
            },
        )
        await self._tell(
            MessageKind.RETURN_REFUNDED,
            {
                "refund": str(value),
                "findings": ",".join(findings),
                "by_hand": "yes" if by_hand else "",
            },
        )

    async def _exchanged(self, value: Decimal) -> None:
        """A new order for the replacement lines, paid for by the goods returned (what they
        are worth beyond it is refunded); when it ends cancelled, or shipped for less, the
        rest is refunded too."""
        replacement = self._in.replacement or []
        covered = sum((line.unit_price * line.quantity for line in replacement), Decimal(0))
        exchange = await self.steps.run(
            ReturnActivities.create_exchange_order,
            ExchangeOrderInput(self._in.return_id, replacement),
        )
        self._exchange = exchange
        child = await workflow.start_child_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(exchange.order_id, exchange.number, self._in.policy),
            id=workflow_id_for(exchange.order_id),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        if value > covered and self._can_refund():
            await self._refund_step(value - covered, f"return:{self._in.return_id}:difference")
        await self._step(ReturnStatus.EXCHANGED)
        await self._record(
            EventType.RETURN_EXCHANGED,
            {
                "order": exchange.number,
                "order_id": exchange.order_id,
                "refunded": str(self._refunded),
            },
        )
        await self._tell(MessageKind.RETURN_EXCHANGED, {"exchange_number": exchange.number})
        with contextlib.suppress(ChildWorkflowError):  # terminated by hand: read it all the same
            await child
        outcome = await self.steps.run(
            ReturnActivities.exchange_outcome, OrderRef(exchange.order_id)
        )
        owed = covered if outcome.cancelled else max(covered - outcome.total, Decimal(0))
        if owed > 0 and self._can_refund():
            await self._refund_step(owed, f"return:{self._in.return_id}:exchange")
            await self._record(EventType.RETURN_EXCHANGE_REFUNDED, {"amount": str(owed)})
            await self._tell(
                MessageKind.RETURN_REFUNDED,
                {"refund": str(owed), "findings": "", "by_hand": ""},
                "exchange",
            )

    # --- messages from outside ----------------------------------------------------------------

    @workflow.signal(name="carrier_event")
    def carrier_event(self, event: CarrierEvent) -> None:
        shipment = self._shipment
        ours = shipment is None or event.tracking_number == shipment.tracking_number
        if event.event_id not in self._seen and ours:
            self._seen.add(event.event_id)
            self._carrier.append(event)

    @workflow.signal(name="inspected")
    def inspected(self, inspection: ReturnInspection) -> None:
        if self._inspection is None:
            self._inspection = inspection

    @workflow.update(name="decide")
    async def decide(self, decision: ReturnDecision) -> ReturnProgress:
        self._decision = decision
        return self.status()

    @decide.validator
    def _decide_allowed(self, decision: ReturnDecision) -> None:
        refusal = self._allowed()[ReturnAction.DECIDE]
        if refusal is not None:
            raise ValueError(f"decide is not allowed now: {refusal}")

    @workflow.update(name="assessed")
    async def assessed(self) -> ReturnProgress:
        """The return once policy has spoken — approved (its label booked), declined and why,
        or waiting for an operator's approval — or once a step waits for an operator: what
        the API that starts the return answers (it sends this update with the start). An
        update records no command, so returns started before it replay as they ran."""
        await workflow.wait_condition(
            lambda: self._status != ReturnStatus.REQUESTED or self._waiting_now() is not None
        )
        return self.status()

    @workflow.update(name="resolve_step")
    async def resolve_step(self, resolution: ResolveStep) -> ReturnProgress:
        self.step_resolution = resolution
        return self.status()

    @resolve_step.validator
    def _resolve_allowed(self, resolution: ResolveStep) -> None:
        refusal = self._allowed()[ReturnAction.RESOLVE_STEP]
        if refusal is not None:
            raise ValueError(f"resolve_step is not allowed now: {refusal}")
        failed = self.failed_step
        if resolution.choice == StepChoice.SKIP and failed is not None and not failed.skippable:
            raise ValueError(f"{failed.activity} cannot be skipped: retry it")

    @workflow.query(name="status")
    def status(self) -> ReturnProgress:
        return ReturnProgress(
            return_id=self._in.return_id,
            number=self._in.number,
            status=self._status,
            waiting_for=self._waiting_now(),
            decline=self._decline,
            tracking_number=self._shipment.tracking_number if self._shipment else None,
            refunded=self._refunded,
            exchange_order_id=self._exchange.order_id if self._exchange else None,
            allowed_actions=[name for name, why in self._allowed().items() if why is None],
        )

    def _allowed(self) -> dict[ReturnAction, str | None]:
        return rules.allowed_return_actions(
            rules.ReturnSituation(
                awaiting_approval=self._status == ReturnStatus.AWAITING_APPROVAL,
                approval_decided=self._decision is not None,
                step_failed=self._waiting_now() == WaitingFor.INCIDENT_RESOLUTION,
                step_resolved=self.step_resolution is not None,
            )
        )

    # --- the machinery ------------------------------------------------------------------------

    def _result(self) -> ReturnResult:
        return ReturnResult(
            self._in.return_id,
            self._status,
            self._decline,
            self._refunded,
            self._exchange.order_id if self._exchange else None,
        )

    def _can_refund(self) -> bool:
        return self._in.payment_method == PaymentMethod.PREPAID and self._in.payment_id is not None

    def _inspection_lines(self) -> list[InspectedLine]:
        return self._inspection.lines if self._inspection is not None else []

    async def _refund_step(self, amount: Decimal, step: str) -> None:
        assert self._in.payment_id is not None
        await refund_beside_the_order(
            self.steps,
            RefundInput(self._in.order_id, self._in.payment_id, amount, step, self._in.paid),
        )
        self._refunded += amount

    async def _declined(self, decline: ReturnDecline, *, tell: bool = True) -> ReturnResult:
        self._decline = decline
        await self._step(ReturnStatus.DECLINED)
        if decline != ReturnDecline.WINDOW_CLOSED:
            await self._record(EventType.RETURN_DECLINED, {"decline": decline.value})
        if tell:
            await self._tell(MessageKind.RETURN_DECLINED, {"decline": decline.value})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _wait(
        self,
        ready: Callable[[], bool],
        what: WaitingFor,
        timeout: timedelta | None = None,
        *,
        guard: bool = True,
    ) -> bool:
        """Wait on a durable timer until `ready` (True) or `timeout` (False): the order's
        `Waiting`, the silence guard beside it (unless not `guard`)."""
        if self._machinery:
            return await self.waiting.until(ready, what, timeout, guard=guard)
        self._waiting_for = what.value
        try:
            await workflow.wait_condition(ready, timeout=timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting_for = None

    def _waiting_now(self) -> str | None:
        waiting_for = self.waiting.waiting_for
        return waiting_for.value if waiting_for is not None else self._waiting_for

    async def _step(self, status: ReturnStatus, *, needs_action: bool = False) -> None:
        """The return moves on: its row follows."""
        self._status = status
        self.timeline.needs_action = needs_action
        if self.timeline.quiet_since is not None:
            self.timeline.quiet_since = workflow.now()
        await self.timeline.write_row()

    def _row(self) -> ReturnStepInput:
        return ReturnStepInput(
            self._in.return_id,
            self._status,
            decline=self._decline,
            refunded=self._refunded or None,
            exchange_order_id=self._exchange.order_id if self._exchange else None,
            needs_action=self.timeline.needs_action,
            inspected=self._inspected_lines,
        )

    async def _record(
        self, event_type: EventType, detail: dict[str, str], actor: str = SYSTEM
    ) -> None:
        await self.timeline.record(event_type, detail, actor)

    async def _tell(
        self, kind: MessageKind, params: dict[str, str] | None = None, key: str = ""
    ) -> None:
        await self.timeline.notify(kind, key, params)

    async def _incident(self, cause: IncidentCause, summary: str, key: str) -> None:
        """An incident for a manager that waits for nobody (a refund to make by hand)."""
        key = self.incident_key(key)
        with contextlib.suppress(ActivityError):
            await self.steps.run(
                OrderActivities.record_incident,
                IncidentInput(self._in.order_id, key, RETURN_STAGE, cause, summary),
            )
        with contextlib.suppress(ActivityError):
            await self.steps.run(
                NotificationActivities.notify,
                NotifyInput(
                    self._in.order_id,
                    MessageKind.MANAGER_INCIDENT,
                    f"{MessageKind.MANAGER_INCIDENT.value}:{key}",
                    {"summary": summary, "cause": cause.value},
                ),
            )
        with contextlib.suppress(ActivityError):
            await self._record(
                EventType.INCIDENT_OPENED, {"cause": cause.value, "summary": summary}
            )

    # What failures.settle asks of a return (`failures.Settling`).

    @property
    def order_id(self) -> str:
        return self._in.order_id

    @property
    def compensating(self) -> bool:
        return False  # a return has nothing to undo

    def incident_key(self, step: str) -> str:
        return f"return-{self._in.number}-{step}"  # among its order's incidents

    async def _on_failure(self, failure: StepFailure) -> StepChoice:
        if self._machinery:
            return await failures.settle(self, failure)
        return await self._settle_before_machinery(failure)

    async def _settle_before_machinery(self, failure: StepFailure) -> StepChoice:
        """A step failed for good (returns started before `failures.settle` served them):
        an incident for a manager, the return flagged in the console, and an operator decides
        (retry, or skip where the step allows it)."""
        self.failed_steps += 1
        cause = (
            IncidentCause.EXTERNAL
            if failure.error_type in PROVIDER_ERRORS
            else IncidentCause.SYSTEM
        )
        summary = f"{failure.activity} failed for good ({failure.error_type}): {failure.message}"
        key = f"step-{self.failed_steps}-{failure.activity}"
        await self._incident(cause, summary, key)
        self.failed_step, self.step_resolution = failure, None
        with contextlib.suppress(ActivityError):
            await self._mark_needs_action(True)
        await self._wait(lambda: self.step_resolution is not None, WaitingFor.INCIDENT_RESOLUTION)
        resolution = self.step_resolution
        assert resolution is not None
        self.failed_step = None
        with contextlib.suppress(ActivityError):
            await self._mark_needs_action(False)
        with contextlib.suppress(ActivityError):
            await self._record(
                EventType.RETURN_STEP_RESOLVED,
                {"activity": failure.activity, "choice": resolution.choice.value},
                resolution.actor,
            )
        return resolution.choice

    async def _mark_needs_action(self, needed: bool) -> None:
        await self.steps.run(
            ReturnActivities.record_return_step,
            ReturnStepInput(self._in.return_id, self._status, needs_action=needed),
        )


def _lines(lines: Sequence[ReturnLine | StockLine]) -> str:
    return ", ".join(f"{line.sku} ×{line.quantity}" for line in lines)
