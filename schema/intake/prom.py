"""Prom.ua: its orders, as the Public API lists them (`GET /api/v1/orders/list`,
https://public-api.docs.prom.ua/#/Orders), mapped into `OrderCreate`; and what the
marketplace is told as the order moves (`POST /orders/set_status`,
`POST /delivery/save_declaration_id`).

What is read: `client_first_name`/`client_last_name` (the buyer), `phone`, `email`,
`products` (`sku`, else `external_id`, else `prom-<id>`; `name`, `quantity`, `price` as Prom
spells it: "1 299,50 грн."), the delivery (`delivery_provider_data` of Nova Poshta with its
`recipient_warehouse_id`: the branch's Ref → a branch; `delivery_option` named in
`pickup_options` → pickup; else a courier to `delivery_address`, which Prom gives as one
line: the city before the first comma), `payment_option` (named in `cod_options` → cash on
delivery; `payment_data.status` paid → paid at the source, not taken), `client_notes`.
Prom's orders are in hryvnias."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field

from schema.api.fields import Locale
from schema.contracts import CancelReason
from schema.intake import (
    ConnectorKind,
    MappingError,
    SourceOrder,
    international_phone,
    order_number,
    paid_at_source,
    source_id,
    text,
    validated,
)
from schema.shop_events import ShopEventType

# Orders modified since a moment (ISO 8601), oldest first, a page at a time.
PAGE = 100
# The shop's events the marketplace is told of (its connector's write-back subscription),
# and how (README, Intake: write-back).
WRITE_BACK = (
    ShopEventType.CONFIRMED,
    ShopEventType.SHIPPED,
    ShopEventType.DELIVERED,
    ShopEventType.CANCELLED,
)
STATUS_OF = {ShopEventType.CONFIRMED: "received", ShopEventType.DELIVERED: "delivered"}
CANCELLED = "canceled"
# Prom's `delivery_type` of a waybill, by the carrier the order's parcel went with (as
# activities/data/carrier_rules.json names it; the devstack's invented carriers stand in for
# the real ones). A parcel of any other carrier: Prom is not told its waybill.
DELIVERY_TYPES = {
    "NovaPoshta": "nova_poshta",
    "Ukrposhta": "ukrposhta",
    "NovaSim": "nova_poshta",
    "UkrSim": "ukrposhta",
}
# Prom's cancellation reasons (set_status): orderflow's reason codes that have one of Prom's
# own; every other is `another`, with orderflow's code as the text.
CANCELLATION_REASONS = {
    CancelReason.OUT_OF_STOCK: "not_available",
    CancelReason.CUSTOMER_REQUEST: "buyers_request",
    "invalid": "not_enough_fields",  # the order's details failed validation
}


class PromSettings(BaseModel):
    """A Prom connector's settings (defaults: the names Prom gives its usual options)."""

    locale: Locale = "uk"
    cod_options: list[str] = Field(
        default=["Наложенный платеж", "Накладений платіж", "Оплата при отриманні"]
    )
    pickup_options: list[str] = Field(default=["Самовывоз", "Самовивіз"])
    # The first moment asked about when the connector has no cursor yet (ISO 8601); unset:
    # the connector's creation.
    start_from: str | None = None


def amount(value: object, field: str) -> str:
    """Prom's price strings ("1 299,50 грн.", "250 грн.") or numbers, as "1299.50"."""
    raw = re.sub(r"[^\d,.\-]", "", str(value).replace("\u00a0", "")).replace(",", ".")
    try:
        return str(Decimal(raw.rstrip(".")).quantize(Decimal("0.01")))
    except InvalidOperation:
        raise MappingError(field, f"not an amount: {value!r}") from None


def _name(option: object) -> str:
    return text(option.get("name")) if isinstance(option, dict) else ""


