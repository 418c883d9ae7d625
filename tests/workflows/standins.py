"""Stand-in activities under the real activity names: no Postgres, SMTP or providers.

Each stand-in takes and returns the real contract dataclasses, records the call (name and
input, in order) so a test can assert what the workflow did, and answers from a small
configurable model of one order. A test can hold any call mid-flight (`hold`) to line up
a race with a signal or an update, or make calls fail for good (`fail`), as a provider's
refusal does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.contracts import (
    ApplyDecisionInput,
    BackorderResult,
    BookShipmentInput,
    CreatePaymentInput,
    DeliveryMethod,
    DocumentsResult,
    ExchangeOrder,
    ExchangeOrderInput,
    ExchangeOutcome,
    IncidentInput,
    LineAvailability,
    LineEdit,
    MessageKind,
    NotificationResult,
    NotifyInput,
    OrderListInput,
    OrderRef,
    OrderTotals,
    ParcelNews,
    PaymentLink,
    PaymentMethod,
    PickTask,
    PolledConnectors,
    PollOrdersInput,
    PollOrdersResult,
    PollTrackingInput,
    PollTrackingResult,
    RecordEventInput,
    RecordEventResult,
    RecordProgressInput,
    RecordStepsInput,
    RecordTrackingInput,
    RefundInput,
    ReserveStockInput,
    ReserveStockResult,
    RestockInput,
    ReturnRef,
    ReturnStepInput,
    SendConfirmationInput,
    Shipment,
    TimelineEntry,
    ValidateOrderInput,
    ValidateOrderResult,
)

MUG = LineEdit(sku="MUG-01", name="Mug", quantity=2, unit_price=Decimal("250.00"))
PAYMENT_ID = "pay-standin-1"
TRACKING_NUMBER = "TRK-STANDIN-1"  # the first parcel's; a re-shipment's ends in its number
RETURN_TRACKING_NUMBER = "TRK-RETURN-1"
BACKORDER_DAYS = timedelta(days=10)

# What the workflow undoes on cancellation, in the activities that undo it.
COMPENSATIONS = ("cancel_shipment", "refund_payment", "cancel_payment_link", "release_stock")


@dataclass(frozen=True)
class Call:
    name: str
    input: Any
    at: datetime  # on the server's clock, which the time-skipping server runs ahead


@dataclass
class Hold:
    """One call held mid-flight: `entered` once it runs, it returns after `release()`."""

    name: str
    matches: Callable[[Any], bool]
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.entered.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name} was not called within {timeout} s") from None

    def release(self) -> None:
        self.released.set()


@dataclass
class Failure:
    """Calls of `name` whose input `matches` fail for good (a non-retryable ApplicationError
    of `error_type`) until `heal()`: the cause is fixed."""

    name: str
    error_type: str
    matches: Callable[[Any], bool]
    healed: bool = False

    def heal(self) -> None:
        self.healed = True


class OrderStandIns:
    """Every activity OrderWorkflow calls, answering for one order.

    `lines` are the order's lines; `short` maps a SKU to the quantity the first reservation
    finds (later reservations find everything, as after a back-order or an alternative).
    """

    def __init__(
        self,
        *,
        delivery: DeliveryMethod = DeliveryMethod.COURIER,
        payment: PaymentMethod = PaymentMethod.PREPAID,
        lines: Sequence[LineEdit] = (MUG,),
        problems: Sequence[str] = (),
        review_reasons: Sequence[str] = (),
        short: dict[str, int] | None = None,
        carrier_reports_payout: bool = False,
        carrier_date: date | None = None,
    ) -> None:
        self.delivery = delivery
        self.payment = payment
        self.lines = list(lines)
        self.problems = list(problems)
        self.review_reasons = list(review_reasons)
        self.short = dict(short or {})
        # A carrier like Nova Poshta: it reports paying out cash on delivery, and gives its
        # own estimate of the delivery date when a parcel is booked.
        self.carrier_reports_payout = carrier_reports_payout
        self.carrier_date = carrier_date
        self.tracking_news: list[ParcelNews] = []  # what the next tracking round finds
        self.calls: list[Call] = []  # as they started
        self.finished: list[Call] = []  # as they returned (a held call returns late)
        self.batches: list[RecordStepsInput] = []  # the timeline's writes of an activation
        self._holds: list[Hold] = []
        self._failures: list[Failure] = []
        self._pick_tasks = 0
        self.backorder_date: date | None = None  # what request_backorder promised
        self.refused: dict[str, str] = {}  # refund step -> why the ledger refuses it
        self.exchange_outcome_is = ExchangeOutcome(cancelled=False, total=Decimal("0"))
        self.exchange_order_id = str(uuid.uuid4())  # the replacement order an exchange places

    # --- what the test sets up and reads ----------------------------------------------------

    def hold(self, name: str, matches: Callable[[Any], bool] = lambda _: True) -> Hold:
        """Hold the next call of `name` whose input `matches` until the test releases it."""
        held = Hold(name, matches)
        self._holds.append(held)
        return held

    def fail(
        self, name: str, error_type: str, matches: Callable[[Any], bool] = lambda _: True
    ) -> Failure:
        """Make every call of `name` whose input `matches` fail for good, until healed."""
        failure = Failure(name, error_type, matches)
        self._failures.append(failure)
        return failure

    def release_all(self) -> None:
        for held in self._holds:
            held.release()

    def hold_message(self, kind: MessageKind) -> Hold:
        return self.hold("notify", lambda input: input.kind == kind)

    def inputs(self, name: str) -> list[Any]:
        return [call.input for call in self.calls if call.name == name]

    def sent(self) -> list[str]:
        """The kinds of the messages sent, in the order they went out (the confirmation too)."""
        return [kind for kind, _ in self.messages()]

    def messages(self) -> list[tuple[str, datetime]]:
        """Each message sent: its kind and when it was asked for (on the server's clock)."""
        return [
            (
                "confirmation" if call.name == "send_confirmation" else call.input.kind.value,
                call.at,
            )
            for call in self.finished
            if call.name in ("send_confirmation", "notify")
        ]

    def timeline(self) -> list[TimelineEntry]:
        """The timeline as Postgres would hold it: one row per key, in key order."""
        rows = {
            call.input.key: call.input.entry
            for call in self.finished
            if call.name == "record_event"
        }
        return [rows[key] for key in sorted(rows)]

    def compensations(self) -> list[str]:
        return [call.name for call in self.calls if call.name in COMPENSATIONS]

    def refunds(self) -> list[Decimal]:
        return [refund.amount for refund in self.inputs("refund_payment")]

    @property
    def total(self) -> Decimal:
        return sum((line.quantity * line.unit_price for line in self.lines), Decimal("0"))

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.record_event,
            self.record_steps,
            self.record_progress,
            self.validate_order,
            self.apply_decision,
            self.record_incident,
            self.send_confirmation,
            self.notify,
            self.send_order_list,
            self.reserve_stock,
            self.release_stock,
            self.request_backorder,
            self.create_pick_task,
            self.create_payment_link,
            self.refund_payment,
            self.cancel_payment_link,
            self.book_shipment,
            self.cancel_shipment,
            self.generate_documents,
            self.restock,
            self.book_return_shipment,
            self.generate_return_label,
            self.record_return_step,
            self.create_exchange_order,
            self.exchange_outcome,
            self.poll_tracking,
            self.record_tracking,
            self.polled_connectors,
            self.poll_orders,
        ]

    async def _called(self, name: str, input: Any) -> None:
        call = Call(name, input, activity.info().current_attempt_scheduled_time)
        self.calls.append(call)
        for held in self._holds:
            if held.name == name and not held.entered.is_set() and held.matches(input):
                held.entered.set()
                await held.released.wait()
                break
        for failure in self._failures:
            if failure.name == name and not failure.healed and failure.matches(input):
                raise ApplicationError(
                    f"{name} refused by the stand-in", type=failure.error_type, non_retryable=True
                )
        self.finished.append(call)

    # --- the stand-ins ---------------------------------------------------------------------

    @activity.defn(name="record_event")
    async def record_event(self, input: RecordEventInput) -> RecordEventResult:
        await self._called("record_event", input)
        return RecordEventResult(recorded=True)

    @activity.defn(name="record_steps")
    async def record_steps(self, input: RecordStepsInput) -> None:
        """An activation's steps, seen as the writes they stand for: a `record_event` per
        step and a `record_progress` for the wait's (the batch itself is in `batches`)."""
        self.batches.append(input)
        for step in input.steps:
            await self._called("record_event", step)
        if input.progress is not None:
            await self._called(
                "record_progress", RecordProgressInput(input.order_id, input.progress)
            )

    @activity.defn(name="record_progress")
    async def record_progress(self, input: RecordProgressInput) -> None:
        await self._called("record_progress", input)

    @activity.defn(name="validate_order")
    async def validate_order(self, input: ValidateOrderInput) -> ValidateOrderResult:
        await self._called("validate_order", input)
        return ValidateOrderResult(
            delivery_method=self.delivery,
            payment_method=self.payment,
            currency="UAH",
            total=self.total,
            line_count=len(self.lines),
            problems=list(self.problems),
            review_reasons=list(self.review_reasons),
        )

    @activity.defn(name="apply_decision")
    async def apply_decision(self, input: ApplyDecisionInput) -> OrderTotals:
        await self._called("apply_decision", input)
        if input.lines is not None:
            self.lines = list(input.lines)
        if input.quantities is not None:
            self.lines = [
                LineEdit(line.sku, line.name, kept, line.unit_price)
                for line in self.lines
                if (kept := input.quantities.get(line.sku, line.quantity)) > 0
            ]
        total = input.final_price if input.final_price is not None else self.total
        return OrderTotals(total=total, line_count=len(self.lines))

    @activity.defn(name="record_incident")
    async def record_incident(self, input: IncidentInput) -> None:
        await self._called("record_incident", input)

    @activity.defn(name="send_confirmation")
    async def send_confirmation(self, input: SendConfirmationInput) -> NotificationResult:
        await self._called("send_confirmation", input)
        return NotificationResult(f"confirmation:{input.order_id}", "email", "msg-confirm", False)

    @activity.defn(name="notify")
    async def notify(self, input: NotifyInput) -> NotificationResult:
        await self._called("notify", input)
        return NotificationResult(input.key, "email", f"msg-{len(self.calls)}", False)

    @activity.defn(name="send_order_list")
    async def send_order_list(self, input: OrderListInput) -> None:
        await self._called("send_order_list", input)

    @activity.defn(name="reserve_stock")
    async def reserve_stock(self, input: ReserveStockInput) -> ReserveStockResult:
        first = not self.inputs("reserve_stock")
        await self._called("reserve_stock", input)
        wanted = [
            line for line in self.lines if input.only_skus is None or line.sku in input.only_skus
        ]
        return ReserveStockResult(
            lines=[
                LineAvailability(
                    line.sku,
                    line.quantity,
                    self.short.get(line.sku, line.quantity) if first else line.quantity,
                )
                for line in wanted
            ]
        )

    @activity.defn(name="release_stock")
    async def release_stock(self, input: OrderRef) -> None:
        await self._called("release_stock", input)

    @activity.defn(name="request_backorder")
    async def request_backorder(self, input: OrderRef) -> BackorderResult:
        await self._called("request_backorder", input)
        # The server's clock, not the machine's: the time-skipping server runs ahead.
        scheduled = activity.info().current_attempt_scheduled_time
        self.backorder_date = (scheduled + BACKORDER_DAYS).date()
        return BackorderResult(expected_date=self.backorder_date)

    @activity.defn(name="create_pick_task")
    async def create_pick_task(self, input: OrderRef) -> PickTask:
        await self._called("create_pick_task", input)
        self._pick_tasks += 1
        return PickTask(task_id=f"task-{self._pick_tasks}")

    @activity.defn(name="create_payment_link")
    async def create_payment_link(self, input: CreatePaymentInput) -> PaymentLink:
        await self._called("create_payment_link", input)
        return PaymentLink(PAYMENT_ID, f"https://pay.example/{PAYMENT_ID}", input.expires_at)

    @activity.defn(name="refund_payment")
    async def refund_payment(self, input: RefundInput) -> None:
        await self._called("refund_payment", input)
        if input.step in self.refused:  # as the ledger refuses a refund beyond the payment
            raise ApplicationError(
                self.refused[input.step], type="RefundRefused", non_retryable=True
            )

    @activity.defn(name="cancel_payment_link")
    async def cancel_payment_link(self, input: OrderRef) -> None:
        await self._called("cancel_payment_link", input)

    @activity.defn(name="book_shipment")
    async def book_shipment(self, input: BookShipmentInput) -> Shipment:
        await self._called("book_shipment", input)
        tracking = TRACKING_NUMBER.replace("-1", f"-{input.parcel}")
        return Shipment(
            "nova_poshta",
            "courier",
            tracking,
            f"https://track.example/{tracking}",
            expected_date=self.carrier_date,
            reports_payout=self.carrier_reports_payout and self.payment == PaymentMethod.COD,
        )

    @activity.defn(name="cancel_shipment")
    async def cancel_shipment(self, input: OrderRef) -> None:
        await self._called("cancel_shipment", input)

    @activity.defn(name="generate_documents")
    async def generate_documents(self, input: OrderRef) -> DocumentsResult:
        await self._called("generate_documents", input)
        if self.delivery == DeliveryMethod.PICKUP:
            return DocumentsResult(kinds=["packing_list", "receipt"])
        return DocumentsResult(kinds=["label", "packing_list", "receipt"])

    @activity.defn(name="restock")
    async def restock(self, input: RestockInput) -> None:
        await self._called("restock", input)

    @activity.defn(name="book_return_shipment")
    async def book_return_shipment(self, input: ReturnRef) -> Shipment:
        await self._called("book_return_shipment", input)
        tracking = RETURN_TRACKING_NUMBER
        return Shipment("nova_poshta", "courier", tracking, f"https://track.example/{tracking}")

    @activity.defn(name="generate_return_label")
    async def generate_return_label(self, input: ReturnRef) -> DocumentsResult:
        await self._called("generate_return_label", input)
        return DocumentsResult(kinds=["return_label_1"])

    @activity.defn(name="record_return_step")
    async def record_return_step(self, input: ReturnStepInput) -> None:
        await self._called("record_return_step", input)

    @activity.defn(name="create_exchange_order")
    async def create_exchange_order(self, input: ExchangeOrderInput) -> ExchangeOrder:
        await self._called("create_exchange_order", input)
        return ExchangeOrder(self.exchange_order_id, f"T-{self.exchange_order_id[:6]}-X")

    @activity.defn(name="poll_tracking")
    async def poll_tracking(self, input: PollTrackingInput) -> PollTrackingResult:
        """The tracking rounds' page: what `tracking_news` holds (each once)."""
        await self._called("poll_tracking", input)
        news, self.tracking_news = self.tracking_news, []
        return PollTrackingResult(news=news, asked=len(news), calls=1 if news else 0)

    @activity.defn(name="record_tracking")
    async def record_tracking(self, input: RecordTrackingInput) -> None:
        await self._called("record_tracking", input)

    @activity.defn(name="polled_connectors")
    async def polled_connectors(self) -> PolledConnectors:
        """No marketplace connector: the orders' workflows never poll."""
        return PolledConnectors([])

    @activity.defn(name="poll_orders")
    async def poll_orders(self, input: PollOrdersInput) -> PollOrdersResult:
        await self._called("poll_orders", input)
        return PollOrdersResult()

    @activity.defn(name="exchange_outcome")
    async def exchange_outcome(self, input: OrderRef) -> ExchangeOutcome:
        await self._called("exchange_outcome", input)
        return self.exchange_outcome_is
