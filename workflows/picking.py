"""Stage 6: picking and packing against a checklist of every line. A defect or a missing
item opens an incident and goes back to picking; after the policy's attempts a person decides."""

from __future__ import annotations

from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.warehouse import WarehouseActivities
    from schema.contracts import (
        CancelOrder,
        CancelReason,
        CustomerStatus,
        IncidentCause,
        MessageKind,
        OrderRef,
        Stage,
        StockChoice,
        WaitingFor,
        WarehouseEventKind,
    )

from workflows import stock
from workflows.state import OrderState


async def pick_and_pack(order: OrderState) -> None:
    timeline, inbox = order.timeline, order.inbox
    for attempt in range(1, order.policy.picking_attempts + 1):
        order.waiting.check_cancelled()
        await timeline.advance(
            Stage.PICKING, CustomerStatus.PICKING, "picking.started", {"attempt": str(attempt)}
        )
        task = await order.steps.run(WarehouseActivities.create_pick_task, OrderRef(order.order_id))
        order.pick_task = task.task_id
        if attempt == 1:
            await timeline.notify(MessageKind.PICKING)
        await order.waiting.until(
            partial(inbox.has_warehouse, WarehouseEventKind.PACKED, task.task_id),
            WaitingFor.PACKING,
        )
        checklist = inbox.take_warehouse(WarehouseEventKind.PACKED, task.task_id)
        assert checklist is not None
        if not checklist.missing and not checklist.defects:
            await timeline.advance(
                Stage.PICKING,
                CustomerStatus.PACKED,
                "order.packed",
                {"task": task.task_id},
                "warehouse",
            )
            await timeline.notify(MessageKind.PACKED)
            return
        summary = "; ".join([*(f"{sku}: missing" for sku in checklist.missing), *checklist.defects])
        await timeline.incident(
            Stage.PICKING, IncidentCause.HUMAN, f"checklist failed: {summary}", f"pick-{attempt}"
        )
    # Picking keeps failing: a person decides (ship what is there, or cancel).
    await timeline.advance(Stage.PICKING, CustomerStatus.PICKING, "picking.needs_operator")
    decision = await stock.decision_taken(order)
    if decision.choice != StockChoice.SHIP_AVAILABLE:
        order.stop(CancelOrder(decision.actor, CancelReason.OUT_OF_STOCK, decision.note))
    await timeline.advance(
        Stage.PICKING, CustomerStatus.PACKED, "order.packed", {"by": decision.actor}, decision.actor
    )
