"""OrderWorkflow: one durable run per order, from intake to the feedback request.

Deterministic code only: no I/O, no clock but `workflow.now()`, no personal data.
Every side effect is an activity; every step is written to the timeline (Postgres,
by an activity) and kept in memory for the `status` query. Every wait goes through
`_wait`, which runs the silence guard beside it and wakes on cancellation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from schema.contracts import (
        ActionResult,
        ApplyDecisionInput,
        BackorderResult,
        CancelOrder,
        CancelReason,
        CarrierEvent,
        ConfirmOrder,
        CreatePaymentInput,
        CustomerStatus,
        DeliveryMethod,
        DocumentsResult,
        FeedbackReceived,
        IncidentCause,
        IncidentInput,
        MarkDelayed,
        MessageKind,
        NextDeadline,
        NotificationResult,
        NotifyInput,
        OrderRef,
        OrderResult,
        OrderStatus,
        OrderTotals,
        OrderWorkflowInput,
        PaymentEvent,
        PaymentLink,
        PaymentMethod,
        PaymentOutcome,
        PickTask,
        RecordEventInput,
        RefundInput,
        RejectOrder,
        ReserveStockInput,
        ReserveStockResult,
        SendConfirmationInput,
        Shipment,
        SlaBreach,
        Stage,
        StockChoice,
        StockDecision,
        TimelineEntry,
        TrackingStatus,
        ValidateOrderInput,
        ValidateOrderResult,
        WarehouseEvent,
        WarehouseEventKind,
    )
    from workflows.timing import feedback_send_time

# Custom search attributes, for the Temporal UI and `temporal workflow list --query`.
# The worker registers them at start (worker.ensure_search_attributes).
ORDER_STAGE = SearchAttributeKey.for_keyword("OrderStage")
ORDER_NUMBER = SearchAttributeKey.for_keyword("OrderNumber")
ORDER_NEEDS_ACTION = SearchAttributeKey.for_bool("OrderNeedsAction")
ORDER_SLA_BREACHED = SearchAttributeKey.for_bool("OrderSlaBreached")
SEARCH_ATTRIBUTES = (ORDER_STAGE, ORDER_NUMBER, ORDER_NEEDS_ACTION, ORDER_SLA_BREACHED)

SYSTEM = "system"
T = TypeVar("T")

# What the order waits for, as `waiting_for` says it (and the interim notice explains).
WAIT_REVIEW = "operator_confirmation"
WAIT_STOCK_DECISION = "stock_decision"
WAIT_BACKORDER = "backorder_arrival"
WAIT_PAYMENT = "payment"
WAIT_PACKING = "packing"
WAIT_CARRIER = "carrier"
WAIT_COLLECTION = "collection"
WAIT_FEEDBACK = "feedback"


class OrderCancelled(Exception):
    """Raised out of any wait or step once a cancellation is decided."""


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._input = input
        self._policy = input.policy
        self._stage = Stage.INTAKE
        self._status = CustomerStatus.RECEIVED
        self._expected_date: date | None = None
        self._timeline: list[TimelineEntry] = []
        self._delivery = DeliveryMethod.COURIER
        self._payment_method = PaymentMethod.PREPAID
        self._timezone = "Europe/Kyiv"
        self._total = Decimal("0")
        # Messages from outside, in arrival order; each event id is handled once.
        self._seen_events: set[str] = set()
        self._payment_events: list[PaymentEvent] = []
        self._warehouse_events: list[WarehouseEvent] = []
        self._carrier_events: list[CarrierEvent] = []
        self._review: ConfirmOrder | RejectOrder | None = None
        self._stock_decision: StockDecision | None = None
        self._cancel: CancelOrder | None = None
        self._compensated = False
        self._feedback: FeedbackReceived | None = None
        # What has been done, so that cancellation knows what to undo.
        self._reserved = False
        self._payment: PaymentLink | None = None
        self._paid: PaymentEvent | None = None
        self._shipment: Shipment | None = None
        self._handed_over = False
        self._delivered_at: datetime | None = None
        self._pick_task: str | None = None
        # The silence guard's state: the last moment the customer heard from us or the order moved.
        self._quiet_since: datetime | None = None
        self._silence_notices = 0
        self._breaches: list[SlaBreach] = []
        self._waiting_for: str | None = None
        self._deadline: NextDeadline | None = None

    # --- the lifecycle ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderResult:
        workflow.upsert_search_attributes(
            [
                ORDER_NUMBER.value_set(input.number),
                ORDER_STAGE.value_set(Stage.INTAKE.value),
                ORDER_NEEDS_ACTION.value_set(False),
                ORDER_SLA_BREACHED.value_set(False),
            ]
        )
        try:
            await self._lifecycle()
        except OrderCancelled:
            await self._compensate()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(order_id=input.order_id, stage=self._stage, status=self._status)

    async def _lifecycle(self) -> None:
        await self._advance(Stage.INTAKE, CustomerStatus.RECEIVED, "order.received")
        if not await self._validate():
            return
        await self._confirm()
        await self._reserve_stock()
        await self._take_payment()
        await self._pick_and_pack()
        if self._delivery == DeliveryMethod.PICKUP:
            await self._hand_over_at_counter()
        else:
            await self._ship()
            await self._track_delivery()
        await self._ask_for_feedback()
        await self._advance(Stage.COMPLETED, CustomerStatus.DELIVERED, "order.completed")

    async def _validate(self) -> bool:
        await self._advance(Stage.VALIDATION, CustomerStatus.RECEIVED, "order.validation_started")
        checked: ValidateOrderResult = await self._activity(
            "validate_order",
            ValidateOrderInput(self._input.order_id, self._policy),
            ValidateOrderResult,
        )
        self._delivery, self._payment_method = checked.delivery_method, checked.payment_method
        self._timezone, self._total = checked.timezone, checked.total
        if checked.problems:
            # Broken data (e.g. contacts missing): nobody to tell, nothing to undo.
            await self._advance(
                Stage.CANCELLED,
                CustomerStatus.CANCELLED,
                "order.invalid",
                {"problems": "; ".join(checked.problems)},
            )
            return False
        await self._advance(
            Stage.VALIDATION,
            CustomerStatus.RECEIVED,
            "order.validated",
            {
                "total": str(checked.total),
                "currency": checked.currency,
                "lines": str(checked.line_count),
            },
        )
        if checked.review_reasons:
            await self._manual_review(checked.review_reasons)
        return True

    async def _manual_review(self, reasons: list[str]) -> None:
        """Seeds 001, 003: an operator confirms (or rejects) what the system cannot."""
        await self._advance(
            Stage.VALIDATION,
            CustomerStatus.RECEIVED,
            "review.requested",
            {"reasons": "; ".join(reasons)},
        )
        await self._notify(MessageKind.AWAITING_REVIEW)
        decided = await self._wait(
            lambda: self._review is not None, WAIT_REVIEW, self._policy.review_sla
        )
        if not decided:
            await self._record("review.escalated", {"after": str(self._policy.review_sla)})
            await self._notify(
                MessageKind.MANAGER_REVIEW_ESCALATED, params={"reasons": "; ".join(reasons)}
            )
            await self._wait(lambda: self._review is not None, WAIT_REVIEW)
        review = self._review
        if isinstance(review, RejectOrder):
            self._cancel = CancelOrder(review.actor, CancelReason.REJECTED, review.reason)
            raise OrderCancelled
        assert isinstance(review, ConfirmOrder)
        if review.lines is not None or review.final_price is not None:
            totals: OrderTotals = await self._activity(
                "apply_decision",
                ApplyDecisionInput(
                    self._input.order_id,
                    review.actor,
                    lines=review.lines,
                    final_price=review.final_price,
                ),
                OrderTotals,
            )
            self._total = totals.total
        await self._advance(
            Stage.VALIDATION,
            CustomerStatus.RECEIVED,
            "review.confirmed",
            {"total": str(self._total), "note": review.note},
            actor=review.actor,
        )

    async def _confirm(self) -> None:
        self._check_cancelled()
        # Seed 000: buyers expect the confirmation within minutes.
        days = self._policy.delivery_days[self._delivery]
        self._expected_date = (workflow.now() + timedelta(days=days)).date()
        await self._advance(
            Stage.CONFIRMATION, CustomerStatus.RECEIVED, "order.confirmation_started"
        )
        sent: NotificationResult = await self._activity(
            "send_confirmation",
            SendConfirmationInput(self._input.order_id, self._expected_date),
            NotificationResult,
        )
        self._quiet_since = workflow.now()
        await self._advance(
            Stage.CONFIRMATION,
            CustomerStatus.PROCESSING,
            "order.confirmed",
            {
                "channel": sent.channel,
                "notification": sent.idempotency_key,
                "expected_date": self._expected_date.isoformat(),
            },
        )

    async def _reserve_stock(self, only_skus: list[str] | None = None) -> None:
        for attempt in range(1, 6):
            self._check_cancelled()
            await self._advance(Stage.STOCK, CustomerStatus.PROCESSING, "stock.reservation_started")
            result: ReserveStockResult = await self._activity(
                "reserve_stock",
                ReserveStockInput(self._input.order_id, only_skus),
                ReserveStockResult,
            )
            self._reserved = True
            if result.complete:
                await self._advance(Stage.STOCK, CustomerStatus.PROCESSING, "stock.reserved")
                return
            missing = {line.sku: line.requested - line.reserved for line in result.missing}
            await self._advance(
                Stage.STOCK,
                CustomerStatus.PROCESSING,
                "stock.partial",
                {sku: f"{qty} missing" for sku, qty in missing.items()},
            )
            await self._notify(
                MessageKind.STOCK_PARTIAL, f"{attempt}", {"missing": ", ".join(missing)}
            )
            self._stock_decision = None
            await self._wait(lambda: self._stock_decision is not None, WAIT_STOCK_DECISION)
            decision = self._stock_decision
            assert decision is not None
            await self._record(
                "stock.decided",
                {"choice": decision.choice.value, "note": decision.note},
                decision.actor,
            )
            if decision.choice == StockChoice.CANCEL:
                self._cancel = CancelOrder(decision.actor, CancelReason.OUT_OF_STOCK, decision.note)
                raise OrderCancelled
            if decision.choice == StockChoice.SHIP_AVAILABLE:
                kept = {line.sku: line.reserved for line in result.lines}
                await self._apply(
                    ApplyDecisionInput(self._input.order_id, decision.actor, quantities=kept)
                )
                return
            if decision.choice == StockChoice.ALTERNATIVE:
                await self._apply(
                    ApplyDecisionInput(
                        self._input.order_id, decision.actor, lines=decision.alternative_lines
                    )
                )
                only_skus = None
                continue
            # Back-order from the supplier and wait for it, up to a deadline.
            backorder: BackorderResult = await self._activity(
                "request_backorder", OrderRef(self._input.order_id), BackorderResult
            )
            self._expected_date = max(
                self._expected_date or backorder.expected_date, backorder.expected_date
            )
            await self._advance(
                Stage.STOCK,
                CustomerStatus.DELAYED,
                "stock.backordered",
                {"expected_date": backorder.expected_date.isoformat()},
            )
            await self._notify(
                MessageKind.BACKORDERED,
                f"{attempt}",
                {"expected_date": backorder.expected_date.isoformat()},
            )
            arrived = await self._wait(
                lambda: self._find_warehouse(WarehouseEventKind.STOCK_ARRIVED) is not None,
                WAIT_BACKORDER,
                self._policy.backorder_deadline,
            )
            self._take_warehouse(WarehouseEventKind.STOCK_ARRIVED)
            if not arrived:
                self._cancel = CancelOrder(
                    SYSTEM, CancelReason.OUT_OF_STOCK, "back-order did not arrive in time"
                )
                raise OrderCancelled
            only_skus = list(missing)
        self._cancel = CancelOrder(SYSTEM, CancelReason.OUT_OF_STOCK, "stock could not be settled")
        raise OrderCancelled

    async def _take_payment(self) -> None:
        self._check_cancelled()
        if self._payment_method == PaymentMethod.COD:
            await self._record("payment.on_delivery", {"amount": str(self._total)})
            return
        expires_at = workflow.now() + self._policy.payment_expiry
        await self._advance(
            Stage.PAYMENT,
            CustomerStatus.PROCESSING,
            "payment.requested",
            {"amount": str(self._total)},
        )
        self._payment = await self._activity(
            "create_payment_link", CreatePaymentInput(self._input.order_id, expires_at), PaymentLink
        )
        await self._notify(
            MessageKind.PAYMENT_REQUESTED,
            params={
                "url": self._payment.url,
                "amount": str(self._total),
                "expires_at": expires_at.isoformat(),
            },
        )
        requested_at = workflow.now()
        reminders = [requested_at + offset for offset in self._policy.payment_reminders]
        while self._paid is None:
            upcoming = [moment for moment in reminders if moment > workflow.now()]
            until = min([*upcoming, expires_at])
            await self._wait(
                lambda: bool(self._payment_events), WAIT_PAYMENT, until - workflow.now()
            )
            while self._payment_events:
                event = self._payment_events.pop(0)
                if event.outcome == PaymentOutcome.SUCCEEDED:
                    self._paid = event
                elif event.outcome == PaymentOutcome.FAILED:
                    await self._payment_failed(event)
            if self._paid is not None:
                break
            if workflow.now() >= expires_at:
                self._cancel = CancelOrder(
                    SYSTEM, CancelReason.PAYMENT_EXPIRED, "payment link expired"
                )
                raise OrderCancelled
            due = [moment for moment in upcoming if moment <= workflow.now()]
            if due:
                await self._notify(
                    MessageKind.PAYMENT_REMINDER,
                    f"{reminders.index(due[-1]) + 1}",
                    {"url": self._payment.url, "amount": str(self._total)},
                )
        await self._advance(
            Stage.PAYMENT,
            CustomerStatus.PROCESSING,
            "payment.succeeded",
            {"payment_id": self._paid.payment_id, "amount": str(self._paid.amount)},
            actor="payment_provider",
        )
        await self._notify(MessageKind.PAYMENT_RECEIVED, params={"amount": str(self._paid.amount)})

    async def _payment_failed(self, event: PaymentEvent) -> None:
        """Seed 001: every failed attempt alerts a manager at once; the customer gets help."""
        await self._record(
            "payment.failed",
            {"reason": event.reason, "payment_id": event.payment_id},
            "payment_provider",
        )
        params = {"reason": event.reason, "url": self._payment.url if self._payment else ""}
        await self._notify(MessageKind.MANAGER_PAYMENT_FAILED, event.event_id, params)
        await self._notify(MessageKind.PAYMENT_FAILED, event.event_id, params)

    async def _pick_and_pack(self) -> None:
        for attempt in range(1, self._policy.picking_attempts + 1):
            self._check_cancelled()
            await self._advance(
                Stage.PICKING, CustomerStatus.PICKING, "picking.started", {"attempt": str(attempt)}
            )
            task: PickTask = await self._activity(
                "create_pick_task", OrderRef(self._input.order_id), PickTask
            )
            self._pick_task = task.task_id
            if attempt == 1:
                await self._notify(MessageKind.PICKING)
            await self._wait(
                partial(self._has_warehouse, WarehouseEventKind.PACKED, task.task_id), WAIT_PACKING
            )
            checklist = self._take_warehouse(WarehouseEventKind.PACKED, task.task_id)
            assert checklist is not None
            if not checklist.missing and not checklist.defects:
                await self._advance(
                    Stage.PICKING,
                    CustomerStatus.PACKED,
                    "order.packed",
                    {"task": task.task_id},
                    "warehouse",
                )
                await self._notify(MessageKind.PACKED)
                return
            summary = "; ".join(
                [*(f"{sku}: missing" for sku in checklist.missing), *checklist.defects]
            )
            await self._incident(
                Stage.PICKING,
                IncidentCause.HUMAN,
                f"checklist failed: {summary}",
                f"pick-{attempt}",
            )
        # Picking keeps failing: a human decides (ship what is there, or cancel).
        await self._advance(Stage.PICKING, CustomerStatus.PICKING, "picking.needs_operator")
        self._stock_decision = None
        await self._wait(lambda: self._stock_decision is not None, WAIT_STOCK_DECISION)
        decision = self._stock_decision
        assert decision is not None
        if decision.choice != StockChoice.SHIP_AVAILABLE:
            self._cancel = CancelOrder(decision.actor, CancelReason.OUT_OF_STOCK, decision.note)
            raise OrderCancelled
        await self._advance(
            Stage.PICKING,
            CustomerStatus.PACKED,
            "order.packed",
            {"by": decision.actor},
            decision.actor,
        )

    async def _ship(self) -> None:
        self._check_cancelled()
        await self._advance(Stage.HANDOVER, CustomerStatus.PACKED, "shipment.booking")
        self._shipment = await self._activity(
            "book_shipment", OrderRef(self._input.order_id), Shipment
        )
        await self._make_documents()
        self._check_cancelled()
        # From here on the parcel is the carrier's: cancellation is refused.
        self._handed_over = True
        await self._advance(
            Stage.HANDOVER,
            CustomerStatus.SHIPPED,
            "order.shipped",
            {
                "carrier": self._shipment.carrier,
                "tracking_number": self._shipment.tracking_number,
            },
        )
        await self._notify(
            MessageKind.SHIPPED,
            params={
                "carrier": self._shipment.carrier,
                "tracking_number": self._shipment.tracking_number,
                "tracking_url": self._shipment.tracking_url,
            },
        )

    async def _make_documents(self) -> None:
        await self._advance(Stage.DOCUMENTS, CustomerStatus.PACKED, "documents.started")
        docs: DocumentsResult = await self._activity(
            "generate_documents", OrderRef(self._input.order_id), DocumentsResult
        )
        await self._advance(
            Stage.DOCUMENTS,
            CustomerStatus.PACKED,
            "documents.ready",
            {"kinds": ", ".join(docs.kinds)},
        )

    async def _track_delivery(self) -> None:
        assert self._shipment is not None
        await self._advance(Stage.TRANSIT, CustomerStatus.SHIPPED, "transit.started")
        delayed_notices = 0
        while self._delivered_at is None:
            news = await self._wait(
                lambda: bool(self._carrier_events), WAIT_CARRIER, self._policy.carrier_silence
            )
            if not news:
                delayed_notices += 1
                await self._advance(
                    Stage.TRANSIT,
                    CustomerStatus.DELAYED,
                    "transit.no_news",
                    {"silent_for": str(self._policy.carrier_silence)},
                )
                await self._notify(
                    MessageKind.DELAYED,
                    f"carrier-{delayed_notices}",
                    {"reason": "no news from the carrier"},
                )
                continue
            while self._carrier_events:
                await self._on_carrier_event(self._carrier_events.pop(0))

    async def _on_carrier_event(self, event: CarrierEvent) -> None:
        status = event.status
        detail = {"tracking_status": status.value, "detail": event.detail}
        if status == TrackingStatus.DELIVERED:
            self._delivered_at = workflow.now()
            await self._advance(
                Stage.TRANSIT, CustomerStatus.DELIVERED, "order.delivered", detail, "carrier"
            )
            if self._payment_method == PaymentMethod.COD:
                await self._record(
                    "payment.collected_on_delivery", {"amount": str(self._total)}, "carrier"
                )
            await self._notify(MessageKind.DELIVERED)
            return
        mapping: dict[TrackingStatus, tuple[CustomerStatus, MessageKind | None]] = {
            TrackingStatus.INFO_RECEIVED: (CustomerStatus.SHIPPED, None),
            TrackingStatus.IN_TRANSIT: (CustomerStatus.IN_TRANSIT, MessageKind.IN_TRANSIT),
            TrackingStatus.OUT_FOR_DELIVERY: (
                CustomerStatus.IN_TRANSIT,
                MessageKind.OUT_FOR_DELIVERY,
            ),
            TrackingStatus.ATTEMPT_FAIL: (CustomerStatus.IN_TRANSIT, MessageKind.DELIVERY_FAILED),
            TrackingStatus.AVAILABLE_FOR_PICKUP: (
                CustomerStatus.READY_FOR_PICKUP,
                MessageKind.READY_FOR_PICKUP,
            ),
            TrackingStatus.EXCEPTION: (CustomerStatus.DELAYED, MessageKind.DELIVERY_PROBLEM),
            TrackingStatus.EXPIRED: (CustomerStatus.DELAYED, MessageKind.DELIVERY_PROBLEM),
        }
        customer_status, message = mapping[status]
        repeated = customer_status == self._status and status == TrackingStatus.IN_TRANSIT
        await self._advance(
            Stage.TRANSIT, customer_status, f"carrier.{status.value}", detail, "carrier"
        )
        if status in (TrackingStatus.EXCEPTION, TrackingStatus.EXPIRED):
            await self._incident(
                Stage.TRANSIT,
                IncidentCause.EXTERNAL,
                f"carrier reports {status.value}: {event.detail}",
                event.event_id,
            )
        if message is not None and not repeated:
            await self._notify(
                message,
                event.event_id,
                {"tracking_url": self._shipment.tracking_url if self._shipment else ""},
            )

    async def _hand_over_at_counter(self) -> None:
        await self._make_documents()
        await self._advance(Stage.TRANSIT, CustomerStatus.READY_FOR_PICKUP, "pickup.ready")
        await self._notify(MessageKind.READY_FOR_PICKUP)
        ready_at = workflow.now()

        def collected() -> bool:
            return self._find_warehouse(WarehouseEventKind.COLLECTED) is not None

        if not await self._wait(collected, WAIT_COLLECTION, self._policy.pickup_reminder):
            await self._notify(MessageKind.PICKUP_REMINDER)
            remaining = ready_at + self._policy.pickup_hold - workflow.now()
            if not await self._wait(collected, WAIT_COLLECTION, remaining):
                self._cancel = CancelOrder(
                    SYSTEM, CancelReason.NOT_COLLECTED, "not collected in the hold period"
                )
                raise OrderCancelled
        self._handed_over = True
        self._delivered_at = workflow.now()
        await self._advance(
            Stage.TRANSIT, CustomerStatus.DELIVERED, "order.collected", actor="warehouse"
        )
        if self._payment_method == PaymentMethod.COD:
            await self._record(
                "payment.collected_on_delivery", {"amount": str(self._total)}, "warehouse"
            )
        await self._notify(MessageKind.DELIVERED)

    async def _ask_for_feedback(self) -> None:
        """Seed 000: 24-48 h after delivery, in the customer's daytime; one reminder."""
        assert self._delivered_at is not None
        send_at = feedback_send_time(
            self._delivered_at,
            self._timezone,
            earliest=self._policy.feedback_earliest,
            latest=self._policy.feedback_latest,
            quiet_from_hour=self._policy.quiet_from_hour,
            quiet_until_hour=self._policy.quiet_until_hour,
        )
        await self._advance(
            Stage.FEEDBACK,
            CustomerStatus.DELIVERED,
            "feedback.scheduled",
            {"at": send_at.isoformat()},
        )
        self._deadline = NextDeadline(send_at, "feedback_request")
        await workflow.sleep(send_at - workflow.now())
        await self._notify(MessageKind.FEEDBACK_REQUEST)
        await self._record("feedback.requested")
        answered = await self._wait(
            lambda: self._feedback is not None,
            WAIT_FEEDBACK,
            self._policy.feedback_reminder,
            guard=False,
        )
        if not answered:
            await self._notify(MessageKind.FEEDBACK_REMINDER)
            remaining = self._policy.feedback_wait - self._policy.feedback_reminder
            answered = await self._wait(
                lambda: self._feedback is not None, WAIT_FEEDBACK, remaining, guard=False
            )
        if not answered or self._feedback is None:
            await self._record("feedback.none")
            return
        feedback = self._feedback
        score = {
            "rating": str(feedback.rating or ""),
            "nps": "" if feedback.nps is None else str(feedback.nps),
        }
        await self._record(
            "feedback.received", {**score, "feedback_id": feedback.feedback_id}, "customer"
        )
        if feedback.negative:
            await self._incident(
                Stage.FEEDBACK, IncidentCause.HUMAN, f"negative feedback {score}", "feedback"
            )

    # --- cancellation and compensation -----------------------------------------------------

    async def _compensate(self) -> None:
        """Undo in reverse order what was done; each step is idempotent, the customer is told why."""
        cancel = self._cancel
        assert cancel is not None
        undone: list[str] = []
        if self._shipment is not None:
            await self._activity("cancel_shipment", OrderRef(self._input.order_id), type(None))
            undone.append("shipment cancelled")
        if self._paid is not None:
            await self._activity(
                "refund_payment",
                RefundInput(self._input.order_id, self._paid.payment_id, self._paid.amount),
                type(None),
            )
            undone.append(f"refunded {self._paid.amount}")
        elif self._payment is not None:
            await self._activity("cancel_payment_link", OrderRef(self._input.order_id), type(None))
        if self._reserved:
            await self._activity("release_stock", OrderRef(self._input.order_id), type(None))
            undone.append("stock released")
        await self._advance(
            Stage.CANCELLED,
            CustomerStatus.CANCELLED,
            "order.cancelled",
            {"reason": cancel.reason.value, "note": cancel.note, "undone": ", ".join(undone)},
            actor=cancel.actor,
        )
        await self._notify(
            MessageKind.CANCELLED,
            params={
                "reason": cancel.reason.value,
                "note": cancel.note,
                "refund": str(self._paid.amount) if self._paid else "",
            },
        )
        self._compensated = True

    def _check_cancelled(self) -> None:
        if self._cancel is not None:
            raise OrderCancelled

    # --- messages from outside ----------------------------------------------------------------

    @workflow.signal(name="payment_event")
    def payment_event(self, event: PaymentEvent) -> None:
        if self._first_time(event.event_id):
            self._payment_events.append(event)

    @workflow.signal(name="warehouse_event")
    def warehouse_event(self, event: WarehouseEvent) -> None:
        if self._first_time(event.event_id):
            self._warehouse_events.append(event)

    @workflow.signal(name="carrier_event")
    def carrier_event(self, event: CarrierEvent) -> None:
        if self._first_time(event.event_id):
            self._carrier_events.append(event)

    @workflow.signal(name="feedback")
    def feedback(self, answer: FeedbackReceived) -> None:
        if self._feedback is None:
            self._feedback = answer

    @workflow.update(name="confirm")
    async def confirm(self, decision: ConfirmOrder) -> ActionResult:
        self._review = decision
        return self._action_result()

    @confirm.validator
    def _confirm_allowed(self, decision: ConfirmOrder) -> None:
        self._require("confirm")
        if decision.final_price is not None and decision.final_price <= 0:
            raise ValueError("final_price must be positive")

    @workflow.update(name="reject")
    async def reject(self, decision: RejectOrder) -> ActionResult:
        self._review = decision
        await workflow.wait_condition(lambda: self._compensated)
        return self._action_result()

    @reject.validator
    def _reject_allowed(self, decision: RejectOrder) -> None:
        self._require("reject")
        if not decision.reason.strip():
            raise ValueError("a rejection needs a reason")

    @workflow.update(name="decide_stock")
    async def decide_stock(self, decision: StockDecision) -> ActionResult:
        self._stock_decision = decision
        return self._action_result()

    @decide_stock.validator
    def _decide_stock_allowed(self, decision: StockDecision) -> None:
        self._require("decide_stock")
        if decision.choice == StockChoice.ALTERNATIVE and not decision.alternative_lines:
            raise ValueError("an alternative needs alternative_lines")
        if (
            self._waiting_for == WAIT_STOCK_DECISION
            and self._stage == Stage.PICKING
            and decision.choice
            not in (
                StockChoice.SHIP_AVAILABLE,
                StockChoice.CANCEL,
            )
        ):
            raise ValueError("after failed picking the choice is ship_available or cancel")

    @workflow.update(name="mark_delayed")
    async def mark_delayed(self, delay: MarkDelayed) -> ActionResult:
        """Seed 002: a delay is told to the customer with its reason and the new date."""
        self._expected_date = delay.new_date
        await self._advance(
            self._stage,
            CustomerStatus.DELAYED,
            "order.delayed",
            {"reason": delay.reason, "new_date": delay.new_date.isoformat()},
            actor=delay.actor,
        )
        await self._notify(
            MessageKind.DELAYED,
            f"{len(self._timeline)}",
            {"reason": delay.reason, "new_date": delay.new_date.isoformat()},
        )
        return self._action_result()

    @mark_delayed.validator
    def _mark_delayed_allowed(self, delay: MarkDelayed) -> None:
        self._require("mark_delayed")
        if not delay.reason.strip():
            raise ValueError("a delay needs a reason")

    @workflow.update(name="cancel")
    async def cancel(self, cancel: CancelOrder) -> ActionResult:
        self._cancel = cancel
        await workflow.wait_condition(lambda: self._compensated)
        return self._action_result()

    @cancel.validator
    def _cancel_allowed(self, cancel: CancelOrder) -> None:
        self._require("cancel")

    def _allowed_actions(self) -> dict[str, str | None]:
        """Each operator action and, when it is refused now, why. One place for validators and status."""
        finished = self._stage in (Stage.COMPLETED, Stage.CANCELLED) or self._cancel is not None
        done = f"the order is {self._stage.value}" if finished else None
        reviewing = (
            None if self._waiting_for == WAIT_REVIEW else "the order is not awaiting confirmation"
        )
        deciding = (
            None if self._waiting_for == WAIT_STOCK_DECISION else "no stock decision is pending"
        )
        handed = "the parcel is already with the carrier" if self._handed_over else None
        delivered = "the order is already delivered" if self._delivered_at else None
        return {
            "confirm": done or reviewing,
            "reject": done or reviewing,
            "decide_stock": done or deciding,
            "mark_delayed": done or delivered,
            "cancel": done or handed,
        }

    def _require(self, action: str) -> None:
        refusal = self._allowed_actions()[action]
        if refusal is not None:
            raise ValueError(f"{action} is not allowed now: {refusal}")

    def _action_result(self) -> ActionResult:
        return ActionResult(accepted=True, stage=self._stage, status=self._status)

    def _first_time(self, event_id: str) -> bool:
        if event_id in self._seen_events:
            return False
        self._seen_events.add(event_id)
        return True

    def _find_warehouse(
        self, kind: WarehouseEventKind, task_id: str | None = None
    ) -> WarehouseEvent | None:
        for event in self._warehouse_events:
            if event.kind == kind and (task_id is None or event.task_id == task_id):
                return event
        return None

    def _has_warehouse(self, kind: WarehouseEventKind, task_id: str | None = None) -> bool:
        return self._find_warehouse(kind, task_id) is not None

    def _take_warehouse(
        self, kind: WarehouseEventKind, task_id: str | None = None
    ) -> WarehouseEvent | None:
        event = self._find_warehouse(kind, task_id)
        if event is not None:
            self._warehouse_events.remove(event)
        return event

    # --- the query -----------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> OrderStatus:
        if self._paid is not None:
            payment = "refunded" if self._stage == Stage.CANCELLED else "paid"
        elif self._payment_method == PaymentMethod.COD:
            payment = "collected_on_delivery" if self._delivered_at else "cash_on_delivery"
        elif self._payment is not None:
            payment = "awaiting_payment"
        else:
            payment = "not_requested"
        return OrderStatus(
            order_id=self._input.order_id,
            number=self._input.number,
            stage=self._stage,
            status=self._status,
            expected_date=self._expected_date,
            timeline=list(self._timeline),
            payment_status=payment,
            fulfilment_status=self._fulfilment_status(),
            tracking_number=self._shipment.tracking_number if self._shipment else None,
            tracking_url=self._shipment.tracking_url if self._shipment else None,
            waiting_for=self._waiting_for,
            next_deadline=self._deadline,
            sla_breaches=list(self._breaches),
            allowed_actions=[
                name for name, refusal in self._allowed_actions().items() if refusal is None
            ],
        )

    def _fulfilment_status(self) -> str:
        if self._delivered_at is not None:
            return "delivered"
        if self._handed_over:
            return "shipped"
        if (
            self._stage in (Stage.HANDOVER, Stage.DOCUMENTS)
            or self._status == CustomerStatus.PACKED
        ):
            return "packed"
        if self._pick_task is not None:
            return "picking"
        return "reserved" if self._reserved else "pending"

    # --- the machinery: waits, the silence guard, the timeline, activities -------------------

    async def _wait(
        self,
        ready: Callable[[], bool],
        waiting_for: str,
        timeout: timedelta | None = None,
        *,
        guard: bool = True,
    ) -> bool:
        """Wait until `ready()` (True) or `timeout` (False); a cancellation raises OrderCancelled.

        Beside the wait runs the silence guard (seed 000): whenever the customer has heard
        nothing for the policy period, they get an interim notice saying what the order waits
        for, support sees an SLA breach, and it repeats each period up to a bound.
        """
        end = workflow.now() + timeout if timeout is not None else None
        self._waiting_for = waiting_for
        self._deadline = NextDeadline(end, waiting_for) if end is not None else None
        self._set_needs_action(waiting_for in (WAIT_REVIEW, WAIT_STOCK_DECISION))
        try:
            while True:
                self._check_cancelled()
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
                        lambda: ready() or self._cancel is not None,
                        timeout=(min(wakes) - now) if wakes else None,
                    )
                if guard and not ready() and self._cancel is None:
                    guard_at = self._guard_due()
                    if guard_at is not None and workflow.now() >= guard_at:
                        await self._silence_notice(waiting_for)
                        self._quiet_since = (
                            guard_at  # the next period counts from when this one ended
                        )
        finally:
            self._waiting_for = None
            self._deadline = None
            self._set_needs_action(False)

    def _guard_due(self) -> datetime | None:
        if self._quiet_since is None or self._silence_notices >= self._policy.silence_max_notices:
            return None
        return self._quiet_since + self._policy.silence_period

    async def _silence_notice(self, waiting_for: str) -> None:
        self._silence_notices += 1
        breach = SlaBreach(at=workflow.now(), stage=self._stage, waiting_for=waiting_for)
        self._breaches.append(breach)
        workflow.upsert_search_attributes([ORDER_SLA_BREACHED.value_set(True)])
        await self._record(
            "sla.silence_breached",
            {"waiting_for": waiting_for, "notice": str(self._silence_notices)},
        )
        await self._notify(
            MessageKind.INTERIM, f"{self._silence_notices}", {"waiting_for": waiting_for}
        )

    def _set_needs_action(self, needed: bool) -> None:
        workflow.upsert_search_attributes([ORDER_NEEDS_ACTION.value_set(needed)])

    async def _advance(
        self,
        stage: Stage,
        status: CustomerStatus,
        event_type: str,
        detail: dict[str, str] | None = None,
        actor: str = SYSTEM,
    ) -> None:
        """Progress: move to `stage`/`status` and write the step to the timeline."""
        if stage != self._stage:
            workflow.upsert_search_attributes([ORDER_STAGE.value_set(stage.value)])
        self._stage, self._status = stage, status
        if self._quiet_since is not None:
            self._quiet_since = workflow.now()
        await self._record(event_type, detail, actor)

    async def _record(
        self, event_type: str, detail: dict[str, str] | None = None, actor: str = SYSTEM
    ) -> None:
        """Write one timeline entry (without moving the order): here and, idempotently, in Postgres."""
        entry = TimelineEntry(
            at=workflow.now(), type=event_type, stage=self._stage, actor=actor, detail=detail or {}
        )
        key = f"{len(self._timeline):04d}:{event_type}"
        self._timeline.append(entry)
        workflow.logger.info("order %s: %s", self._stage.value, event_type)
        # A local activity: one short, idempotent row write per step needs no task-queue round
        # trip (bench.confirmation: POST-to-e-mail p50 349 -> 163 ms).
        await workflow.execute_local_activity(
            "record_event",
            RecordEventInput(
                order_id=self._input.order_id,
                key=key,
                entry=entry,
                status=self._status,
                expected_date=self._expected_date,
            ),
            **self._activity_options(),
        )

    async def _notify(
        self, kind: MessageKind, key: str = "1", params: dict[str, str] | None = None
    ) -> None:
        await self._activity(
            "notify",
            NotifyInput(self._input.order_id, kind, f"{kind.value}:{key}", params or {}),
            NotificationResult,
        )
        if not kind.value.startswith("manager_"):
            self._quiet_since = workflow.now()

    async def _incident(self, stage: Stage, cause: IncidentCause, summary: str, key: str) -> None:
        await self._activity(
            "record_incident",
            IncidentInput(self._input.order_id, key, stage, cause, summary),
            type(None),
        )
        await self._record("incident.opened", {"cause": cause.value, "summary": summary})
        await self._notify(
            MessageKind.MANAGER_INCIDENT, key, {"summary": summary, "cause": cause.value}
        )

    async def _apply(self, change: ApplyDecisionInput) -> None:
        totals: OrderTotals = await self._activity("apply_decision", change, OrderTotals)
        self._total = totals.total
        await self._record(
            "order.changed",
            {"total": str(totals.total), "lines": str(totals.line_count)},
            change.actor,
        )

    async def _activity(self, name: str, arg: Any, result_type: type[T]) -> T:
        result: T = await workflow.execute_activity(
            name, arg, result_type=result_type, **self._activity_options()
        )
        return result

    def _activity_options(self) -> dict[str, Any]:
        policy = self._policy
        return {
            "start_to_close_timeout": policy.activity_timeout,
            "retry_policy": RetryPolicy(
                initial_interval=policy.activity_retry_initial,
                maximum_interval=policy.activity_retry_max,
                non_retryable_error_types=["OrderNotFound", "ProviderRejected"],
            ),
        }
