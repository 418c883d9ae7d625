"""An order as a backend service posts it (`OrderCreate`) and as the API answers it
(`OrderAccepted`, `OrderOut`, pages of `OrderSummary`), and the error body."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schema.api.fields import (
    CURRENCY_CODES,
    MAX_LINES,
    MAX_QUANTITY,
    Email,
    Locale,
    Money,
    MultiLine,
    OneLine,
    Printable,
    StrictModel,
    WholeNumber,
    currency_refusal,
)
from schema.contracts import (
    CustomerStatus,
    DeliveryMethod,
    FulfilmentStatus,
    PaymentMethod,
    PaymentStatus,
    Stage,
    WaitingFor,
)


class CustomerIn(StrictModel):
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
    channels: list[Literal["email", "sms", "viber", "push"]] = Field(
        default=["email"],
        min_length=1,
        description="Where the customer wants to hear from us, preferred first; the next is "
        "the fallback, and e-mail the last resort. viber: a Viber message with the SMS as its "
        "own fallback (with ORDERFLOW_SMS_PROVIDER=turbosms; otherwise passed over)",
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
        Printable(lines=False)._check(value)
        if len(value) > 64:
            raise ValueError("a phone number is at most 64 characters")
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"not a phone number in international format: {exc}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class AddressIn(StrictModel):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["UA"])
    city: OneLine = Field(min_length=1, max_length=120)
    line1: OneLine = Field(min_length=1, max_length=200)
    line2: OneLine | None = Field(default=None, max_length=200)
    postal_code: OneLine = Field(min_length=1, max_length=20)


class BranchIn(StrictModel):
    """A carrier's branch (Nova Poshta's відділення or parcel locker), as the shop's checkout
    lets the customer pick it from the carrier's directory."""

    carrier: Literal["novaposhta"] = Field(description="The carrier whose branch it is")
    ref: str = Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The branch's `Ref` in the carrier's directory (Nova Poshta's "
        "Address.getWarehouses); checked there before the order is confirmed: a branch "
        "the carrier does not know as working makes the order wait for an operator",
        examples=["1ec09d2e-e1c2-11e3-8c4a-0050568002cf"],
    )
    number: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,10}$",
        description='The branch\'s number as people name it ("25"); informative',
        examples=["25"],
    )


class DeliveryIn(StrictModel):
    # The rules of `_address_for_shipping` and `_branch_for_branches`, as the schema states
    # them: a branch with method branch and only then, an address for courier and post.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"method": {"const": DeliveryMethod.PICKUP.value}},
                    "not": {"required": ["branch"]},
                },
                {
                    "required": ["branch"],
                    "properties": {
                        "method": {"const": DeliveryMethod.BRANCH.value},
                        "branch": {"type": "object"},
                    },
                },
                {
                    "required": ["address"],
                    "properties": {"address": {"type": "object"}},
                    "not": {
                        "anyOf": [
                            {"required": ["branch"]},
                            {"properties": {"method": {"const": DeliveryMethod.BRANCH.value}}},
                        ]
                    },
                },
            ]
        }
    )

    method: DeliveryMethod = Field(
        description="courier (to the door), post, pickup (at the shop's own counter), or "
        "branch (at the carrier's branch named in `branch`). A parcel the shop's carrier does "
        "not take (Nova Poshta delivers nothing by post) is accepted and waits for an "
        "operator's decision before it is confirmed"
    )
    speed: Literal["standard", "express"] = "standard"
    address: AddressIn | None = None
    pickup_point: OneLine | None = Field(default=None, max_length=64)
    branch: BranchIn | None = Field(
        default=None,
        validate_default=True,
        description="Required for, and only with, method `branch`",
    )

    @field_validator("branch")
    @classmethod
    def _branch_for_branches(cls, branch: BranchIn | None, info: ValidationInfo) -> BranchIn | None:
        method = info.data.get("method")
        if method == DeliveryMethod.BRANCH and branch is None:
            raise ValueError("required for delivery to a branch")
        if method != DeliveryMethod.BRANCH and branch is not None:
            raise ValueError("only for delivery by method branch")
        return branch

    @model_validator(mode="after")
    def _address_for_shipping(self) -> DeliveryIn:
        if self.method in (DeliveryMethod.COURIER, DeliveryMethod.POST) and self.address is None:
            raise ValueError(f"address is required for delivery by {self.method}")
        return self


class PaymentIn(StrictModel):
    # An exchange's replacement order is placed by its return, never posted by a shop.
    method: Literal[PaymentMethod.PREPAID, PaymentMethod.COD] = Field(
        description="prepaid (a payment link) or cod (cash on delivery)"
    )


class LineIn(StrictModel):
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


class OrderCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SAMPLE_ORDER]})

    number: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    customer: CustomerIn
    delivery: DeliveryIn
    payment: PaymentIn
    lines: OrderLines
    currency: str = Field(
        examples=["UAH"],
        description="An ISO 4217 code in use today, upper case (obsolete codes are refused)",
        json_schema_extra={"enum": CURRENCY_CODES},
    )
    note: MultiLine | None = Field(default=None, max_length=1000, description="Customer's wishes")

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        refusal = currency_refusal(value)
        if refusal is not None:
            raise ValueError(refusal)
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
    status: str = Field(
        description="pending, sending, sent, undeliverable (this channel cannot reach the "
        "recipient: the next one was tried), recipient_erased, or suppressed (not sent by e-mail: "
        "the ESP reported a hard bounce of the address, or a complaint before a feedback "
        "request, and no other channel took it)"
    )
    sent_at: datetime | None
    delivery: str | None = Field(
        default=None,
        description="What the provider said later of the message it took: TurboSMS "
        "(queued, delivered, read, undelivered, expired, rejected, ...) or the ESP "
        "(delivered, bounced, complained); null when it said nothing (yet)",
    )
    delivered_via: str | None = Field(
        default=None,
        description='How a TurboSMS message reached the phone: "viber", or "sms" (for a '
        "Viber message: Viber did not reach it and TurboSMS sent the SMS instead)",
    )


class ProgressOut(BaseModel):
    """What the order waits for and may do now, as the read model keeps it (the workflow
    writes it at every step and wait; empty for orders from before it did)."""

    waiting_for: WaitingFor | None
    next_deadline: datetime | None
    allowed_actions: list[str]
    payment_status: PaymentStatus | None
    fulfilment_status: FulfilmentStatus | None


class OrderSourceOut(BaseModel):
    connector: str = Field(description="The intake connector's name")
    kind: str = Field(description="woocommerce, shopify, ...")
    order_id: str = Field(description="The order's id at the source")


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
    customer_note: str | None = Field(
        default=None,
        description="The customer's note with the order (their wishes), as they wrote it; for "
        "roles that see personal data masked, every e-mail address and phone number in it "
        "masked. Null when they left none (or were erased)",
    )
    lines: list[LineOut]
    timeline: list[EventOut]
    notifications: list[NotificationOut]
    notes: list[NoteOut] = Field(
        description="Staff notes and the texts of operator actions, for staff only: always "
        "empty for a service key (what staff write about a customer is not the shop's to read)"
    )
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
    source: OrderSourceOut | None = Field(
        default=None, description="Where an intake connector brought it from; null: posted"
    )


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []
