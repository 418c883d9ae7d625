"""Shopify: its `orders/create` webhook mapped into `OrderCreate`. The body is the REST Admin
API's Order (https://shopify.dev/docs/api/admin-rest/latest/resources/order).

What is read: the customer (`shipping_address`'s name, else `customer`'s; `email`; the phone
of the shipping address, the order or the customer, read in the address's country),
`line_items` (SKU, else `shopify-<variant_id>`; `title`, `quantity`, `price`), the delivery
(a Nova Poshta branch when the order's `note_attributes` hold `branch_ref_attribute` — the
convention: the checkout adds the cart attributes `novaposhta_branch_ref` and
`novaposhta_branch_number`, which Shopify passes on as note attributes; else
`shipping_address` to the door), the payment (cash on delivery when a name in
`payment_gateway_names` is one of `cod_gateways`; `financial_status: paid` is paid at the
source), `currency`, `note`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from schema.api.fields import Locale
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

SIGNATURE_HEADER = "X-Shopify-Hmac-SHA256"
DELIVERY_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
TOPICS = frozenset({"orders/create"})


class ShopifySettings(BaseModel):
    locale: Locale = "uk"
    branch_ref_attribute: str = "novaposhta_branch_ref"
    branch_number_attribute: str = "novaposhta_branch_number"
    # Shopify's manual payment method for cash on delivery is named so by default.
    cod_gateways: list[str] = Field(default=["Cash on Delivery (COD)"])


def _attribute(payload: dict[str, Any], name: str) -> str:
    for entry in payload.get("note_attributes") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return text(entry.get("value"))
    return ""


def _delivery(payload: dict[str, Any], settings: ShopifySettings) -> dict[str, Any]:
    ref = _attribute(payload, settings.branch_ref_attribute)
    if ref:
        number = _attribute(payload, settings.branch_number_attribute) or None
        return {
            "method": "branch",
            "branch": {"carrier": "novaposhta", "ref": ref, "number": number},
        }
    address = payload.get("shipping_address")
    if not isinstance(address, dict):
        raise MappingError("shipping_address", "neither a shipping address nor a branch")
    return {
        "method": "courier",
        "address": {
            "country": text(address.get("country_code")),
            "city": text(address.get("city")),
            "line1": text(address.get("address1")),
            "line2": text(address.get("address2")) or None,
            "postal_code": text(address.get("zip")),
        },
    }


def _payment(payload: dict[str, Any], settings: ShopifySettings) -> dict[str, str]:
    if set(payload.get("payment_gateway_names") or []) & set(settings.cod_gateways):
        return {"method": "cod"}
    if payload.get("financial_status") == "paid":
        raise paid_at_source("financial_status")
    return {"method": "prepaid"}


def map_order(connector: str, payload: dict[str, Any], settings: ShopifySettings) -> SourceOrder:
    """The Shopify order as an orderflow order, or a `MappingError` naming the field."""
    source_order_id = source_id(payload)
    address = payload.get("shipping_address") or {}
    customer = payload.get("customer") or {}
    phone = text(address.get("phone")) or text(payload.get("phone")) or text(customer.get("phone"))
    if not phone:
        raise MappingError("shipping_address.phone", "no phone number")
    name = text(address.get("name")) or (
        f"{text(customer.get('first_name'))} {text(customer.get('last_name'))}".strip()
    )
    lines = [
        {
            "sku": text(item.get("sku")) or f"shopify-{item.get('variant_id')}",
            "name": text(item.get("title")) or text(item.get("name")),
            "quantity": item.get("quantity"),
            "unit_price": item.get("price"),
        }
        for item in payload.get("line_items") or []
    ]
    order = validated(
        {
            "number": order_number(ConnectorKind.SHOPIFY, connector, str(source_order_id)),
            "customer": {
                "name": name,
                "email": text(payload.get("email")) or text(payload.get("contact_email")),
                "phone": international_phone(phone, text(address.get("country_code"))),
                "locale": settings.locale,
            },
            "delivery": _delivery(payload, settings),
            "payment": _payment(payload, settings),
            "lines": lines,
            "currency": text(payload.get("currency")),
            "note": text(payload.get("note")) or None,
        }
    )
    return SourceOrder(str(source_order_id), order)
