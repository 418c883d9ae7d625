"""HTTP API models: what a backend service posts and what it gets back.

Validation lives here so that bad input gets a 422 naming the field and never
reaches a workflow (rule 5).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from babel.numbers import list_currencies
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict, JsonSchemaValue, JsonValue
from pydantic_core import CoreSchema, core_schema

from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    DeliveryMethod,
    FulfilmentStatus,
    InspectionFinding,
    ParcelChoice,
    PaymentMethod,
    PaymentStatus,
    RefundReason,
    ReturnDecline,
    ReturnReason,
    ReturnResolution,
    ReturnStatus,
    Stage,
    StepChoice,
    StockChoice,
    WaitingFor,
)
from schema.shop_events import ShopEventType

_MONEY = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_POSITIVE = r"^(?!0*(\.0*)?$)"  # at least one digit that is not 0
MAX_MONEY = Decimal("999999999999.99")  # an amount: NUMERIC(14, 2)
MAX_LINES, MAX_QUANTITY = 500, 100_000
# An order's total holds any lines the API admits (500 × 100,000 × MAX_MONEY < 10^20):
# NUMERIC(22, 2), so that every order the OpenAPI calls valid is one the database can keep.
_CURRENCIES = frozenset(list_currencies())
_CURRENCY_CODES: list[JsonValue] = [*sorted(_CURRENCIES)]

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


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


_MONEY_SCHEMA = {
    "type": "string",
    "pattern": _MONEY.pattern,
    "description": 'Decimal string, e.g. "250.00": at most 12 digits before the point, 2 after',
    "examples": ["250.00"],
}

# An amount of money as the API takes it: a decimal string, never a float; at most what the
# money columns hold (NUMERIC(14, 2)).
Money = Annotated[Decimal, BeforeValidator(_money_string), WithJsonSchema(_MONEY_SCHEMA)]
PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_money_string),
    AfterValidator(_positive),
    WithJsonSchema({**_MONEY_SCHEMA, "pattern": _POSITIVE + _MONEY.pattern[1:]}),
]


def _whole(value: Any) -> Any:
    """JSON's integers: 3 and 3.0 alike; never a string or a boolean."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema's `integer` means it (strict otherwise: "3" and true are refused).
WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]

# What no text field takes: control characters (C0, DEL, C1), lone surrogates and the Unicode
# line and paragraph separators; text that may run over lines keeps tab, LF and CR.
_REFUSED = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_REFUSED_IN_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"


@dataclass(frozen=True)
class _Printable:
    """Printable text, never only whitespace; the same rule is the field's OpenAPI `pattern`."""

    lines: bool

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        refused = _REFUSED_IN_LINES if self.lines else _REFUSED
        json_schema["pattern"] = rf"^(|[^{refused}]*[^\s{refused}][^{refused}]*)$"
        return json_schema

    def _check(self, value: str) -> str:
        allowed = "\t\n\r" if self.lines else ""
        for char in value:
            if char not in allowed and unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
                where = "" if self.lines else " (one line of text)"
                raise ValueError(f"control character U+{ord(char):04X} is not allowed{where}")
        if value.isspace():
            raise ValueError("must not be blank")
        return value


# One line of text: names, SKUs, addresses, reasons, search terms. Newlines would break the
# headers and one-line places (e-mail subjects, SMS, labels) such a value goes into.
OneLine = Annotated[str, _Printable(lines=False)]
# Text that may run over lines: notes and comments, read by people on a page.
MultiLine = Annotated[str, _Printable(lines=True)]


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


