"""Handover: the carrier and service chosen by rules held in data, a booked shipment, its cancellation."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders import load_contact, load_order, load_refs, order_lines, save_refs
from activities.providers import Provider
from schema.contracts import OrderRef, Shipment
from schema.database import open_session

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
        f"no carrier rule for {wanted} at {weight} kg", type="NoCarrier", non_retryable=True
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
    async def book_shipment(self, input: OrderRef) -> Shipment:
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
        if contact.country is None:
            raise ApplicationError(
                "order has no address to ship to", type="NoAddress", non_retryable=True
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
            idempotency_key=f"{input.order_id}:shipment",
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
