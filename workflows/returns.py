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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import timedelta
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
        workflow_id_for,
    )
    from schema.vocabulary import EventType, ReturnAction

from workflows import rules
from workflows.failures import PROVIDER_ERRORS
from workflows.order import OrderWorkflow
from workflows.refunds import record_beside_the_order, refund_beside_the_order
from workflows.steps import StepFailure, Steps

# Incidents of a return are filed under the stage after the order's own.
RETURN_STAGE = Stage.COMPLETED


@workflow.defn(name="ReturnWorkflow")
class ReturnWorkflow:
    @workflow.init
    def __init__(self, input: ReturnWorkflowInput) -> None:
        self._in = input
        self._steps = Steps(input.policy)
        self._steps.on_failure = self._settle
        self._status = ReturnStatus.REQUESTED
        self._waiting_for: str | None = None
        self._decline: ReturnDecline | None = None
        self._decision: ReturnDecision | None = None
        self._carrier: list[CarrierEvent] = []
        self._inspection: ReturnInspection | None = None
        self._seen: set[str] = set()
        self._shipment: Shipment | None = None
        self._refunded = Decimal(0)
        self._exchange: ExchangeOrder | None = None
        self._steps_written = 0
        self._failures = 0
        self._failure: StepFailure | None = None
        self._resolution: ResolveStep | None = None

    # --- the return ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReturnWorkflowInput) -> ReturnResult:
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
        await self._wait(lambda: self._decision is not None, "approval")
        decision = self._decision
        assert decision is not None
        if not decision.approve:
            await self._record(EventType.RETURN_REJECTED, {}, decision.actor)
            return False
        await self._record(EventType.RETURN_APPROVED, {"by": decision.actor}, decision.actor)
        return True

    async def _send_label(self) -> None:
        ref = ReturnRef(self._in.return_id)
        shipment = await self._steps.run(ShippingActivities.book_return_shipment, ref)
        self._shipment = shipment
        await self._steps.run(DocumentActivities.generate_return_label, ref)
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
            if not await self._wait(lambda: bool(self._carrier), "parcel", left):
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
        not inspected in the policy's time, an incident flags it and the wait goes on."""
        ready = lambda: self._inspection is not None  # noqa: E731
        if not await self._wait(ready, "inspection", self._in.returns.inspection_wait):
            await self._incident(
                IncidentCause.HUMAN,
                f"return {self._in.number} received but not inspected after "
                f"{self._in.returns.inspection_wait.days} days",
                "inspection-late",
            )
            await self._wait(ready, "inspection")
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
        await self._step(ReturnStatus.RECEIVED, inspected=inspected)
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
            await self._steps.run_or_skip(
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
        exchange = await self._steps.run(
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
        outcome = await self._steps.run(
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
            lambda: self._status != ReturnStatus.REQUESTED or self._waiting_for is not None
        )
        return self.status()

    @workflow.update(name="resolve_step")
    async def resolve_step(self, resolution: ResolveStep) -> ReturnProgress:
        self._resolution = resolution
        return self.status()

    @resolve_step.validator
    def _resolve_allowed(self, resolution: ResolveStep) -> None:
        refusal = self._allowed()[ReturnAction.RESOLVE_STEP]
        if refusal is not None:
            raise ValueError(f"resolve_step is not allowed now: {refusal}")
        failed = self._failure
        if resolution.choice == StepChoice.SKIP and failed is not None and not failed.skippable:
            raise ValueError(f"{failed.activity} cannot be skipped: retry it")

    @workflow.query(name="status")
    def status(self) -> ReturnProgress:
        return ReturnProgress(
            return_id=self._in.return_id,
            number=self._in.number,
            status=self._status,
            waiting_for=self._waiting_for,
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
                step_failed=self._waiting_for == "incident_resolution",
                step_resolved=self._resolution is not None,
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
            self._steps,
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
        self, ready: Callable[[], bool], what: str, timeout: timedelta | None = None
    ) -> bool:
        """Wait on a durable timer until `ready` (True) or `timeout` (False)."""
        self._waiting_for = what
        try:
            await workflow.wait_condition(ready, timeout=timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting_for = None

    async def _step(
        self,
        status: ReturnStatus,
        *,
        needs_action: bool = False,
        inspected: list[InspectedLine] | None = None,
    ) -> None:
        """The return's row follows (best effort: the next step writes it again)."""
        self._status = status
        with contextlib.suppress(ActivityError):
            await self._steps.run(
                ReturnActivities.record_return_step,
                ReturnStepInput(
                    self._in.return_id,
                    status,
                    decline=self._decline,
                    refunded=self._refunded or None,
                    exchange_order_id=self._exchange.order_id if self._exchange else None,
                    needs_action=needs_action,
                    inspected=inspected,
                ),
            )

    async def _record(
        self, event_type: EventType, detail: dict[str, str], actor: str = "system"
    ) -> None:
        self._steps_written += 1
        key = f"{self._in.number}:{self._steps_written:02d}:{event_type}"
        await record_beside_the_order(
            self._steps,
            self._in.order_id,
            key,
            event_type,
            {"return": self._in.number, "return_id": self._in.return_id, **detail},
            actor,
        )

    async def _tell(
        self, kind: MessageKind, params: dict[str, str] | None = None, key: str = ""
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

    async def _incident(self, cause: IncidentCause, summary: str, key: str) -> None:
        key = f"return-{self._in.number}-{key}"
        with contextlib.suppress(ActivityError):
            await self._steps.run(
                OrderActivities.record_incident,
                IncidentInput(self._in.order_id, key, RETURN_STAGE, cause, summary),
            )
        with contextlib.suppress(ActivityError):
            await self._steps.run(
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

    async def _settle(self, failure: StepFailure) -> StepChoice:
        """A step failed for good: an incident for a manager, the return flagged in the
        console, and an operator decides (retry, or skip where the step allows it)."""
        self._failures += 1
        cause = (
            IncidentCause.EXTERNAL
            if failure.error_type in PROVIDER_ERRORS
            else IncidentCause.SYSTEM
        )
        summary = f"{failure.activity} failed for good ({failure.error_type}): {failure.message}"
        key = f"step-{self._failures}-{failure.activity}"
        await self._incident(cause, summary, key)
        self._failure, self._resolution = failure, None
        with contextlib.suppress(ActivityError):
            await self._mark_needs_action(True)
        await self._wait(lambda: self._resolution is not None, "incident_resolution")
        resolution = self._resolution
        assert resolution is not None
        self._failure = None
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
        await self._steps.run(
            ReturnActivities.record_return_step,
            ReturnStepInput(self._in.return_id, self._status, needs_action=needed),
        )


def _lines(lines: Sequence[ReturnLine | StockLine]) -> str:
    return ", ".join(f"{line.sku} ×{line.quantity}" for line in lines)
