"""Handover: the carrier and service chosen by rules held in data, a booked shipment (a
second one when the first was lost), its cancellation; and a customer's return shipment,
from their address back to the shop."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders import (
    load_contact,
    load_order,
    load_refs,
    load_return,
    order_lines,
    save_refs,
)
from activities.providers import Provider
from schema.contracts import BookShipmentInput, OrderRef, ReturnRef, Shipment
from schema.database import open_session
from schema.tables import Return, ReturnItem
from schema.vocabulary import ErrorType

RULES = Path(__file__).resolve().parent / "data" / "carrier_rules.json"


@dataclass(frozen=True)
class CarrierChoice:
    carrier: str
    service: str
    weight_kg: float


GOODS_CLASS_RANK = {"general": 0, "bulky": 1, "fragile": 2}


def choose_carrier(
    *,
    country: str,
    method: str,
    skus: list[tuple[str, int]],
    speed: str = "standard",
    rules_file: Path = RULES,
) -> CarrierChoice:
    """Carrier and service by the rules in data: region, method, speed, goods class, weight."""
    table = _rules(rules_file, rules_file.stat().st_mtime_ns)
    items = sum(quantity for _, quantity in skus)
    weight = round(items * table["weight_per_item_kg"], 2)
    classes = [
        next(
            (cls for prefix, cls in table["goods_classes"].items() if sku.startswith(prefix)),
            "general",
        )
        for sku, _ in skus
    ]
    goods = max(classes, key=GOODS_CLASS_RANK.__getitem__, default="general")
    wanted = {"country": country, "method": method, "speed": speed, "goods_class": goods}
    for rule in table["rules"]:
        if all(rule[k] in (v, "*") for k, v in wanted.items()) and weight <= rule["max_weight_kg"]:
            return CarrierChoice(rule["carrier"], rule["service"], weight)
    raise ApplicationError(
        f"no carrier rule for {wanted} at {weight} kg",
        type=ErrorType.NO_CARRIER,
        non_retryable=True,
    )


@functools.lru_cache(maxsize=4)
def _rules(rules_file: Path, modified: int) -> dict[str, Any]:
    """The rules file, read once (again when it changes), not at every booking."""
    rules: dict[str, Any] = json.loads(rules_file.read_text())
    return rules


class ShippingActivities:
    def __init__(self, engine: AsyncEngine, carrier: Provider, callback_url: str) -> None:
        self._engine = engine
        self._carrier = carrier
        self._callback_url = callback_url

    @activity.defn
    async def book_shipment(self, input: BookShipmentInput) -> Shipment:
        """Book the order's parcel: the first under `{order}:shipment` (as always), a second
        after a loss under `{order}:shipment:2`, so that each is booked once."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
        if contact.country is None:
            raise ApplicationError(
                "order has no address to ship to", type=ErrorType.NO_ADDRESS, non_retryable=True
            )
        lines = await order_lines(self._engine, input.order_id)
        choice = choose_carrier(
            country=contact.country,
            method=order.delivery_method,
            skus=[(line.sku, line.quantity) for line in lines],
            speed=order.delivery_speed,
        )
        # An erased customer's parcel is booked to the country alone: the rest is gone.
        destination = {
            "country": contact.country,
            "city": contact.city,
            "postal_code": contact.postal_code,
        }
        answer = await self._carrier.call(
            "POST",
            "/v1/shipments",
            json={
                "order_ref": input.order_id,
                "reference": order.number,
                "service": choice.service,
                "weight_kg": choice.weight_kg,
                "destination": {k: v for k, v in destination.items() if v is not None},
                "callback_url": self._callback_url,
            },
            idempotency_key=f"{input.order_id}:shipment"
            + (f":{input.parcel}" if input.parcel > 1 else ""),
        )
        await save_refs(
            self._engine,
            input.order_id,
            carrier=choice.carrier,
            service=choice.service,
            tracking_number=answer["tracking_number"],
            tracking_url=answer["tracking_url"],
        )
        return Shipment(
            choice.carrier, choice.service, answer["tracking_number"], answer["tracking_url"]
        )

    @activity.defn
    async def cancel_shipment(self, input: OrderRef) -> None:
        refs = await load_refs(self._engine, input.order_id)
        if refs is not None and refs.tracking_number:
            await self._carrier.call("DELETE", f"/v1/shipments/{refs.tracking_number}")

    @activity.defn
    async def book_return_shipment(self, input: ReturnRef) -> Shipment:
        """The return parcel, from the customer's address to the shop, once per return; the
        carrier's events about it name the return (`return_ref`)."""
        async with open_session(self._engine) as session:
            ret = await load_return(session, input.return_id)
            order = await load_order(session, str(ret.order_id))
            contact = await load_contact(session, order)
            items = (
                await session.exec(select(ReturnItem).where(ReturnItem.return_id == ret.id))
            ).all()
        if contact.country is None:
            raise ApplicationError(
                "order has no address to collect from",
                type=ErrorType.NO_ADDRESS,
                non_retryable=True,
            )
        choice = choose_carrier(
            country=contact.country,
            method=order.delivery_method,
            skus=[(item.sku, item.quantity) for item in items],
        )
        origin = {
            "country": contact.country,
            "city": contact.city,
            "postal_code": contact.postal_code,
        }
        answer = await self._carrier.call(
            "POST",
            "/v1/shipments",
            json={
                "order_ref": str(order.id),
                "return_ref": input.return_id,
                "direction": "return",
                "reference": ret.number,
                "service": choice.service,
                "weight_kg": choice.weight_kg,
                "origin": {k: v for k, v in origin.items() if v is not None},
                "lines": [{"sku": item.sku, "quantity": item.quantity} for item in items],
                "callback_url": self._callback_url,
            },
            idempotency_key=f"{input.return_id}:return-shipment",
        )
        async with open_session(self._engine) as session:
            await session.execute(
                update(Return)
                .where(col(Return.id) == uuid.UUID(input.return_id))
                .values(
                    carrier=choice.carrier,
                    tracking_number=answer["tracking_number"],
                    tracking_url=answer["tracking_url"],
                )
            )
            await session.commit()
        return Shipment(
            choice.carrier, choice.service, answer["tracking_number"], answer["tracking_url"]
        )