def _delivery(payload: dict[str, Any], settings: PromSettings) -> dict[str, Any]:
    provider = payload.get("delivery_provider_data")
    if isinstance(provider, dict) and provider.get("provider") == "nova_poshta":
        ref = text(provider.get("recipient_warehouse_id"))
        if not ref:
            raise MappingError(
                "delivery_provider_data.recipient_warehouse_id",
                "a Nova Poshta order without the branch's Ref",
            )
        return {"method": "branch", "branch": {"carrier": "novaposhta", "ref": ref}}
    if _name(payload.get("delivery_option")) in settings.pickup_options:
        return {"method": "pickup"}
    address = text(payload.get("delivery_address"))
    city, _, rest = address.partition(",")
    if not rest.strip():
        raise MappingError("delivery_address", "no address to deliver to (city, street)")
    return {
        "method": "courier",
        "address": {
            "country": "UA",
            "city": city.strip(),
            "line1": rest.strip(),
            # Prom's address has no postal code of its own; one in it is taken.
            "postal_code": _postal_code(address),
        },
    }


def _postal_code(address: str) -> str:
    found = re.search(r"\b\d{5}\b", address)
    if found is None:
        raise MappingError("delivery_address", "no postal code in the address")
    return found.group()


def _payment(payload: dict[str, Any], settings: PromSettings) -> dict[str, str]:
    if _name(payload.get("payment_option")) in settings.cod_options:
        return {"method": "cod"}
    data = payload.get("payment_data")
    if isinstance(data, dict) and data.get("status") == "paid":
        raise paid_at_source("payment_data.status")
    return {"method": "prepaid"}


def map_order(connector: str, payload: dict[str, Any], settings: PromSettings) -> SourceOrder:
    """The Prom order as an orderflow order, or a `MappingError` naming the field."""
    source_order_id = source_id(payload)
    phone = text(payload.get("phone"))
    if not phone:
        raise MappingError("phone", "no phone number")
    lines = []
    for n, item in enumerate(payload.get("products") or []):
        if not isinstance(item, dict):
            raise MappingError(f"products[{n}]", "not a product")
        sku = text(item.get("sku")) or text(item.get("external_id")) or f"prom-{item.get('id')}"
        lines.append(
            {
                "sku": sku,
                "name": text(item.get("name")),
                "quantity": item.get("quantity"),
                "unit_price": amount(item.get("price"), f"products[{n}].price"),
            }
        )
    name = f"{text(payload.get('client_first_name'))} {text(payload.get('client_last_name'))}"
    order = validated(
        {
            "number": order_number(ConnectorKind.PROM, connector, str(source_order_id)),
            "customer": {
                "name": name.strip(),
                "email": text(payload.get("email")),
                "phone": international_phone(phone, "UA"),
                "locale": settings.locale,
            },
            "delivery": _delivery(payload, settings),
            "payment": _payment(payload, settings),
            "lines": lines,
            "currency": "UAH",
            "note": text(payload.get("client_notes")) or None,
        }
    )
    return SourceOrder(str(source_order_id), order)


def status_update(event: dict[str, Any], source_order_id: str) -> tuple[str, dict[str, Any]]:
    """What Prom is told of one of the shop's events (its type and data, as the outbox keeps
    it): the path and the body; ("", {}) when Prom hears nothing of it."""
    order_id, data = int(source_order_id), event["data"]
    if event["type"] == ShopEventType.SHIPPED:
        delivery_type = DELIVERY_TYPES.get(str(data.get("carrier")))
        if delivery_type is None or not data.get("tracking_number"):
            return "", {}
        return "delivery/save_declaration_id", {
            "order_id": order_id,
            "declaration_id": data.get("tracking_number"),
            "delivery_type": delivery_type,
        }
    if event["type"] == ShopEventType.CANCELLED:
        code = str(data.get("reason") or "other")
        reason = CANCELLATION_REASONS.get(code, "another")
        body: dict[str, Any] = {
            "status": CANCELLED,
            "ids": [order_id],
            "cancellation_reason": reason,
        }
        if reason == "another":
            body["cancellation_text"] = code
        return "orders/set_status", body
    status = STATUS_OF.get(ShopEventType(event["type"]))
    if status is None:
        return "", {}
    return "orders/set_status", {"status": status, "ids": [order_id]}