# An e-mail address that can receive mail: what `format: email` says, less the special-use
# domains (.test, .localhost, .invalid…) that the address validator refuses.
Email = Annotated[
    EmailStr,
    Field(
        json_schema_extra={
            "pattern": "^(?!.*@(.*\\.)?("
            + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
            + ")\\.?$)"
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_Strict):
    # The rule of `_push_needs_token`, as the schema states it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"channels": {"not": {"contains": {"const": "push"}}}}},
                {
                    "required": ["push_token"],
                    "properties": {"push_token": {"type": "string", "minLength": 1}},
                },
            ]
        }
    )

    name: OneLine = Field(min_length=1, max_length=200, examples=["Iryna Koval"])
    email: Email = Field(examples=["iryna@example.com"])
    # Its rule is the `phone` format (tests/schemathesis_hooks.py generates such numbers).
    phone: str = Field(
        examples=["+380501234567"],
        description="Any common notation of a number that exists in its country's numbering "
        "plan, with the country code; stored as E.164.",
        json_schema_extra={"format": "phone"},
    )
    locale: Locale = "uk"
    channels: list[Literal["email", "sms", "push"]] = Field(
        default=["email"],
        min_length=1,
        description="Where the customer wants to hear from us, preferred first; the next is the fallback",
    )
    push_token: OneLine | None = Field(
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
        _Printable(lines=False)._check(value)
        if len(value) > 64:
            raise ValueError("a phone number is at most 64 characters")
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"not a phone number in international format: {exc}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class AddressIn(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["UA"])
    city: OneLine = Field(min_length=1, max_length=120)
    line1: OneLine = Field(min_length=1, max_length=200)
    line2: OneLine | None = Field(default=None, max_length=200)
    postal_code: OneLine = Field(min_length=1, max_length=20)


class DeliveryIn(_Strict):
    # The rule of `_address_for_shipping`, as the schema states it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"method": {"const": DeliveryMethod.PICKUP.value}}},
                {"required": ["address"], "properties": {"address": {"type": "object"}}},
            ]
        }
    )

    method: DeliveryMethod
    speed: Literal["standard", "express"] = "standard"
    address: AddressIn | None = None
    pickup_point: OneLine | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _address_for_shipping(self) -> DeliveryIn:
        if self.method in (DeliveryMethod.COURIER, DeliveryMethod.POST) and self.address is None:
            raise ValueError(f"address is required for delivery by {self.method}")
        return self


class PaymentIn(_Strict):
    # An exchange's replacement order is placed by its return, never posted by a shop.
    method: Literal[PaymentMethod.PREPAID, PaymentMethod.COD] = Field(
        description="prepaid (a payment link) or cod (cash on delivery)"
    )


class LineIn(_Strict):
    """One order line, as the shop posts it and as an operator edits it."""

    sku: OneLine = Field(min_length=1, max_length=64)
    name: OneLine = Field(min_length=1, max_length=200)
    quantity: WholeNumber = Field(gt=0, le=MAX_QUANTITY)
    unit_price: Money


def lines_total(lines: list[LineIn]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))


# An order's lines: 1 to 500.
OrderLines = Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]


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
    lines: OrderLines
    currency: str = Field(examples=["UAH"], json_schema_extra={"enum": _CURRENCY_CODES})
    note: MultiLine | None = Field(default=None, max_length=1000, description="Customer's wishes")

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if value not in _CURRENCIES:
            raise ValueError("not an ISO 4217 currency code")
        return value

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
    action: str | None = Field(
        default=None, description="The operator action this text came with (None: a note)"
    )
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = r"^[0-9]{1,16}_[0-9a-f]{32}$"


def page_cursor(created_at: datetime, order_id: uuid.UUID) -> str:
    """Where the next page starts: after this order (newest first), as `micros_uuidhex`."""
    return f"{(created_at - _EPOCH) // timedelta(microseconds=1)}_{order_id.hex}"


def read_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    micros, _, order_id = cursor.partition("_")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=order_id)


# Every string the pattern admits is a place in the list; any other is a 422 naming `cursor`.
PageCursor = Annotated[
    str,
    Field(pattern=_CURSOR, description="The `next_cursor` of the previous page"),
]


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


