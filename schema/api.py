"""HTTP API models: what a backend service posts and what it gets back.

Validation lives here so that bad input gets a 422 naming the field and never
reaches a workflow (rule 5).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from babel.numbers import list_currencies
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    DeliveryMethod,
    PaymentMethod,
    Stage,
    StockChoice,
)

_MONEY = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
MAX_MONEY = Decimal("999999999999.99")  # what the money columns hold: NUMERIC(14, 2)
_CURRENCIES = frozenset(list_currencies())

Locale = Literal["uk", "ru", "en"]


class Role(StrEnum):
    """Who a caller is, and so what they may do (starter/services/access.py has the grants)."""

    SERVICE = "service"  # creates orders, reads its own (personal data masked)
    OPERATOR = "operator"  # confirms, rejects, edits, delays, cancels; sees personal data
    SUPPORT = "support"  # finds and reads orders, personal data masked; notes
    ADMIN = "admin"  # everything, plus keys, accounts, erasure and the audit log


def _money_string(value: Any) -> Any:
    if not isinstance(value, str) or not _MONEY.match(value):
        raise ValueError('money must be a decimal string such as "250.00" (at most 12 digits)')
    return value


# An amount of money as the API takes it: a decimal string, never a float.
Money = Annotated[
    Decimal,
    BeforeValidator(_money_string),
    Field(description='Decimal string, e.g. "250.00"', examples=["250.00"]),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Iryna Koval"])
    email: EmailStr = Field(examples=["iryna@example.com"])
    phone: str = Field(
        examples=["+380501234567"], description="Any common notation; stored as E.164."
    )
    locale: Locale = "uk"
    channels: list[Literal["email", "sms", "push"]] = Field(
        default=["email"],
        min_length=1,
        description="Where the customer wants to hear from us, preferred first; the next is the fallback",
    )
    push_token: str | None = Field(
        default=None, max_length=256, description="Needed for the push channel"
    )

    @model_validator(mode="after")
    def _push_needs_token(self) -> CustomerIn:
        if "push" in self.channels and not self.push_token:
            raise ValueError("push_token is required for the push channel")
        return self

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"not a phone number in international format: {exc}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class AddressIn(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["UA"])
    city: str = Field(min_length=1, max_length=120)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    postal_code: str = Field(min_length=1, max_length=20)


class DeliveryIn(_Strict):
    method: DeliveryMethod
    speed: Literal["standard", "express"] = "standard"
    address: AddressIn | None = None
    pickup_point: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _address_for_shipping(self) -> DeliveryIn:
        if self.method in (DeliveryMethod.COURIER, DeliveryMethod.POST) and self.address is None:
            raise ValueError(f"address is required for delivery by {self.method}")
        return self


class PaymentIn(_Strict):
    method: PaymentMethod


class LineIn(_Strict):
    """One order line, as the shop posts it and as an operator edits it."""

    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=100_000, strict=True)
    unit_price: Money


def lines_total(lines: list[LineIn]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))


def _total_fits(lines: list[LineIn] | None) -> None:
    if lines is not None and lines_total(lines) > MAX_MONEY:
        raise ValueError(f"the lines add up to more than {MAX_MONEY}")


# The order from the foundation issue: the OpenAPI example, and the base of tests and benchmarks.
SAMPLE_ORDER: dict[str, Any] = {
    "number": "SHOP-1001",
    "customer": {
        "name": "Iryna Koval",
        "email": "iryna@example.com",
        "phone": "+380501234567",
        "locale": "uk",
    },
    "delivery": {
        "method": "courier",
        "address": {
            "country": "UA",
            "city": "Kyiv",
            "line1": "Khreshchatyk 1",
            "postal_code": "01001",
        },
    },
    "payment": {"method": "prepaid"},
    "lines": [{"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "250.00"}],
    "currency": "UAH",
}


def sample_order(tag: str, **overrides: Any) -> dict[str, Any]:
    """SAMPLE_ORDER with a number and e-mail of its own (`tag`), and top-level fields replaced."""
    order = copy.deepcopy(SAMPLE_ORDER)
    order["number"] = f"SHOP-{tag}"
    order["customer"]["email"] = f"iryna.{tag}@example.com"
    order.update(overrides)
    return order


class OrderCreate(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [SAMPLE_ORDER]})

    number: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    customer: CustomerIn
    delivery: DeliveryIn
    payment: PaymentIn
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    currency: str = Field(examples=["UAH"])
    note: str | None = Field(default=None, max_length=1000, description="Customer's wishes")

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in _CURRENCIES:
            raise ValueError("not an ISO 4217 currency code")
        return value

    @model_validator(mode="after")
    def _total_fits(self) -> OrderCreate:
        _total_fits(self.lines)
        return self

    @property
    def total(self) -> Decimal:
        return lines_total(self.lines)

    def fingerprint(self) -> str:
        """Same order, same fingerprint: decides between a retry (200) and a conflict (409)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class OrderLinks(BaseModel):
    self: str
    temporal_ui: str


