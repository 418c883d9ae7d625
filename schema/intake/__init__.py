"""Orders that arrive from a shop platform (WooCommerce, Shopify; Prom.ua and Rozetka to
come): a connector per shop, of one `ConnectorKind`. Each source has a module of its own
here that is pure — its webhook signature, and its order mapped into today's `OrderCreate`
(or a `MappingError` naming the field) — so that the API and, later, activities share it.
`credentials.py` keeps a connector's credentials sealed (or by reference to the
environment)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import phonenumbers
from pydantic import ValidationError

from schema.api.orders import OrderCreate


class ConnectorKind(StrEnum):
    WOOCOMMERCE = "woocommerce"
    SHOPIFY = "shopify"
    PROM = "prom"
    ROZETKA = "rozetka"


# The credentials each kind needs (their names; the values are write-only).
CONNECTOR_CREDENTIALS: dict[ConnectorKind, frozenset[str]] = {
    # The secret the shop's webhook is created with (WooCommerce: the webhook's Secret;
    # Shopify: the app's client secret, or the store's webhook signing key).
    ConnectorKind.WOOCOMMERCE: frozenset({"webhook_secret"}),
    ConnectorKind.SHOPIFY: frozenset({"webhook_secret"}),
    ConnectorKind.PROM: frozenset({"api_token"}),
    ConnectorKind.ROZETKA: frozenset({"username", "password"}),
}

# The prefix of the order numbers each kind's orders get: `<prefix>-<connector>-<source id>`.
NUMBER_PREFIX: dict[ConnectorKind, str] = {
    ConnectorKind.WOOCOMMERCE: "WC",
    ConnectorKind.SHOPIFY: "SH",
    ConnectorKind.PROM: "PROM",
    ConnectorKind.ROZETKA: "RZ",
}


class MappingError(Exception):
    """The source's order cannot become an orderflow order: `field` names where (in the
    source's words, or in `OrderCreate`'s when only our validation says so)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def paid_at_source(field: str) -> MappingError:
    """An order the source says is paid: taking it would ask the customer to pay again."""
    return MappingError(
        field,
        "paid at the source: orderflow cannot take an order paid outside it yet "
        "(it would ask the customer to pay again)",
    )


def source_id(payload: dict[str, Any]) -> int:
    """The source's order id (a positive integer at every source taken so far)."""
    found = payload.get("id")
    if not isinstance(found, int) or found <= 0:
        raise MappingError("id", "no order id")
    return found


@dataclass(frozen=True)
class SourceOrder:
    """An order as a source gave it, mapped: its id there and today's order-creation input."""

    source_order_id: str
    order: OrderCreate


def order_number(kind: ConnectorKind, connector: str, source_order_id: str) -> str:
    return f"{NUMBER_PREFIX[kind]}-{connector}-{source_order_id}"


def validated(draft: dict[str, Any]) -> OrderCreate:
    """The draft as `OrderCreate` validates it (the same rules as `POST /v1/orders`), or a
    `MappingError` naming the first field it refuses."""
    try:
        return OrderCreate.model_validate(draft)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "order"
        raise MappingError(field, first["msg"]) from None


def international_phone(phone: str, country: str | None) -> str:
    """A phone as a customer typed it at checkout ("050 123 45 67"), read in the country of
    their address; left as typed when it cannot be read (validation then names it)."""
    try:
        parsed = phonenumbers.parse(phone, (country or "UA").upper())
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def text(value: object) -> str:
    """A source's string field, stripped; anything else (None, a number) as empty."""
    return value.strip() if isinstance(value, str) else ""


def signature(secret: str, body: bytes) -> str:
    """WooCommerce's and Shopify's webhook signature alike: base64(HMAC-SHA256(raw body,
    secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_matches(secret: str, body: bytes, given: str) -> bool:
    """Whether `given` is the body's signature, compared in constant time."""
    return hmac.compare_digest(signature(secret, body).encode(), given.strip().encode())
