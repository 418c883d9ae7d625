"""Stock: reserve and release an order's lines at the warehouse, back-order from the supplier,
and put goods that came back (a returned parcel, a customer's return) on the shelf again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.orders import order_lines
from activities.providers import Provider, step_key
from schema.contracts import (
    BackorderResult,
    LineAvailability,
    OrderRef,
    ReserveStockInput,
    ReserveStockResult,
    RestockInput,
    StockLine,
)


class InventoryActivities:
    def __init__(self, engine: AsyncEngine, warehouse: Provider) -> None:
        self._engine = engine
        self._warehouse = warehouse

    @activity.defn
    async def reserve_stock(self, input: ReserveStockInput) -> ReserveStockResult:
        """The reservation is named after the order and states the whole wish: a retry reserves nothing twice."""
        lines = await order_lines(self._engine, input.order_id)
        answer = await self._warehouse.call(
            "PUT",
            f"/v1/reservations/{input.order_id}",
            json={"lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines]},
        )
        return ReserveStockResult(
            lines=[
                LineAvailability(
                    sku=item["sku"], requested=item["requested"], reserved=item["reserved"]
                )
                for item in answer["lines"]
            ]
        )

    @activity.defn
    async def release_stock(self, input: OrderRef) -> None:
        await self._warehouse.call("DELETE", f"/v1/reservations/{input.order_id}")

    @activity.defn
    async def request_backorder(self, input: OrderRef) -> BackorderResult:
        answer = await self._warehouse.call(
            "POST",
            "/v1/backorders",
            json={"reservation_id": input.order_id},
            idempotency_key=step_key(input.order_id, "backorder"),
        )
        return BackorderResult(expected_date=answer["expected_date"])

    @activity.defn
    async def restock(self, input: RestockInput) -> None:
        """Goods back on the shelf, once per step: the warehouse gets the step's key."""
        lines = input.lines
        if lines is None:
            lines = [
                StockLine(line.sku, line.quantity)
                for line in await order_lines(self._engine, input.order_id)
            ]
        await self._warehouse.call(
            "POST",
            "/v1/restocks",
            json={
                "order_ref": input.order_id,
                "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
            },
            idempotency_key=f"{input.order_id}:{input.step}",
        )
