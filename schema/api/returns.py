"""After delivery: refunds, returns and exchanges."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from schema.api.fields import (
    MAX_LINES,
    MAX_QUANTITY,
    MultiLine,
    OneLine,
    PositiveMoney,
    StrictModel,
    WholeNumber,
)
from schema.api.orders import OrderLines
from schema.contracts import (
    InspectionFinding,
    RefundReason,
    ReturnDecline,
    ReturnReason,
    ReturnResolution,
    ReturnStatus,
)

# The caller's key for a request that creates something (a refund, a return): the same key
# again finds what the first request made, and makes nothing new.
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:-]{8,64}$"


class SkuQuantityIn(StrictModel):
    sku: OneLine = Field(min_length=1, max_length=64)
    quantity: WholeNumber = Field(gt=0, le=MAX_QUANTITY)


class RefundIn(StrictModel):
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


class ReturnIn(StrictModel):
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


class CustomerReturnIn(StrictModel):
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


class ReturnDecisionIn(StrictModel):
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
    needs_action: bool = Field(
        description="An operator must decide (approval, a failed step, an inspection overdue)"
    )
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
