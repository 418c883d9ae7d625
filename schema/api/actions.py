"""Operators' actions on an order: each becomes a workflow update."""

from __future__ import annotations

from datetime import date

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from schema.api.fields import MultiLine, OneLine, PositiveMoney, StrictModel
from schema.api.orders import OrderLines
from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    ParcelChoice,
    PriceReason,
    Stage,
    StepChoice,
    StockChoice,
)


class ConfirmIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "final_price": "450.00",
                    "price_reason": "agreed_by_phone",
                    "note": "discount agreed by phone",
                }
            ],
            # The rule of `_reason_with_a_price`, as the schema states it.
            "anyOf": [
                {"properties": {"price_reason": {"type": "null"}}},
                {"required": ["final_price"], "properties": {"final_price": {"type": "string"}}},
            ],
        }
    )

    lines: OrderLines | None = Field(default=None, description="Replaces the order's lines")
    final_price: PositiveMoney | None = Field(
        default=None,
        description="The total to charge, when it could not be computed or was agreed "
        "otherwise: the customer sees the difference from the lines' sum as a discount or "
        "surcharge line",
    )
    price_reason: PriceReason | None = Field(
        default=None,
        description="Why final_price differs from the lines' sum; the customer reads it in "
        "their language beside that line (the note is never shown to them)",
    )
    note: MultiLine = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _reason_with_a_price(self) -> ConfirmIn:
        if self.price_reason is not None and self.final_price is None:
            raise ValueError("price_reason explains a final_price: give one")
        return self


class RejectIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "wholesale orders go through the B2B desk"}]}
    )

    reason: OneLine = Field(min_length=1, max_length=500)


class StockDecisionIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"choice": "backorder", "note": "customer will wait"}]}
    )

    choice: StockChoice
    alternative_lines: OrderLines | None = None
    note: MultiLine = Field(default="", max_length=500)


class DelayIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "supplier_late", "new_date": "2026-12-10"}]}
    )

    reason: DelayReason = Field(description="Told to the customer in their language")
    new_date: date


class CancelIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "customer_request", "note": "asked by phone"}]}
    )

    reason: CancelReason
    note: MultiLine = Field(default="", max_length=500)


class ResolveIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"choice": "retry"}]})

    choice: StepChoice = Field(
        description="retry the failed step, or skip it (messages and compensation steps only)"
    )


class NoteIn(StrictModel):
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


class ParcelDecisionIn(StrictModel):
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
