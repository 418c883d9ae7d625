"""Stage 6: picking and packing against a checklist of every line. A defect or a missing
item opens an incident and goes back to picking; after the policy's attempts a person decides."""

from __future__ import annotations

from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from activities.warehouse import WarehouseActivities
    from schema.contracts import (
        ApplyDecisionInput,
        CancelOrder,
        CancelReason,
        CustomerStatus,
        IncidentCause,
        MessageKind,
        OrderRef,
        RefundInput,
        Stage,
        StepChoice,
        StockChoice,
        WaitingFor,
        WarehouseEvent,
        WarehouseEventKind,
    )
    from schema.vocabulary import ErrorType, EventType, PatchId

from workflows import failures, stock
from workflows.state import OrderState
from workflows.steps import StepFailure


async def _ship_what_was_packed(order: OrderState, checklist: WarehouseEvent, actor: str) -> None:
    """Drop the lines the last checklist found missing or defective; the customer is told,
    and what they paid for those lines is refunded."""
    unavailable = {
        *checklist.missing,
        *(defect.split(":")[0].strip() for defect in checklist.defects),
    }
    if not unavailable:
        return
    if set(order.skus) <= unavailable:
        order.stop(CancelOrder(actor, CancelReason.OUT_OF_STOCK, "nothing could be packed"))
    await order.timeline.notify(
        MessageKind.ITEMS_UNAVAILABLE, "picking", {"missing": ", ".join(sorted(unavailable))}
    )
    before = order.total
    change = ApplyDecisionInput(order.order_id, actor, quantities=dict.fromkeys(unavailable, 0))
    await stock.apply_change(order, change)
    order.skus = [sku for sku in order.skus if sku not in unavailable]
    paid = order.paid
    if paid is not None and order.total < before:
        amount = before - order.total
        await order.steps.run_or_skip(
            PaymentActivities.refund_payment,
            RefundInput(
                order.order_id, paid.payment_id, amount, step="refund:not-packed", paid=paid.amount
            ),
        )
        order.refunded += amount
        await order.timeline.record(EventType.PAYMENT_PARTIALLY_REFUNDED, {"amount": str(amount)})


async def _packed(order: OrderState, task_id: str) -> str:
    """Wait for the warehouse's checklist of the task. Past the policy's wait (a task the
    warehouse lost, e.g. after a restart) an incident opens and the order is flagged; it
    keeps waiting, and an operator may retry: the task is created again (the same task when
    the warehouse still has it: the call is idempotent). Answers the task that was packed."""
    packed = partial(order.inbox.has_warehouse, WarehouseEventKind.PACKED, task_id)
    if not workflow.patched(PatchId.PACKING_DEADLINE):
        await order.waiting.until(packed, WaitingFor.PACKING)
        return task_id
    while not await order.waiting.until(packed, WaitingFor.PACKING, order.policy.packing_wait):
        waited = StepFailure(
            "create_pick_task",
            ErrorType.NO_ANSWER,
            f"pick task {task_id} not packed within {order.policy.packing_wait}",
            skippable=False,
        )
        if await failures.overdue(order, waited, packed) == StepChoice.RETRY:
            task = await order.steps.run(
                WarehouseActivities.create_pick_task, OrderRef(order.order_id)
            )
            if task.task_id != task_id:
                order.pick_task = task_id = task.task_id
                packed = partial(order.inbox.has_warehouse, WarehouseEventKind.PACKED, task_id)
    return task_id


async def pick_and_pack(order: OrderState) -> None:
    timeline, inbox = order.timeline, order.inbox
    checklist: WarehouseEvent | None = None  # the last attempt's
    for attempt in range(1, order.policy.picking_attempts + 1):
        order.waiting.check_cancelled()
        await timeline.advance(
            Stage.PICKING,
            CustomerStatus.PICKING,
            EventType.PICKING_STARTED,
            {"attempt": str(attempt)},
        )
        task = await order.steps.run(WarehouseActivities.create_pick_task, OrderRef(order.order_id))
        order.pick_task = task.task_id
        if attempt == 1:
            await timeline.notify(MessageKind.PICKING)
        task_id = await _packed(order, task.task_id)
        checklist = inbox.take_warehouse(WarehouseEventKind.PACKED, task_id)
        assert checklist is not None
        if not checklist.missing and not checklist.defects:
            await timeline.advance(
                Stage.PICKING,
                CustomerStatus.PACKED,
                EventType.ORDER_PACKED,
                {"task": task_id},
                "warehouse",
            )
            await timeline.notify(MessageKind.PACKED)
            return
        summary = "; ".join([*(f"{sku}: missing" for sku in checklist.missing), *checklist.defects])
        await timeline.incident(
            Stage.PICKING, IncidentCause.HUMAN, f"checklist failed: {summary}", f"pick-{attempt}"
        )
    # Picking keeps failing: a person decides (ship what is there, or cancel).
    await timeline.advance(Stage.PICKING, CustomerStatus.PICKING, EventType.PICKING_NEEDS_OPERATOR)
    decision = await stock.decision_taken(order)
    if decision.choice != StockChoice.SHIP_AVAILABLE:
        order.stop(CancelOrder(decision.actor, CancelReason.OUT_OF_STOCK, decision.note))
    if checklist is not None and workflow.patched(PatchId.SHIP_WHAT_WAS_PACKED):
        await _ship_what_was_packed(order, checklist, decision.actor)
    await timeline.advance(
        Stage.PICKING,
        CustomerStatus.PACKED,
        EventType.ORDER_PACKED,
        {"by": decision.actor},
        decision.actor,
    )
