"""The customer's side: answers through signed links (feedback, the stock choice,
cancelling), the status page's JSON twin, and "my orders"."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

from schema.api.fields import MAX_LINES, Email, Locale, MultiLine, OneLine, StrictModel, WholeNumber
from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    DeliveryMethod,
    PaymentMethod,
    PaymentStatus,
    PriceReason,
    Stage,
    StockChoice,
    WaitingFor,
)

# An alternative is offered by an operator: the customer chooses among these.
CUSTOMER_STOCK_CHOICES = (StockChoice.SHIP_AVAILABLE, StockChoice.BACKORDER, StockChoice.CANCEL)


class CustomerStockChoiceIn(StrictModel):
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


class CustomerCancelIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "changed_mind"}]})

    reason: CustomerCancelReason


# FeedbackIn's scores as the schema states them (each branch of its anyOf complete).
_RATING: JsonDict = {"type": "integer", "minimum": 1, "maximum": 5}
_NPS: JsonDict = {"type": "integer", "minimum": 0, "maximum": 10}


def _or_null(schema: JsonDict) -> JsonDict:
    return {"anyOf": [schema, {"type": "null"}]}


class LineRatingIn(StrictModel):
    sku: OneLine = Field(min_length=1, max_length=64, description="One of the order's SKUs")
    rating: WholeNumber = Field(ge=1, le=5)


class FeedbackIn(StrictModel):
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


class AdjustmentOut(BaseModel):
    """An operator's final price against the lines' sum, as a line of its own."""

    kind: Literal["discount", "surcharge"]
    amount: Decimal = Field(
        description="Added to the lines' sum to make the total (negative: a discount)"
    )
    reason: PriceReason | None = Field(description="Why, when the operator said")
    text: str = Field(description="The line's label in the page's language")


class CancellationOut(BaseModel):
    reason: CancelReason
    refund: Decimal | None = Field(description="What goes back to the customer's card")
    refund_returned: bool = Field(description="The payment provider confirmed the refund")


class TrackingOut(BaseModel):
    carrier: str | None
    tracking_number: str
    tracking_url: str | None


class PickupOut(BaseModel):
    point: str | None = Field(
        description='The pickup point (a carrier\'s branch: "Nova Poshta №25"); null: the '
        "shop's own counter"
    )
    hold_until: datetime | None = Field(
        description="Kept until then: at the shop's counter from when it was ready, by the "
        "shop's current policy; at a carrier's branch, the end of its free storage as the "
        "carrier says (null until the parcel is there)"
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
    return_items: bool = Field(
        default=False, description="Delivered, within the return window: items may go back"
    )
    return_until: datetime | None = Field(
        default=None, description="When the return window closes (from delivery)"
    )


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
    expected_date: date | None = Field(
        description="The date promised: delivery, or for a pickup order the day it is ready "
        "for pickup (`expected_text` names which)"
    )
    expected_text: str | None = Field(
        default=None, description="What `expected_date` is, in the page's language"
    )
    lines: list[CustomerLineOut]
    adjustment: AdjustmentOut | None = Field(
        default=None, description="When the total is not the lines' sum: the difference, and why"
    )
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


class CustomerLinkIn(StrictModel):
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
