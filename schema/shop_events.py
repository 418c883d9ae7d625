"""Order events for the shop's backend: the types a subscription may ask for, and how each
delivery is signed.

Every delivery is a POST of JSON `{"id", "type", "created_at", "data": {"order_id",
"number", "stage", "status", ...}}` with the header

    Orderflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

(the same scheme as the providers' webhooks, schema/webhooks.py). `id` is the event's and
stays the same on every attempt and redelivery: receivers deduplicate by it. No payload
holds a name, e-mail, phone or address: codes, amounts, dates, the order's number and the
carrier's tracking number only.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from schema.webhooks import sign, verify

HEADER = "Orderflow-Signature"

__all__ = ["HEADER", "ShopEventType", "body_of", "sign", "verify"]


class ShopEventType(StrEnum):
    RECEIVED = "order.received"
    CONFIRMED = "order.confirmed"
    AWAITING_ACTION = "order.awaiting_action"  # a person must act: operator or customer
    PAID = "order.paid"
    PAYMENT_FAILED = "order.payment_failed"
    PACKED = "order.packed"
    SHIPPED = "order.shipped"
    DELIVERED = "order.delivered"
    DELAYED = "order.delayed"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"  # part of the payment back: an operator's refund, items not packed
    FEEDBACK_RECEIVED = "feedback.received"
    INCIDENT_OPENED = "incident.opened"
    # A customer return (one order may have several: `return_id` tells them apart)
    RETURN_REQUESTED = "return.requested"
    RETURN_APPROVED = "return.approved"  # by policy or an operator: the label is on its way
    RETURN_DECLINED = "return.declined"  # not approved, or the parcel never came
    RETURN_RECEIVED = "return.received"  # the parcel is back at the warehouse
    RETURN_REFUNDED = "return.refunded"  # after inspection, or an exchange's difference
    RETURN_EXCHANGED = "return.exchanged"  # the replacement order is placed


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): the same for every attempt of one event."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
