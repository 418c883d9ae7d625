"""Picking and packing: a pick task per attempt, with a checklist of every line."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.orders import load_order, order_lines
from activities.providers import Provider, step_key
from schema.contracts import OrderRef, PickTask
from schema.database import open_session


class WarehouseActivities:
    def __init__(self, engine: AsyncEngine, warehouse: Provider, callback_url: str) -> None:
        self._engine = engine
        self._warehouse = warehouse
        self._callback_url = callback_url

    @activity.defn
    async def create_pick_task(self, input: OrderRef) -> PickTask:
        lines = await order_lines(self._engine, input.order_id)
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
        answer = await self._warehouse.call(
            "POST",
            "/v1/pick-tasks",
            json={
                "order_ref": input.order_id,
                "checklist": [
                    {"sku": line.sku, "name": line.name, "quantity": line.quantity}
                    for line in lines
                ],
                "delivery_method": order.delivery_method,
                "callback_url": self._callback_url,
            },
            idempotency_key=step_key(input.order_id, "pick"),
        )
        return PickTask(task_id=answer["task_id"])
