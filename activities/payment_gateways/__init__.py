"""The payment port: one interface over the shop's payment provider, an adapter per provider.

`PaymentGateway` is what the payment activities call (create a payment link, ask its status,
refund all or part of it, withdraw the link); `CallbackReader` is what the API's webhook
route of each real provider calls to turn a callback (headers and raw body) into a verified,
normalised `PaymentNotice`, or refuse it (`BadSignature`, `InvalidCallback`). The
simulated adapter (today's invented API) reports through the generic signed webhooks
instead (starter/services/provider_events.receive_event).

Amounts cross the port as `Decimal` in the currency's major unit; each adapter converts to
what its API wants (`minor_units`: kopecks, cents, by the currency's exponent), never
through a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from babel.numbers import get_currency_precision

from schema.webhooks import BadSignature

__all__ = [
    "BadSignature",
    "CallbackReader",
    "CreatedPayment",
    "InvalidCallback",
    "Notice",
    "PaymentGateway",
    "PaymentNotice",
    "PaymentRequest",
    "ProviderPayment",
    "RefundReceipt",
    "from_minor_units",
    "minor_units",
]


class InvalidCallback(Exception):
    """A callback whose signature holds but whose body is not one this provider sends."""


class Notice(StrEnum):
    """What a provider's callback says happened."""

    SUCCEEDED = "succeeded"  # the money arrived
    FAILED = "failed"  # an attempt failed (the customer may try again)
    REFUNDED = "refunded"  # money went back (a refund or a reversal)
    PENDING = "pending"  # on its way (processing, hold, 3-D Secure, ...): recorded only
    EXPIRED = "expired"  # the link ran out unpaid: recorded only (the order's own timer decides)


@dataclass(frozen=True)
class PaymentRequest:
    order_id: str
    number: str  # the shop's order number: the payment's description
    amount: Decimal
    currency: str  # ISO 4217
    expires_at: datetime
    callback_url: str  # where the provider reports (our webhook route for it)
    return_url: str  # where the customer goes after paying (the order's status page)
    idempotency_key: str


@dataclass(frozen=True)
class CreatedPayment:
    payment_id: str  # what the provider calls it; callbacks name it
    url: str  # the page the customer pays on
    expires_at: datetime  # the provider's own limit may come before the one asked


@dataclass(frozen=True)
class PaymentNotice:
    """A verified callback, in orderflow's words: no card, name or contact of the payer."""

    event_id: str  # the provider's id of the event (or one built from what makes it unique)
    outcome: Notice
    order_ref: str | None  # our order id as we gave it to the provider
    payment_id: str | None  # None: the event names the order only (its one payment)
    amount: Decimal  # for REFUNDED: what this refund gave back
    currency: str
    at: datetime | None = None  # the provider's time of the change: older news changes nothing
    reason: str = ""  # a PaymentFailure code, for FAILED
    refund_id: str | None = None  # the provider's id (or our reference) of the refund
    status: str = ""  # the provider's own word, for the log


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as its provider sees it now."""

    outcome: Notice
    amount: Decimal
    currency: str
    refunded: Decimal  # given back so far, all refunds together


@dataclass(frozen=True)
class RefundReceipt:
    refund_id: str | None
    confirmed: bool  # the answer itself says the money went back (else a callback will)


class PaymentGateway(Protocol):
    name: str
    # True when the provider takes an idempotency key for refunds (a retried refund is
    # answered with the first one's result); otherwise the activity asks `status` before
    # it retries a refund whose answer was lost.
    takes_refund_key: bool

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment: ...

    async def status(self, payment_id: str) -> ProviderPayment: ...

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt: ...

    async def cancel(self, payment_id: str) -> None: ...


class CallbackReader(Protocol):
    name: str

    async def read_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """The callback verified and read; raises BadSignature or InvalidCallback."""
        ...


def minor_units(amount: Decimal, currency: str) -> int:
    """500.00 UAH -> 50000 (kopecks): by the currency's exponent (JPY has none)."""
    exponent = get_currency_precision(currency)
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more than {exponent} decimal places")
    return int(scaled)


def from_minor_units(value: int, currency: str) -> Decimal:
    exponent = get_currency_precision(currency)
    return Decimal(value).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def major(value: Any) -> Decimal:
    """A provider's amount in major units (a JSON number read as Decimal, or a string)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def from_epoch_ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value not in (None, "") else None
