"""WooCommerce: its order webhooks (`order.created`, `order.updated`) mapped into
`OrderCreate`. The body is the order as WooCommerce's REST API (v3) shows it
(https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties).

What is read: `billing` (the customer: name, e-mail, phone read in the billing country),
`shipping` (the door's address; else billing's), `line_items` (SKU, else `wc-<product_id>`;
name, quantity, `price`), `shipping_lines` (a Nova Poshta branch when the method is one of
`branch_methods`, the branch's Ref in the line's meta `branch_ref_meta`; `local_pickup`:
pickup at the shop), `payment_method` (cash on delivery when one of `cod_methods`),
`date_paid`, `currency`, `customer_note`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
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

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
DELIVERY_HEADER = "X-WC-Webhook-Delivery-ID"
TOPIC_HEADER = "X-WC-Webhook-Topic"
TOPICS = frozenset({"order.created", "order.updated"})


class WooSettings(BaseModel):
    """A WooCommerce connector's settings (defaults: the plugin "Shipping Nova Poshta for
    WooCommerce" by WP Unit, which keeps the branch's Ref as `warehouse_id` on its shipping
    line, and WooCommerce's own cash-on-delivery gateway)."""

    locale: Locale = "uk"
    branch_methods: list[str] = Field(default=["shipping_nova_poshta_for_woocommerce"])
    branch_ref_meta: str = "warehouse_id"
    cod_methods: list[str] = Field(default=["cod", "shipping_nova_poshta_for_woocommerce_cod"])


def is_ping(body: bytes) -> bool:
    """WooCommerce's ping when a webhook is saved: a form body `webhook_id=<id>`, unsigned."""
    name, _, value = body.decode("ascii", "replace").partition("=")
    return name == "webhook_id" and value.isdigit()


def _meta(entries: object, key: str) -> str:
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("key") == key:
            return text(entry.get("value"))
    return ""


def _price(value: object, field: str) -> str:
    try:
        return str(Decimal(str(value)).quantize(Decimal("0.01")))
    except InvalidOperation:
        raise MappingError(field, f"not an amount: {value!r}") from None


def _delivery(payload: dict[str, Any], settings: WooSettings) -> dict[str, Any]:
    methods = [line for line in payload.get("shipping_lines") or [] if isinstance(line, dict)]
    for n, line in enumerate(methods):
        if line.get("method_id") in settings.branch_methods:
            ref = _meta(line.get("meta_data"), settings.branch_ref_meta)
            if not ref:
                raise MappingError(
                    f"shipping_lines[{n}].meta_data.{settings.branch_ref_meta}",
                    "a Nova Poshta branch order without the branch's Ref",
                )
            return {"method": "branch", "branch": {"carrier": "novaposhta", "ref": ref}}
        if line.get("method_id") == "local_pickup":
            return {"method": "pickup"}
    shipping = payload.get("shipping") or {}
    if not text(shipping.get("address_1")):
        shipping = payload.get("billing") or {}
    return {
        "method": "courier",
        "address": {
            "country": text(shipping.get("country")),
            "city": text(shipping.get("city")),
            "line1": text(shipping.get("address_1")),
            "line2": text(shipping.get("address_2")) or None,
            "postal_code": text(shipping.get("postcode")),
        },
    }


def _payment(payload: dict[str, Any], settings: WooSettings) -> dict[str, str]:
    if payload.get("payment_method") in settings.cod_methods:
        return {"method": "cod"}
    if payload.get("date_paid") or payload.get("date_paid_gmt"):
        raise paid_at_source("date_paid")
    return {"method": "prepaid"}


def map_order(connector: str, payload: dict[str, Any], settings: WooSettings) -> SourceOrder:
    """The WooCommerce order as an orderflow order, or a `MappingError` naming the field."""
    source_order_id = source_id(payload)
    billing = payload.get("billing") or {}
    phone = text(billing.get("phone"))
    if not phone:
        raise MappingError("billing.phone", "no phone number")
    lines = []
    for n, item in enumerate(payload.get("line_items") or []):
        lines.append(
            {
                "sku": text(item.get("sku")) or f"wc-{item.get('product_id')}",
                "name": text(item.get("name")),
                "quantity": item.get("quantity"),
                "unit_price": _price(item.get("price"), f"line_items[{n}].price"),
            }
        )
    order = validated(
        {
            "number": order_number(ConnectorKind.WOOCOMMERCE, connector, str(source_order_id)),
            "customer": {
                "name": f"{text(billing.get('first_name'))} {text(billing.get('last_name'))}".strip(),
                "email": text(billing.get("email")),
                "phone": international_phone(phone, text(billing.get("country"))),
                "locale": settings.locale,
            },
            "delivery": _delivery(payload, settings),
            "payment": _payment(payload, settings),
            "lines": lines,
            "currency": text(payload.get("currency")),
            "note": text(payload.get("customer_note")) or None,
        }
    )
    return SourceOrder(str(source_order_id), order)
