"""The managers' reports as the API answers them: every figure with its definition.

One cohort throughout: a report counts the orders **created** in its window `[since, until)`
(and that match its filters), and every figure is about those orders, whenever their later
steps happened. A rate whose denominator is zero is `null`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schema.api.fields import OneLine
from schema.contracts import DeliveryMethod, PaymentMethod

DEFAULT_WINDOW = timedelta(days=30)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class ReportQuery(BaseModel):
    """The window and the filters of a report (query parameters)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: datetime | None = Field(
        default=None,
        description="Start of the window (inclusive), ISO 8601; without a zone it is UTC. "
        "Default: 30 days before `until`.",
        examples=["2026-11-01T00:00:00Z"],
    )
    until: datetime | None = Field(
        default=None,
        description="End of the window (exclusive), ISO 8601; default: now.",
        examples=["2026-12-01T00:00:00Z"],
        validate_default=True,  # the window's checks run when `until` is left out, too
    )
    delivery_method: DeliveryMethod | None = Field(default=None, description="Only these orders")
    payment_method: PaymentMethod | None = Field(default=None, description="Only these orders")
    carrier: OneLine | None = Field(
        default=None,
        max_length=64,
        description="Only orders booked with this carrier (orders not yet booked have none)",
    )

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        """Only ISO 8601 text: pydantic would read "0.5" as seconds since 1970."""
        if isinstance(value, datetime) or value is None:
            return value
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise ValueError("an ISO 8601 date or date-time, e.g. 2026-11-01T00:00:00Z")
        return value

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def window(self) -> tuple[datetime, datetime]:
        """`[since, until)`; an `until` at or before `since` is an empty window (no orders)."""
        until = self.until or datetime.now(UTC)
        return self.since or until - DEFAULT_WINDOW, until


class DailyQuery(ReportQuery):
    """The daily report lists every day of the window that can hold an order: from the first
    order ever (or `since`, if later) to today (or `until`, if earlier)."""


# --- The figures ------------------------------------------------------------------------------


class StageTime(BaseModel):
    count: int = Field(description="Orders that have left the stage (those still in it wait)")
    p50: float | None = Field(
        description="Median seconds an order spent in the stage: from its first timeline event "
        "in the stage to the next stage's first (summed over visits: documents happen within "
        "handover)"
    )
    p90: float | None = Field(description="90th percentile of the same seconds (interpolated)")


class SlaBreaches(BaseModel):
    count: int = Field(
        description="Silence notices: each a day without news, the customer told and support flagged"
    )
    orders: int = Field(description="Orders with at least one breach")
    share: float | None = Field(description="orders / all orders")
    by_waiting_for: dict[str, int] = Field(
        description="Breaches by what the order was waiting for when the day passed"
    )


class OnTime(BaseModel):
    delivered_with_promise: int = Field(
        description="Delivered (or collected) orders whose confirmation promised a date"
    )
    on_time: int = Field(description="Of those, delivered on or before the promised date (UTC)")
    late: int = Field(description="Of those, delivered after it")
    days_late_p50: float | None = Field(description="Median days after the promise, late ones")
    days_late_p90: float | None = Field(description="90th percentile of days late, late ones")
    days_late_max: int | None = Field(description="The latest delivery, days after the promise")


class FeedbackFigures(BaseModel):
    requested: int = Field(description="Orders whose customer was asked for feedback")
    responses: int = Field(description="Orders with an answer (a rating, an NPS score or both)")
    response_rate: float | None = Field(description="responses / requested")
    nps_answers: int = Field(description="Answers with an NPS score (0-10)")
    promoters: int = Field(description="NPS 9-10")
    passives: int = Field(description="NPS 7-8")
    detractors: int = Field(description="NPS 0-6")
    nps: float | None = Field(
        description="Net Promoter Score: 100 × (promoters − detractors) / nps_answers, −100..100"
    )
    rating_answers: int = Field(description="Answers with a rating (1-5)")
    csat: float | None = Field(description="Satisfied share: ratings of 4 or 5 / rating_answers")
    average_rating: float | None = Field(description="Mean rating, 1-5")
    ratings: dict[str, int] = Field(description='Histogram of ratings: "1".."5" -> answers')


class Incidents(BaseModel):
    count: int = Field(description="Incidents opened for the orders (every recorded deviation)")
    by_stage_and_cause: dict[str, dict[str, int]] = Field(
        description="stage -> cause (human, system, external) -> incidents"
    )


class ChannelFigures(BaseModel):
    sent: int = Field(description="Messages to the customer delivered to the channel's provider")
    failed: int = Field(
        description="Messages the channel refused for good (the next channel was tried)"
    )
    sent_per_delivered_order: float | None = Field(
        description="Messages sent for delivered orders / delivered orders"
    )


class StatusPage(BaseModel):
    views: int = Field(description="Views of the orders' status pages (page, JSON and links)")
    views_per_order: float | None = Field(description="views / orders")
    link_clicks: int = Field(description="Views opened from a status link in a message")


class Returns(BaseModel):
    count: int = Field(
        description="Customer returns of the orders: requests the return policy let through "
        "(`return.requested`; a request refused at once, outside the window, is none)"
    )
    orders: int = Field(description="Orders with at least one return")
    rate: float | None = Field(description="orders / delivered")
    by_reason: dict[str, int] = Field(
        description="Returns by the customer's reason: changed_mind, wrong_size, defective, "
        "not_as_described, wrong_item, other"
    )


class Figures(BaseModel):
    orders: int = Field(description="Orders created in the window (that match the filters)")
    delivered: int = Field(description="Of those, delivered to the customer or collected")
    cancelled: int = Field(description="Of those, cancelled (or found invalid at validation)")
    cancellation_rate: float | None = Field(description="cancelled / orders")
    cancellations_by_reason: dict[str, int] = Field(
        description="Cancelled orders by reason code; `invalid`: the order failed its checks"
    )
    stage_seconds: dict[str, StageTime] = Field(description="Time spent per stage")
    sla_breaches: SlaBreaches
    on_time_rate: float | None = Field(
        description="Delivered on or before the date promised at confirmation / delivered_with_promise"
    )
    on_time: OnTime = Field(description="How far promises were kept or missed")
    feedback: FeedbackFigures
    incidents: Incidents
    notifications: dict[str, ChannelFigures] = Field(
        description="Per channel (email, sms, push, viber): messages to customers; managers' "
        "alerts are not counted"
    )
    status_page: StatusPage
    customers: int = Field(description="Distinct customers of the orders")
    returning_customers: int = Field(
        description="Of those, customers who had ordered before one of these orders"
    )
    repeat_customer_rate: float | None = Field(description="returning_customers / customers")
    support_contacts: int = Field(
        description='Notes that support marked as the customer asking (e.g. "where is my order?")'
    )
    support_contacts_per_order: float | None = Field(description="support_contacts / orders")
    returns: Returns = Field(description="Customer returns after delivery, by reason")


class ReportWindow(BaseModel):
    since: datetime
    until: datetime
    delivery_method: DeliveryMethod | None = None
    payment_method: PaymentMethod | None = None
    carrier: str | None = None


class Summary(Figures):
    """The figures of the orders created in the window."""

    window: ReportWindow


class Day(Figures):
    day: date = Field(description="The UTC day the orders were created")


class DailyReport(BaseModel):
    """The same figures for the orders created on each UTC day of the window."""

    window: ReportWindow
    days: list[Day]
