"""OrderWorkflow: one durable run per order, from intake to the feedback request.

Deterministic code only: no I/O, no clock but `workflow.now()`, no personal data. `run`
reads like the process: each stage lives in a module of its own (`validation`, `stock`,
`payment`, `picking`, `delivery`, `feedback`); this file holds the order of the stages,
compensation, the messages from outside (signals, the operator's updates) and the
`status` query. The machinery beside them: `state.py` (what the workflow knows),
`timeline.py` (every step written and told), `waiting.py` (every wait, with the silence
guard), `steps.py` (typed activity calls), `rules.py` (pure tables), `timing.py`.

Orders in flight outlive deployments: a change to the commands this workflow emits goes
behind `workflow.patched(...)`; `tests/histories/` replays every stored path on each run.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.payments import PaymentActivities
    from activities.shipping import ShippingActivities
    from schema.contracts import (
        ActionResult,
        CancelOrder,
        CancelReason,
        CarrierEvent,
        ConfirmOrder,
        CustomerStatus,
        DeliveryMethod,
        FeedbackReceived,
        MarkDelayed,
        MessageKind,
        OrderRef,
        OrderResult,
        OrderStatus,
        OrderWorkflowInput,
        ParcelChoice,
        ParcelDecision,
        PaymentEvent,
        RefundInput,
        RefundMade,
        RejectOrder,
        ResolveStep,
        Stage,
        StepChoice,
        StockChoice,
        StockDecision,
        WaitingFor,
        WarehouseEvent,
    )
    from schema.vocabulary import Action, EventType

from workflows import delivery, feedback, payment, picking, rules, search, stock, validation
from workflows.state import OrderState
from workflows.waiting import OrderCancelled


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._order = OrderState(input)

    # --- the lifecycle ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderResult:
        order = self._order
        search.mark_started(input.number, Stage.INTAKE.value)
        try:
            await self._lifecycle()
        except OrderCancelled:
            await self._compensate()
        await order.timeline.flush()
        order.finished = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(
            order_id=input.order_id, stage=order.timeline.stage, status=order.timeline.status
        )

    async def _lifecycle(self) -> None:
        order = self._order
        await order.timeline.advance(
            Stage.INTAKE, CustomerStatus.RECEIVED, EventType.ORDER_RECEIVED
        )
        if not await validation.validate(order):
            return
        await validation.confirm(order)
        await stock.reserve(order)
        await payment.take(order)
        await picking.pick_and_pack(order)
        if order.delivery == DeliveryMethod.PICKUP:
            await delivery.hand_over_at_counter(order)
        else:
            await delivery.ship(order)
            await delivery.track(order)
        await feedback.ask(order)
        await delivery.payout_settled(order)  # cash on delivery a carrier pays out
        await order.timeline.advance(
            Stage.COMPLETED, CustomerStatus.DELIVERED, EventType.ORDER_COMPLETED
        )

    async def _compensate(self) -> None:
        """Undo in reverse order what was done; each step is idempotent, the customer is told why."""
        order = self._order
        cancel, steps, ref = order.cancel, order.steps, OrderRef(order.order_id)
        assert cancel is not None
        undone: list[str] = []
        # Each may be skipped by an operator when it fails for good (then done by hand).
        # After handover (a parcel that came back, or was lost) there is no booking left to
        # cancel and no reservation to release: the goods left, and came back on the shelf
        # or not. (Before that change nothing was compensated after handover: no stored
        # history reaches these conditions.)
        if order.shipment is not None and not order.handed_over:
            await steps.run_or_skip(ShippingActivities.cancel_shipment, ref)
            undone.append("shipment cancelled")
        payment.take_late_payment(order)  # paid while the cancellation was decided
        if order.paid is None and order.payment is not None:
            await steps.run_or_skip(PaymentActivities.cancel_payment_link, ref)
            payment.take_late_payment(order)  # paid while the link was being cancelled
        refund = order.left_to_refund()  # refunds made outside this workflow are counted
        if order.paid is not None and refund > 0:
            await steps.run_or_skip(
                PaymentActivities.refund_payment,
                RefundInput(order.order_id, order.paid.payment_id, refund, paid=order.paid.amount),
            )
            undone.append(f"refunded {refund}")
        if order.reserved and not order.handed_over:
            await steps.run_or_skip(InventoryActivities.release_stock, ref)
            undone.append("stock released")
        await order.timeline.advance(
            Stage.CANCELLED,
            CustomerStatus.CANCELLED,
            EventType.ORDER_CANCELLED,
            {"reason": cancel.reason.value, "note": cancel.note, "undone": ", ".join(undone)},
            actor=cancel.actor,
        )
        if order.timeline.telling:  # a notice sent just before: the cancellation comes last
            await order.timeline.flush()
            await workflow.wait_condition(lambda: order.timeline.telling == 0)
        if cancel.reason == CancelReason.REJECTED:
            await order.timeline.notify(MessageKind.REJECTED)
            return
        told = {"reason": cancel.reason.value}
        if refund > 0:
            told["refund"] = str(refund)
        await order.timeline.notify(MessageKind.CANCELLED, params=told)

    # --- messages from outside: provider events (signals) --------------------------------------

    @workflow.signal(name="payment_event")
    def payment_event(self, event: PaymentEvent) -> None:
        if self._order.inbox.first_time(event.event_id):
            self._order.inbox.payments.append(event)

    @workflow.signal(name="warehouse_event")
    def warehouse_event(self, event: WarehouseEvent) -> None:
        if self._order.inbox.first_time(event.event_id):
            self._order.inbox.warehouse.append(event)

    @workflow.signal(name="carrier_event")
    def carrier_event(self, event: CarrierEvent) -> None:
        if self._order.inbox.first_time(event.event_id):
            self._order.inbox.carrier.append(event)

    @workflow.signal(name="feedback")
    def feedback_received(self, answer: FeedbackReceived) -> None:
        if self._order.inbox.feedback is None:
            self._order.inbox.feedback = answer

    @workflow.signal(name="refund_made")
    def refund_made(self, refund: RefundMade) -> None:
        """A refund made outside this workflow (an operator's, a return's): compensation then
        refunds only what is left (the ledger refuses anything beyond in any case)."""
        if self._order.inbox.first_time(f"refund:{refund.key}"):
            self._order.refunded += refund.amount

    # --- messages from outside: people's decisions (updates, each with its validator) ----------

    @workflow.update(name="confirm")
    async def confirm(self, decision: ConfirmOrder) -> ActionResult:
        self._order.inbox.review = decision
        return self._action_result()

    @confirm.validator
    def _confirm_allowed(self, decision: ConfirmOrder) -> None:
        self._require(Action.CONFIRM)
        if decision.final_price is not None and decision.final_price <= 0:
            raise ValueError("final_price must be positive")

    @workflow.update(name="reject")
    async def reject(self, decision: RejectOrder) -> ActionResult:
        self._order.inbox.review = decision
        await workflow.wait_condition(lambda: self._order.finished)
        return self._action_result()

    @reject.validator
    def _reject_allowed(self, decision: RejectOrder) -> None:
        self._require(Action.REJECT)
        if not decision.reason.strip() and decision.note_id is None:
            raise ValueError("a rejection needs a reason")

    @workflow.update(name="decide_stock")
    async def decide_stock(self, decision: StockDecision) -> ActionResult:
        self._order.inbox.stock_decision = decision
        return self._action_result()

    @decide_stock.validator
    def _decide_stock_allowed(self, decision: StockDecision) -> None:
        self._require(Action.DECIDE_STOCK)
        if decision.choice == StockChoice.ALTERNATIVE and not decision.alternative_lines:
            raise ValueError("an alternative needs alternative_lines")
        after_picking = (
            self._order.waiting.waiting_for == WaitingFor.STOCK_DECISION
            and self._order.timeline.stage == Stage.PICKING
        )
        if after_picking and decision.choice not in (
            StockChoice.SHIP_AVAILABLE,
            StockChoice.CANCEL,
        ):
            raise ValueError("after failed picking the choice is ship_available or cancel")

    @workflow.update(name="mark_delayed")
    async def mark_delayed(self, delay: MarkDelayed) -> ActionResult:
        """Seed 002: a delay is told to the customer with its reason and the new date."""
        timeline = self._order.timeline
        timeline.expected_date = delay.new_date
        told = {"reason": delay.reason, "new_date": delay.new_date.isoformat()}
        await timeline.advance(
            timeline.stage, CustomerStatus.DELAYED, EventType.ORDER_DELAYED, told, actor=delay.actor
        )
        await timeline.notify(MessageKind.DELAYED, f"{timeline.steps}", told)
        return self._action_result()

    @mark_delayed.validator
    def _mark_delayed_allowed(self, delay: MarkDelayed) -> None:
        self._require(Action.MARK_DELAYED)
        if not delay.reason.strip():
            raise ValueError("a delay needs a reason")

    @workflow.update(name="resolve_step")
    async def resolve_step(self, resolution: ResolveStep) -> ActionResult:
        """An operator's decision about a step that failed for good (workflows/failures.py)."""
        self._order.inbox.step_resolution = resolution
        return self._action_result()

    @resolve_step.validator
    def _resolve_step_allowed(self, resolution: ResolveStep) -> None:
        self._require(Action.RESOLVE_STEP)
        failed = self._order.failed_step
        if resolution.choice == StepChoice.SKIP and failed is not None and not failed.skippable:
            raise ValueError(f"{failed.activity} cannot be skipped: retry it, or cancel the order")

    @workflow.update(name="decide_parcel")
    async def decide_parcel(self, decision: ParcelDecision) -> ActionResult:
        """A lost or damaged parcel: re-ship it, or close the order (refunded, or not when
        nothing is left to refund); a closing answers once the order is closed."""
        self._order.inbox.parcel_decision = decision
        if decision.choice != ParcelChoice.RESHIP:
            await workflow.wait_condition(lambda: self._order.finished)
        return self._action_result()

    @decide_parcel.validator
    def _decide_parcel_allowed(self, decision: ParcelDecision) -> None:
        self._require(Action.DECIDE_PARCEL)
        refusal = rules.parcel_choice_refusal(
            decision.choice, refundable=self._order.left_to_refund() > 0
        )
        if refusal is not None:
            raise ValueError(f"decide_parcel {decision.choice.value} is not allowed: {refusal}")

    @workflow.update(name="cancel")
    async def cancel(self, cancel: CancelOrder) -> ActionResult:
        self._order.cancel = cancel
        # Compensation runs in `run`; answer once the run is over (compensated, or it ended
        # anyway, e.g. an order that proved invalid while the cancellation was accepted).
        await workflow.wait_condition(lambda: self._order.finished)
        return self._action_result()

    @cancel.validator
    def _cancel_allowed(self, cancel: CancelOrder) -> None:
        self._require(Action.CANCEL)

    def _require(self, action: Action) -> None:
        refusal = rules.allowed_actions(self._order.facts())[action]
        if refusal is not None:
            raise ValueError(f"{action} is not allowed now: {refusal}")

    def _action_result(self) -> ActionResult:
        timeline = self._order.timeline
        return ActionResult(accepted=True, stage=timeline.stage, status=timeline.status)

    # --- the query -----------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> OrderStatus:
        order = self._order
        timeline, shipment, progress = order.timeline, order.shipment, order.progress()
        return OrderStatus(
            order_id=order.order_id,
            number=order.number,
            stage=timeline.stage,
            status=timeline.status,
            expected_date=timeline.expected_date,
            timeline=list(timeline.entries),  # the latest steps; Postgres has them all
            payment_status=progress.payment_status,
            fulfilment_status=progress.fulfilment_status,
            tracking_number=shipment.tracking_number if shipment else None,
            tracking_url=shipment.tracking_url if shipment else None,
            waiting_for=progress.waiting_for,
            next_deadline=order.waiting.deadline,
            sla_breaches=list(order.waiting.breaches),
            allowed_actions=progress.allowed_actions,
        )
