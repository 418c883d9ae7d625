"""What the order workflow knows about one order, shared by its stages: no personal data.

`OrderState` holds the order's identity and policy, the tools every stage uses (typed
activity calls, the timeline, the waits), the messages that came from outside (`Inbox`),
what validation learned, and what has been done so far — so that cancellation knows what
to undo and the `status` query can tell.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.contracts import (
        CancelOrder,
        CarrierEvent,
        ConfirmOrder,
        DeliveryMethod,
        FeedbackReceived,
        OrderPolicy,
        OrderProgress,
        OrderWorkflowInput,
        ParcelDecision,
        ParcelOutcome,
        PaymentEvent,
        PaymentLink,
        PaymentMethod,
        RejectOrder,
        ResolveStep,
        Shipment,
        Stage,
        StockDecision,
        WarehouseEvent,
        WarehouseEventKind,
    )

from workflows import failures, rules
from workflows.steps import StepFailure, Steps
from workflows.timeline import Timeline
from workflows.waiting import OrderCancelled, Waiting

SEEN_EVENTS = 200  # provider event ids remembered per order


class Inbox:
    """Messages from outside, in arrival order: provider events (each event id handled once)
    and the decisions of people (operators, the customer)."""

    def __init__(self) -> None:
        # The latest event ids, to drop a provider's repeat (the API drops replays of any age).
        self._seen: dict[str, None] = {}
        self.payments: list[PaymentEvent] = []
        self.warehouse: list[WarehouseEvent] = []
        self.carrier: list[CarrierEvent] = []
        self.review: ConfirmOrder | RejectOrder | None = None
        self.stock_decision: StockDecision | None = None
        self.feedback: FeedbackReceived | None = None
        self.step_resolution: ResolveStep | None = None
        self.parcel_decision: ParcelDecision | None = None

    def first_time(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > SEEN_EVENTS:
            del self._seen[next(iter(self._seen))]  # the oldest
        return True

    def find_warehouse(
        self, kind: WarehouseEventKind, task_id: str | None = None
    ) -> WarehouseEvent | None:
        for event in self.warehouse:
            if event.kind == kind and (task_id is None or event.task_id == task_id):
                return event
        return None

    def has_warehouse(self, kind: WarehouseEventKind, task_id: str | None = None) -> bool:
        return self.find_warehouse(kind, task_id) is not None

    def take_warehouse(
        self, kind: WarehouseEventKind, task_id: str | None = None
    ) -> WarehouseEvent | None:
        event = self.find_warehouse(kind, task_id)
        if event is not None:
            self.warehouse.remove(event)
        return event


class OrderState:
    def __init__(self, input: OrderWorkflowInput) -> None:
        self.order_id = input.order_id
        self.number = input.number
        self.policy: OrderPolicy = input.policy
        self.steps = Steps(input.policy)
        self.steps.on_failure = lambda failure: failures.settle(self, failure)
        self.timeline = Timeline(
            input.order_id, self.steps, lambda: self.cancel is not None, self.progress
        )
        self.waiting = Waiting(input.policy, self.timeline, lambda: self.cancel is not None)
        self.inbox = Inbox()
        # What validation learns from the order in Postgres.
        self.delivery = DeliveryMethod.COURIER
        self.speed = "standard"  # or "express": the date promised follows it
        self.payment_method = PaymentMethod.PREPAID
        self.timezone = "Europe/Kyiv"  # the customer's, for quiet hours
        self.in_review = False  # an operator's confirmation is awaited
        self.total = Decimal("0")
        self.currency = ""
        # What has been done, so that cancellation knows what to undo.
        self.reserved = False
        self.skus: list[str] = []  # the order's lines, as last reserved
        self.refunded = Decimal("0")  # refunded before the order ended (items not shipped)
        self.payment: PaymentLink | None = None
        self.paid: PaymentEvent | None = None
        self.pick_task: str | None = None
        self.shipment: Shipment | None = None
        self.handed_over = False  # the parcel is with the carrier, or collected at the counter
        self.delivered_at: datetime | None = None
        self.parcels = 1  # shipments booked: a lost parcel may be re-shipped
        self.going_back: ParcelOutcome | None = None  # refused or unclaimed: why it comes back
        self.restocked = False  # ... and it came back: its goods are on the shelf again
        # At a carrier's branch: kept free until then (the storage reminder and its end).
        self.storage_until: date | None = None
        self.storage_reminded = False
        # Cash on delivery with a carrier that reports its payout (Nova Poshta): the money is
        # the shop's only once the carrier says it paid it out (`delivery.reconcile_payout`,
        # beside the feedback stage).
        self.awaiting_payout = False
        self.payout: asyncio.Task[None] | None = None
        # Steps that failed for good, and the one waiting for a person now.
        self.failed_steps = 0
        self.failed_step: StepFailure | None = None
        # How it ends.
        self.cancel: CancelOrder | None = None
        self.finished = False  # the run reached its end: completed, cancelled or found invalid

    # What failures.settle asks of an order (`failures.Settling`).

    @property
    def step_resolution(self) -> ResolveStep | None:
        return self.inbox.step_resolution

    @step_resolution.setter
    def step_resolution(self, resolution: ResolveStep | None) -> None:
        self.inbox.step_resolution = resolution

    @property
    def compensating(self) -> bool:
        return self.cancel is not None

    def incident_key(self, step: str) -> str:
        return step

    def facts(self) -> rules.OrderSituation:
        return rules.OrderSituation(
            stage=self.timeline.stage,
            waiting_for=self.waiting.waiting_for,
            cancelling=self.cancel is not None,
            handed_over=self.handed_over,
            delivered=self.delivered_at is not None,
            in_review=self.in_review,
            review_decided=self.inbox.review is not None,
            stock_decided=self.inbox.stock_decision is not None,
            returning=self.going_back is not None,
            parcel_decided=self.inbox.parcel_decision is not None,
        )

    def left_to_refund(self) -> Decimal:
        """What is left of the payment after every refund so far (those made outside this
        workflow included: it is told of them)."""
        return self.paid.amount - self.refunded if self.paid is not None else Decimal(0)

    def progress(self) -> OrderProgress:
        """What the order waits for and may do now (the query says it; the read model keeps it)."""
        facts, deadline = self.facts(), self.waiting.deadline
        return OrderProgress(
            waiting_for=facts.waiting_for,
            next_deadline=deadline.at if deadline else None,
            allowed_actions=[
                name for name, refusal in rules.allowed_actions(facts).items() if refusal is None
            ],
            payment_status=rules.payment_status(
                method=self.payment_method,
                requested=self.payment is not None,
                paid=self.paid is not None,
                cancelled=facts.stage == Stage.CANCELLED,
                delivered=facts.delivered,
                awaiting_payout=self.awaiting_payout,
            ),
            fulfilment_status=rules.fulfilment_status(
                stage=facts.stage,
                status=self.timeline.status,
                reserved=self.reserved,
                picking=self.pick_task is not None,
                handed_over=self.handed_over,
                delivered=facts.delivered,
                returning=facts.returning,
                returned=self.restocked,
            ),
        )

    def stop(self, cancel: CancelOrder) -> NoReturn:
        """The order cannot go on: cancel it (compensation runs in the workflow's `run`)."""
        self.cancel = cancel
        raise OrderCancelled
