"""Stage 4: every line reserved; on a shortage a person decides — ship what is there,
back-order from the supplier (and wait, up to a deadline), take an alternative, or cancel."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities
    from activities.orders import OrderActivities
    from schema.contracts import (
        ApplyDecisionInput,
        CancelOrder,
        CancelReason,
        CustomerStatus,
        MessageKind,
        OrderRef,
        ReserveStockInput,
        Stage,
        StockChoice,
        StockDecision,
        WaitingFor,
        WarehouseEventKind,
    )
    from schema.vocabulary import EventType

from workflows.state import OrderState
from workflows.timeline import SYSTEM


async def reserve(order: OrderState) -> None:
    timeline = order.timeline
    for attempt in range(1, order.policy.stock_attempts + 1):
        order.waiting.check_cancelled()
        await timeline.advance(
            Stage.STOCK, CustomerStatus.PROCESSING, EventType.STOCK_RESERVATION_STARTED
        )
        # The reservation states every line's wish: repeated, it reserves nothing twice.
        result = await order.steps.run(
            InventoryActivities.reserve_stock, ReserveStockInput(order.order_id)
        )
        order.reserved = True
        order.skus = [line.sku for line in result.lines]
        if result.complete:
            await timeline.advance(Stage.STOCK, CustomerStatus.PROCESSING, EventType.STOCK_RESERVED)
            return
        missing = {line.sku: line.requested - line.reserved for line in result.missing}
        await timeline.advance(
            Stage.STOCK,
            CustomerStatus.PROCESSING,
            EventType.STOCK_PARTIAL,
            {sku: f"{qty} missing" for sku, qty in missing.items()},
        )
        await timeline.notify(
            MessageKind.STOCK_PARTIAL, f"{attempt}", {"missing": ", ".join(missing)}
        )
        decision = await decision_taken(order)
        await timeline.record(
            EventType.STOCK_DECIDED,
            {"choice": decision.choice.value, "note": decision.note},
            decision.actor,
        )
        if decision.choice == StockChoice.CANCEL:
            order.stop(CancelOrder(decision.actor, CancelReason.OUT_OF_STOCK, decision.note))
        if decision.choice == StockChoice.SHIP_AVAILABLE:
            kept = {line.sku: line.reserved for line in result.lines}
            order.skus = [sku for sku, quantity in kept.items() if quantity > 0]
            await apply_change(
                order, ApplyDecisionInput(order.order_id, decision.actor, quantities=kept)
            )
            return
        if decision.choice == StockChoice.ALTERNATIVE:
            await apply_change(
                order,
                ApplyDecisionInput(
                    order.order_id, decision.actor, lines=decision.alternative_lines
                ),
            )
            continue
        await _backorder(order, attempt)
    order.stop(CancelOrder(SYSTEM, CancelReason.OUT_OF_STOCK, "stock could not be settled"))


async def decision_taken(order: OrderState) -> StockDecision:
    """Wait for the operator's (or the customer's) decision about missing goods."""
    inbox = order.inbox
    inbox.stock_decision = None
    await order.waiting.until(lambda: inbox.stock_decision is not None, WaitingFor.STOCK_DECISION)
    decision = inbox.stock_decision
    assert decision is not None
    return decision


async def apply_change(order: OrderState, change: ApplyDecisionInput) -> None:
    """Change the order's lines (or quantities) in Postgres; the total follows."""
    totals = await order.steps.run(OrderActivities.apply_decision, change)
    order.total = totals.total
    await order.timeline.record(
        EventType.ORDER_CHANGED,
        {"total": str(totals.total), "lines": str(totals.line_count)},
        change.actor,
    )


async def _backorder(order: OrderState, attempt: int) -> None:
    """Back-order the missing lines from the supplier and wait for them, up to a deadline."""
    timeline, inbox = order.timeline, order.inbox
    backorder = await order.steps.run(
        InventoryActivities.request_backorder, OrderRef(order.order_id)
    )
    expected = backorder.expected_date
    timeline.expected_date = max(timeline.expected_date or expected, expected)
    await timeline.advance(
        Stage.STOCK,
        CustomerStatus.DELAYED,
        EventType.STOCK_BACKORDERED,
        {"expected_date": expected.isoformat()},
    )
    await timeline.notify(
        MessageKind.BACKORDERED, f"{attempt}", {"expected_date": expected.isoformat()}
    )
    arrived = await order.waiting.until(
        lambda: inbox.has_warehouse(WarehouseEventKind.STOCK_ARRIVED),
        WaitingFor.BACKORDER_ARRIVAL,
        order.policy.backorder_deadline,
    )
    inbox.take_warehouse(WarehouseEventKind.STOCK_ARRIVED)
    if not arrived:
        order.stop(
            CancelOrder(SYSTEM, CancelReason.OUT_OF_STOCK, "back-order did not arrive in time")
        )