class ProgressOut(BaseModel):
    """What the order waits for and may do now, as the read model keeps it (the workflow
    writes it at every step and wait; empty for orders from before it did)."""

    waiting_for: WaitingFor | None
    next_deadline: datetime | None
    allowed_actions: list[str]
    payment_status: PaymentStatus | None
    fulfilment_status: FulfilmentStatus | None


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
    progress: ProgressOut
    workflow: dict[str, Any] | None = Field(
        description="Live answer of the workflow's `status` query, asked only with `live=true` "
        "(its timeline is the latest steps; `timeline` above has them all); null when not "
        "asked, or when it did not come within 2 s (the rest is the read model)"
    )
    workflow_unavailable: str | None = Field(
        default=None,
        description="Why `workflow` is null although asked: Temporal unreachable, or no worker "
        "answered in time",
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

    lines: OrderLines | None = Field(default=None, description="Replaces the order's lines")
    final_price: PositiveMoney | None = Field(
        default=None, description="The total to charge, when it could not be computed"
    )
    note: MultiLine = Field(default="", max_length=500)


class RejectIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "wholesale orders go through the B2B desk"}]}
    )

    reason: OneLine = Field(min_length=1, max_length=500)


class StockDecisionIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"choice": "backorder", "note": "customer will wait"}]}
    )

    choice: StockChoice
    alternative_lines: OrderLines | None = None
    note: MultiLine = Field(default="", max_length=500)


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
    note: MultiLine = Field(default="", max_length=500)


class ResolveIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"choice": "retry"}]})

    choice: StepChoice = Field(
        description="retry the failed step, or skip it (messages and compensation steps only)"
    )


class NoteIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Customer asked to call before delivery"}]}
    )

    text: MultiLine = Field(min_length=1, max_length=2000)
    customer_contact: bool = Field(
        default=False,
        strict=True,
        description='The customer contacted support about the order (e.g. "where is my order?"); '
        "the reports count these",
    )


class ParcelDecisionIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"choice": "reship", "note": "the carrier confirmed the loss"}]
        }
    )

    choice: ParcelChoice = Field(
        description="reship: a second parcel under its own booking; refund: close the order and "
        "refund what is left of the payment; cancel: close it when nothing is left to refund"
    )
    note: MultiLine = Field(default="", max_length=500)


class ActionOut(BaseModel):
    """What an accepted action left the order at."""

    accepted: bool
    stage: Stage
    status: CustomerStatus


# --- The customer's answers (public links) -----------------------------------------------------


# An alternative is offered by an operator: the customer chooses among these.
CUSTOMER_STOCK_CHOICES = (StockChoice.SHIP_AVAILABLE, StockChoice.BACKORDER, StockChoice.CANCEL)


class CustomerStockChoiceIn(_Strict):
    choice: Literal[StockChoice.SHIP_AVAILABLE, StockChoice.BACKORDER, StockChoice.CANCEL] = Field(
        description="ship_available, backorder or cancel"
    )


class CustomerCancelReason(StrEnum):
    """Why the customer cancels, from the status page's list: kept as a code (an order note
    of the cancellation, author `customer`); the order is cancelled as `customer_request`."""

    CHANGED_MIND = "changed_mind"
    ORDERED_BY_MISTAKE = "ordered_by_mistake"
    FOUND_CHEAPER = "found_cheaper"
    DELIVERY_TOO_LONG = "delivery_too_long"
    OTHER = "other"


class CustomerCancelIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "changed_mind"}]})

    reason: CustomerCancelReason


# FeedbackIn's scores as the schema states them (each branch of its anyOf complete).
_RATING: JsonDict = {"type": "integer", "minimum": 1, "maximum": 5}
_NPS: JsonDict = {"type": "integer", "minimum": 0, "maximum": 10}


def _or_null(schema: JsonDict) -> JsonDict:
    return {"anyOf": [schema, {"type": "null"}]}


class LineRatingIn(_Strict):
    sku: OneLine = Field(min_length=1, max_length=64, description="One of the order's SKUs")
    rating: WholeNumber = Field(ge=1, le=5)


class FeedbackIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"rating": 5, "nps": 9, "comment": "Fast and well packed"}],
            # The rule of `_some_score`, as the schema states it.
            "anyOf": [
                {"required": ["rating"], "properties": {"rating": _RATING, "nps": _or_null(_NPS)}},
                {"required": ["nps"], "properties": {"nps": _NPS, "rating": _or_null(_RATING)}},
            ],
        }
    )

    rating: WholeNumber | None = Field(default=None, ge=1, le=5)
    nps: WholeNumber | None = Field(default=None, ge=0, le=10)
    comment: MultiLine | None = Field(default=None, max_length=2000)
    line_ratings: list[LineRatingIn] = Field(
        default=[], max_length=MAX_LINES, description="Optional: a rating 1-5 per line, by SKU"
    )

    @model_validator(mode="after")
    def _some_score(self) -> FeedbackIn:
        if self.rating is None and self.nps is None:
            raise ValueError("give a rating (1-5) or an nps score (0-10)")
        return self


class FeedbackOut(BaseModel):
    accepted: bool
    duplicate: bool = Field(
        description="The order had an answer already: this one replaced it (the order's "
        "workflow keeps acting on the first)"
    )
    feedback_id: str | None = None
    bonus_code: str | None = Field(
        default=None,
        description="The bonus for the next purchase, given for any answer (none when the "
        "shop's policy gives none)",
    )


# --- The customer's status page (its JSON twin) and "my orders" ----------------------------


class StepOut(BaseModel):
    status: CustomerStatus
    state: Literal["done", "current", "upcoming"]


class CustomerLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class HistoryOut(BaseModel):
    at: datetime
    event: str = Field(description="The step, e.g. order.confirmed, order.shipped")
    text: str = Field(description="The step in the page's language")


class DelayOut(BaseModel):
    reason: DelayReason
    new_date: date | None


class CancellationOut(BaseModel):
    reason: CancelReason
    refund: Decimal | None = Field(description="What goes back to the customer's card")
    refund_returned: bool = Field(description="The payment provider confirmed the refund")


class TrackingOut(BaseModel):
    carrier: str | None
    tracking_number: str
    tracking_url: str | None


class PickupOut(BaseModel):
    point: str | None = Field(description="The pickup point; null: the shop's own counter")
    hold_until: datetime | None = Field(
        description="Kept until then (from when it was ready, by the shop's current policy)"
    )


class PaymentOut(BaseModel):
    status: PaymentStatus | None
    url: str | None = Field(description="The payment link, only while payment is due")


class ContactOut(BaseModel):
    """The contacts the order was placed with, masked (erased: "erased")."""

    name: str
    email: str
    phone: str
    city: str | None


class SupportOut(BaseModel):
    email: str
    phone: str


class CustomerActionsOut(BaseModel):
    """What the customer may do now (the workflow's validators decide when it is done)."""

    pay: bool
    stock_choices: list[StockChoice]
    cancel: bool
    feedback: bool = Field(description="The order is delivered: it may be rated (again)")
    feedback_bonus: bool = Field(description="Answering earns a bonus for the next purchase")
    cancel_reasons: list[CustomerCancelReason]


class CustomerFeedbackOut(BaseModel):
    rating: int | None
    nps: int | None
    comment: str | None
    line_ratings: dict[str, int]
    bonus_code: str | None


class CustomerOrderOut(BaseModel):
    """One order as its customer sees it through the status link: from the read model only,
    personal data masked; texts in `locale`."""

    number: str
    locale: Locale
    created_at: datetime
    stage: Stage
    status: CustomerStatus
    status_text: str
    delivery_method: DeliveryMethod
    payment_method: PaymentMethod
    steps: list[StepOut]
    waiting_for: WaitingFor | None
    waiting_text: str | None
    waiting_until: datetime | None
    expected_date: date | None
    lines: list[CustomerLineOut]
    total: Decimal
    currency: str
    delay: DelayOut | None
    cancellation: CancellationOut | None
    tracking: TrackingOut | None
    pickup: PickupOut | None
    payment: PaymentOut
    receipt_url: str | None
    contact: ContactOut
    timezone: str = Field(description="The customer's time zone (times here are in UTC)")
    support: SupportOut
    actions: CustomerActionsOut
    history: list[HistoryOut]
    feedback: CustomerFeedbackOut | None


class CustomerLinkIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "iryna@example.com"}]})

    email: Email
    locale: Locale | None = Field(
        default=None, description="The e-mail's language; by default that of the latest order"
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class CustomerLinkAccepted(BaseModel):
    accepted: Literal[True] = True
    detail: str = Field(
        description="The same answer whether or not the address has orders: if it has, a link "
        "to them is on its way"
    )


# --- Order events for the shop's backend (subscriptions) ---------------------------------------


# An http(s) URL with a host name (or address) and a path: where the shop receives events.
HttpUrl = Annotated[
    str,
    Field(
        min_length=10,
        max_length=500,
        pattern=r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?$",
        examples=["https://shop.example.com/hooks/orderflow"],
    ),
]
EventTypes = Annotated[list[ShopEventType], Field(min_length=1, max_length=len(ShopEventType))]


class SubscriptionIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/hooks/orderflow",
                    "events": ["order.confirmed", "order.shipped", "order.delivered"],
                }
            ]
        }
    )

    url: HttpUrl
    events: EventTypes


class SubscriptionPatch(_Strict):
    url: HttpUrl | None = None
    events: EventTypes | None = None
    active: bool | None = Field(default=None, strict=True, description="false pauses deliveries")


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[ShopEventType]
    active: bool
    scope: Literal["all_orders", "own_orders"] = Field(
        description="all_orders: an admin's; own_orders: the orders the subscribing key created"
    )
    created_by: str
    created_at: datetime
    pending: int = Field(description="Deliveries waiting to be sent or retried")
    failed: int = Field(description="Deliveries given up (redeliver them by hand)")


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="Signs every delivery (Orderflow-Signature); shown this once only"
    )


class DeliveryOut(BaseModel):
    id: int
    event_id: uuid.UUID
    type: ShopEventType
    order_id: uuid.UUID
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = Field(description="Pass as `before` for older deliveries")


# --- Administration ------------------------------------------------------------------------------


class SessionIn(_Strict):
    username: OneLine = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"


class KeyIn(_Strict):
    name: OneLine = Field(min_length=1, max_length=100, examples=["shop-backend"])
    role: Role


class AccountIn(_Strict):
    username: str = Field(
        min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$", examples=["olena"]
    )
    password: str = Field(min_length=10, max_length=200)
    role: Role


class AccountCreated(BaseModel):
    username: str
    role: Role


class AccountOut(AccountCreated):
    disabled: bool
    sessions: int = Field(description="Open sessions")
    created_at: datetime | None


class SessionsRevoked(BaseModel):
    username: str
    sessions: int = Field(description="How many sessions ended")


class KeyIssued(BaseModel):
    name: str
    role: Role
    key: str = Field(description="Shown this once; only its hash is stored")


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    revoked: bool


class KeyRevoked(BaseModel):
    id: uuid.UUID
    revoked: bool


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    ip: str | None
    detail: dict[str, Any]


class DocumentLink(BaseModel):
    kind: str
    url: str


class WebhookAck(BaseModel):
    accepted: bool = Field(description="False: a replay of an event accepted before")
    duplicate: bool


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, dict[str, Any]] = Field(
        description="database, temporal (with the workers polling), smtp: each with its status"
    )


class ErasureIn(_Strict):
    email: Email


class ErasureOut(BaseModel):
    customer_id: uuid.UUID
    orders: list[uuid.UUID]
    erased: bool


# --- After delivery: refunds and returns -------------------------------------------------------

# The caller's key for a request that creates something (a refund, a return): the same key
# again finds what the first request made, and makes nothing new.
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:-]{8,64}$"


class SkuQuantityIn(_Strict):
    sku: OneLine = Field(min_length=1, max_length=64)
    quantity: WholeNumber = Field(gt=0, le=MAX_QUANTITY)


