"""What people do to an order: the operator's actions (each a typed workflow update, whose
validator decides whether the order's stage allows it), the customer's own stock choice,
and notes. Every action is audited twice: the intent before the update is sent (a timed-out
caller still leaves a trace) and the outcome after. What an operator types with an action
(a confirm note, a reject reason) is kept as an order note, and the update carries its id:
Temporal's history holds no free text, and erasure finds the note."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.actions import (
    CancelIn,
    ConfirmIn,
    DelayIn,
    NoteIn,
    ParcelDecisionIn,
    RejectIn,
    ResolveIn,
    StockDecisionIn,
)
from schema.api.customers import CustomerCancelIn, CustomerStockChoiceIn
from schema.api.orders import LineIn, NoteOut
from schema.contracts import (
    ActionResult,
    CancelOrder,
    CancelReason,
    ConfirmOrder,
    LineEdit,
    MarkDelayed,
    ParcelDecision,
    RejectOrder,
    ResolveStep,
    StockDecision,
)
from schema.tables import Order, OrderNote
from schema.vocabulary import Action
from starter.services import metrics
from starter.services.access import Principal, audit
from starter.services.errors import ActionRefused, OrderFinished, OrderNotFound
from starter.services.temporal import OrderUpdate, OrderWorkflows
from workflows.order import OrderWorkflow

A = TypeVar("A")


async def _act(
    session: AsyncSession,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    update: OrderUpdate[A],
    decision: Callable[..., A],
    action: Action,
    text: str = "",
) -> ActionResult:
    """Send `decision` (its keyword `note_id` given when the operator wrote `text`, which is
    kept as an order note: free text stays in Postgres, never in Temporal's history)."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    note = None
    if text:
        note = OrderNote(order_id=order_id, author=caller.actor, text=text, action=action)
        session.add(note)
        await session.flush()
    await audit(session, caller, f"order.{action}.requested", str(order_id))
    await session.commit()
    argument = decision(note_id=note.id) if note is not None else decision()
    try:
        try:
            result = await workflows.act(order_id, update, argument)
        except OrderFinished as finished:
            raise ActionRefused(
                f"{action} is not allowed now: the order is {order.stage}"
            ) from finished
    except ActionRefused as refused:
        if note is not None:
            await session.delete(note)  # it would explain an action that did not happen
        await audit(session, caller, f"order.{action}.refused", str(order_id), reason=str(refused))
        await session.commit()
        metrics.ACTION_OUTCOMES.labels(action=action, outcome="refused").inc()
        raise
    await audit(session, caller, f"order.{action}", str(order_id))
    await session.commit()
    metrics.ACTION_OUTCOMES.labels(action=action, outcome="accepted").inc()
    return result


def _lines(lines: list[LineIn] | None) -> list[LineEdit] | None:
    return None if lines is None else [LineEdit(**line.model_dump()) for line in lines]


async def confirm(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: ConfirmIn,
) -> ActionResult:
    decision = partial(ConfirmOrder, caller.actor, _lines(body.lines), body.final_price)
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.confirm,
        decision,
        Action.CONFIRM,
        body.note,
    )


async def reject(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: RejectIn,
) -> ActionResult:
    decision = partial(RejectOrder, caller.actor, "")  # the reason is the note
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.reject,
        decision,
        Action.REJECT,
        body.reason,
    )


async def decide_stock(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: StockDecisionIn,
) -> ActionResult:
    decision = partial(StockDecision, caller.actor, body.choice, _lines(body.alternative_lines))
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.decide_stock,
        decision,
        Action.DECIDE_STOCK,
        body.note,
    )


async def mark_delayed(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: DelayIn,
) -> ActionResult:
    delay = partial(MarkDelayed, caller.actor, body.reason.value, body.new_date)
    return await _act(
        session, workflows, caller, order_id, OrderWorkflow.mark_delayed, delay, Action.MARK_DELAYED
    )


async def cancel(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: CancelIn,
) -> ActionResult:
    decision = partial(CancelOrder, caller.actor, body.reason)
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.cancel,
        decision,
        Action.CANCEL,
        body.note,
    )


async def resolve_step(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: ResolveIn,
) -> ActionResult:
    resolution = partial(ResolveStep, caller.actor, body.choice)
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.resolve_step,
        resolution,
        Action.RESOLVE_STEP,
    )


async def decide_parcel(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    body: ParcelDecisionIn,
) -> ActionResult:
    """A lost or damaged parcel: re-ship, refund, or cancel (a closing answers once done)."""
    decision = partial(ParcelDecision, caller.actor, body.choice)
    return await _act(
        session,
        workflows,
        caller,
        order_id,
        OrderWorkflow.decide_parcel,
        decision,
        Action.DECIDE_PARCEL,
        body.note,
    )


@dataclass(frozen=True)
class OperatorAction:
    """An action as the console offers it: its label, its form's model, the service to run."""

    label: str
    form: type[BaseModel]
    run: Callable[..., Awaitable[ActionResult]]


OPERATOR_ACTIONS: dict[Action, OperatorAction] = {
    Action.CONFIRM: OperatorAction("Confirm", ConfirmIn, confirm),
    Action.REJECT: OperatorAction("Reject", RejectIn, reject),
    Action.DECIDE_STOCK: OperatorAction("Decide stock", StockDecisionIn, decide_stock),
    Action.MARK_DELAYED: OperatorAction("Mark delayed", DelayIn, mark_delayed),
    Action.CANCEL: OperatorAction("Cancel", CancelIn, cancel),
    Action.RESOLVE_STEP: OperatorAction("Resolve the failed step", ResolveIn, resolve_step),
    Action.DECIDE_PARCEL: OperatorAction(
        "Decide about the lost parcel", ParcelDecisionIn, decide_parcel
    ),
}


async def cancel_as_customer(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    order_id: uuid.UUID,
    body: CustomerCancelIn,
    ip: str | None,
) -> ActionResult:
    """The customer cancels from the status page, before handover (the workflow's validator
    decides, as for an operator): reason `customer_request`; the reason they chose from the
    list is kept as a code, an order note of the cancellation (author `customer`). Answers
    once compensation has run (refund asked, stock released)."""
    customer = Principal.customer(ip)
    decision = partial(CancelOrder, "customer", CancelReason.CUSTOMER_REQUEST)
    return await _act(
        session,
        workflows,
        customer,
        order_id,
        OrderWorkflow.cancel,
        decision,
        Action.CANCEL,
        body.reason.value,
    )


async def choose_stock_as_customer(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    order_id: uuid.UUID,
    body: CustomerStockChoiceIn,
    ip: str | None,
) -> ActionResult:
    """The customer's own answer about missing items, from the link in the e-mail."""
    customer = Principal.customer(ip)
    decision = partial(StockDecision, "customer", body.choice, None, "chosen by the customer")
    return await _act(
        session,
        workflows,
        customer,
        order_id,
        OrderWorkflow.decide_stock,
        decision,
        Action.DECIDE_STOCK,
    )


async def add_note(
    session: AsyncSession, *, caller: Principal, order_id: uuid.UUID, body: NoteIn, **audited: Any
) -> NoteOut:
    if await session.get(Order, order_id) is None:
        raise OrderNotFound(order_id)
    note = OrderNote(
        order_id=order_id,
        author=caller.actor,
        text=body.text,
        customer_contact=body.customer_contact,
    )
    session.add(note)
    await audit(session, caller, "order.note", str(order_id), **audited)
    await session.commit()
    if note.customer_contact:
        metrics.SUPPORT_CONTACTS.inc()
    await session.refresh(note)
    return NoteOut(
        at=note.created_at,
        author=note.author,
        text=note.text,
        action=note.action,
        customer_contact=note.customer_contact,
    )