class OrderAccepted(BaseModel):
    order_id: str
    number: str
    status: CustomerStatus
    links: OrderLinks


class LineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


class CustomerOut(BaseModel):
    """Masked unless the caller's role may read personal data (and that read is audited)."""

    name: str
    email: str
    phone: str
    locale: str
    address: str | None = Field(default=None, description="Only when personal data is shown")


class NoteOut(BaseModel):
    at: datetime | None
    author: str
    text: str
    customer_contact: bool = False


class FlagsOut(BaseModel):
    needs_action: bool
    sla_breached: bool
    payment_failed: bool


class OrderSummary(BaseModel):
    """One row of a search: enough to pick the order, personal data masked."""

    order_id: str
    number: str
    stage: Stage
    status: CustomerStatus
    total: Decimal
    currency: str
    customer: str
    created_at: datetime
    flags: FlagsOut


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last"
    )


class EventOut(BaseModel):
    at: datetime
    type: str
    stage: str
    actor: str
    detail: dict[str, Any]


class NotificationOut(BaseModel):
    kind: str
    channel: str
    recipient: str
    status: str
    sent_at: datetime | None


class OrderOut(BaseModel):
    order_id: str
    number: str
    stage: Stage
    status: CustomerStatus
    delivery_method: DeliveryMethod
    payment_method: PaymentMethod
    currency: str
    total: Decimal
    expected_date: date | None
    created_at: datetime
    customer: CustomerOut
    lines: list[LineOut]
    timeline: list[EventOut]
    notifications: list[NotificationOut]
    notes: list[NoteOut]
    documents: list[str]
    flags: FlagsOut
    tracking_number: str | None
    tracking_url: str | None
    payment_url: str | None
    seconds_in_stage: dict[str, float] = Field(description="Time spent in each stage so far")
    workflow: dict[str, Any] | None = Field(
        description="Live answer of the workflow's `status` query; null if Temporal is unreachable"
    )
    links: OrderLinks


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


# --- Operator actions (each becomes a workflow update) ---------------------------------------


class ConfirmIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"final_price": "450.00", "note": "discount agreed by phone"}]
        }
    )

    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Replaces the order's lines"
    )
    final_price: Money | None = Field(
        default=None, description="The total to charge, when it could not be computed"
    )
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _sane(self) -> ConfirmIn:
        _total_fits(self.lines)
        if self.final_price is not None and self.final_price <= 0:
            raise ValueError("final_price must be positive")
        return self


class RejectIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "wholesale orders go through the B2B desk"}]}
    )

    reason: str = Field(min_length=1, max_length=500)


class StockDecisionIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"choice": "backorder", "note": "customer will wait"}]}
    )

    choice: StockChoice
    alternative_lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)] | None = None
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _total_fits(self) -> StockDecisionIn:
        _total_fits(self.alternative_lines)
        return self


class DelayIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "supplier_late", "new_date": "2026-12-10"}]}
    )

    reason: DelayReason = Field(description="Told to the customer in their language")
    new_date: date


class CancelIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "customer_request", "note": "asked by phone"}]}
    )

    reason: CancelReason
    note: str = Field(default="", max_length=500)


class NoteIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Customer asked to call before delivery"}]}
    )

    text: str = Field(min_length=1, max_length=2000)
    customer_contact: bool = Field(
        default=False,
        description='The customer contacted support about the order (e.g. "where is my order?"); '
        "the reports count these",
    )


class ActionOut(BaseModel):
    """What an accepted action left the order at."""

    accepted: bool
    stage: Stage
    status: CustomerStatus


# --- The customer's answers (public links) -----------------------------------------------------


class CustomerStockChoiceIn(_Strict):
    choice: StockChoice = Field(description="ship_available, backorder or cancel")

    @model_validator(mode="after")
    def _no_alternative(self) -> CustomerStockChoiceIn:
        if self.choice == StockChoice.ALTERNATIVE:
            raise ValueError(
                "an alternative is offered by an operator; choose ship_available, backorder or cancel"
            )
        return self


class FeedbackIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rating": 5, "comment": "Fast and well packed"}]}
    )

    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _some_score(self) -> FeedbackIn:
        if self.rating is None and self.nps is None:
            raise ValueError("give a rating (1-5) or an nps score (0-10)")
        return self


class FeedbackOut(BaseModel):
    accepted: bool
    duplicate: bool
    feedback_id: str | None = None


# --- Administration ------------------------------------------------------------------------------


class SessionIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)


class KeyIn(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["shop-backend"])
    role: Role


class AccountIn(_Strict):
    username: str = Field(
        min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$", examples=["olena"]
    )
    password: str = Field(min_length=10, max_length=200)
    role: Role


class ErasureIn(_Strict):
    email: EmailStr