class RefundIn(_Strict):
    """An amount, or specific lines (their price times the quantity): never both."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"amount": "100.00", "reason": "goodwill"},
                {"lines": [{"sku": "MUG-01", "quantity": 1}], "reason": "item_missing"},
            ],
            # The rule of `_amount_or_lines`, as the schema states it (the other absent or null).
            "oneOf": [
                {
                    "required": ["amount"],
                    "properties": {"amount": {"type": "string"}, "lines": {"type": "null"}},
                },
                {
                    "required": ["lines"],
                    "properties": {"lines": {"type": "array"}, "amount": {"type": "null"}},
                },
            ],
        }
    )

    amount: PositiveMoney | None = None
    lines: list[SkuQuantityIn] | None = Field(default=None, min_length=1, max_length=MAX_LINES)
    reason: RefundReason = Field(description="Told to the customer in their language")
    note: MultiLine = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _amount_or_lines(self) -> RefundIn:
        if (self.amount is None) == (self.lines is None):
            raise ValueError("give an amount or lines, not both")
        return self


class RefundOut(BaseModel):
    key: str = Field(description="The request's Idempotency-Key")
    amount: Decimal
    reason: RefundReason
    status: Literal["refunded", "in_progress"] = Field(
        description="refunded: the provider took it; in_progress: still trying (ask again "
        "with the same key to see it)"
    )
    paid: Decimal = Field(description="What the order's payment brought in")
    refunded: Decimal = Field(description="Refunded in all, this refund included")


class RefundRow(BaseModel):
    key: str
    amount: Decimal
    status: str = Field(description="requested, confirmed (by the provider's event) or rejected")
    reason: str | None
    actor: str | None
    requested_at: datetime | None


class RefundsOut(BaseModel):
    paid: Decimal | None = Field(description="What the payment brought in (null: nothing paid)")
    refunded: Decimal = Field(description="Refunds asked for, less those the provider rejected")
    left: Decimal
    refunds: list[RefundRow]


class ReturnIn(_Strict):
    """What to send back, why, and what the customer wants for it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines": [{"sku": "MUG-01", "quantity": 1}],
                    "reason": "changed_mind",
                    "resolution": "refund",
                }
            ]
        }
    )

    lines: list[SkuQuantityIn] = Field(min_length=1, max_length=MAX_LINES)
    reason: ReturnReason
    resolution: ReturnResolution = ReturnResolution.REFUND
    replacement: OrderLines | None = Field(
        default=None,
        description="An exchange's new lines (default: the same items); at most what is returned "
        "is worth",
    )
    comment: MultiLine | None = Field(default=None, max_length=2000)


class CustomerReturnIn(_Strict):
    """The customer's own request: an exchange is for the same items."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines": [{"sku": "MUG-01", "quantity": 1}],
                    "reason": "wrong_size",
                    "resolution": "exchange",
                    "comment": "Too small",
                }
            ]
        }
    )

    lines: list[SkuQuantityIn] = Field(min_length=1, max_length=MAX_LINES)
    reason: ReturnReason
    resolution: ReturnResolution = ReturnResolution.REFUND
    comment: MultiLine | None = Field(default=None, max_length=2000)


class ReturnDecisionIn(_Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"approve": True}]})

    approve: bool = Field(strict=True)
    note: MultiLine = Field(default="", max_length=500)


class ReturnLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    accepted: int | None = Field(description="Accepted at inspection (null: not inspected yet)")
    finding: InspectionFinding | None = Field(description="Why the rest was not accepted")


class ReturnOut(BaseModel):
    return_id: str
    number: str
    status: ReturnStatus
    reason: ReturnReason
    resolution: ReturnResolution
    requested_by: str
    lines: list[ReturnLineOut]
    decline: ReturnDecline | None
    needs_action: bool = Field(description="An operator must decide (approval, a failed step)")
    tracking_number: str | None
    tracking_url: str | None
    refunded: Decimal | None
    exchange_order_id: str | None
    created_at: datetime | None


class ReturnableLine(BaseModel):
    sku: str
    name: str
    ordered: int
    returnable: int = Field(description="Ordered, less what open returns already hold")
    unit_price: Decimal


class ReturnableOut(BaseModel):
    """What the customer may send back, and the returns asked for so far."""

    number: str
    delivered_at: datetime | None = Field(description="null: not delivered yet (no returns)")
    lines: list[ReturnableLine]
    reasons: list[ReturnReason]
    returns: list[ReturnOut]
