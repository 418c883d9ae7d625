"""The system of record in Postgres (SQLModel tables).

Personal data lives in `order_contacts` (each order's own contacts and address) and in what
people write about an order: the customer's note, feedback comments, a return's comment,
staff notes, and the free text that the timeline and incidents quote. `starter/services/erasure.py` clears all of it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from schema.vocabulary import EventType


def _now_column() -> Any:
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Customer(SQLModel, table=True):
    """A person's identity: one row per e-mail, no contacts. It ties together the orders
    placed under one e-mail (erasure finds them by it; a "my orders" page would list them)."""

    __tablename__ = "customers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # lower-cased
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class OrderContact(SQLModel, table=True):
    """Who the order is for and where it goes, as the order was placed: a snapshot per order.

    A snapshot, not versioned contacts: the contacts an order was placed with are a fact of
    that order (its messages, receipt and label must match them), so each order keeps its
    own row, written once at intake and changed only by erasure. A later order under the
    same e-mail writes a row of its own and cannot reach this one. Every reader (activities,
    the read model, search) reads one row by order id; versioned contacts would add a rule for
    which version belongs to which order, one more thing every reader must get right. The
    cost is a few hundred bytes per order.

    Erasure empties every personal field and sets `erased_at`: nothing is sent, printed or
    parsed from this row again. `locale`, `channels` and `country` stay: none of them names
    anyone, and the country still chooses the carrier and the customer's time zone.
    """

    __tablename__ = "order_contacts"

    order_id: uuid.UUID = Field(foreign_key="orders.id", primary_key=True)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, index=True)  # lower-cased
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    push_token: str | None = Field(default=None, max_length=256)  # app or messenger address
    locale: str = Field(max_length=8)
    # Channels in the customer's order of preference; the next one is the fallback.
    channels: list[str] = Field(
        default_factory=lambda: ["email"],
        sa_column=Column(JSONB, nullable=False, server_default='["email"]'),
    )
    # The delivery address; None for an order picked up at a counter.
    country: str | None = Field(default=None, max_length=2)
    city: str | None = Field(default=None, max_length=120)
    line1: str | None = Field(default=None, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    # Delivery to a carrier's branch (`delivery.method` "branch"): which carrier, and the
    # branch the customer chose by the carrier's reference (and number, as people name it).
    # Erased with the address: a branch says where a person collects their parcels.
    branch_carrier: str | None = Field(default=None, max_length=16)
    branch_ref: str | None = Field(default=None, max_length=64)
    branch_number: str | None = Field(default=None, max_length=16)
    erased_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    @property
    def address_lines(self) -> list[str]:
        """The postal address as a label prints it (empty when there is none, or it is erased)."""
        if self.line1 is None:
            return []
        parts = [self.line1, self.line2, f"{self.postal_code} {self.city}", self.country]
        return [part for part in parts if part]


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    # Every list is newest first with a keyset cursor: each filter has an index in that order
    # (a partial one per flag: few orders carry it).
    __table_args__ = (
        Index("ix_orders_newest", "created_at", "id"),
        Index("ix_orders_stage_newest", "stage", "created_at", "id"),
        *(
            Index(f"ix_orders_{flag}_newest", "created_at", "id", postgresql_where=text(flag))
            for flag in ("needs_action", "sla_breached", "payment_failed")
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(max_length=64, unique=True)
    customer_id: uuid.UUID = Field(foreign_key="customers.id", index=True)
    delivery_method: str = Field(max_length=16)
    delivery_speed: str = Field(
        default="standard", max_length=16, sa_column_kwargs={"server_default": "standard"}
    )
    pickup_point: str | None = Field(default=None, max_length=64)
    payment_method: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    # Holds any lines the API admits: 500 × 100,000 × 999,999,999,999.99 (schema/api/fields.py).
    total: Decimal = Field(sa_column=Column(Numeric(22, 2), nullable=False))
    customer_note: str | None = Field(default=None, max_length=1000)
    # Why an operator's final price differs from the lines' sum (a PriceReason), if said.
    price_reason: str | None = Field(default=None, max_length=32)
    stage: str = Field(max_length=32)
    status: str = Field(max_length=32)
    expected_date: date | None = None
    # sha256 of the accepted request body: the same body again is a retry, another is a conflict.
    request_hash: str = Field(max_length=64)
    created_by: str | None = Field(default=None, max_length=120)  # who created it: "key:<name>"
    # The API key that created it: a service sees these orders, and no other (names repeat).
    created_by_key_id: uuid.UUID | None = Field(default=None, foreign_key="api_keys.id", index=True)
    # Flags for queues and filters, kept by the timeline (activities.orders.FLAGS).
    needs_action: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    sla_breached: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    payment_failed: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    # Progress, kept current by the workflow (schema.contracts.OrderProgress).
    waiting_for: str | None = Field(default=None, max_length=32)
    next_deadline: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    allowed_actions: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    payment_status: str | None = Field(default=None, max_length=32)
    fulfilment_status: str | None = Field(default=None, max_length=32)
    # What the payment brought in (written with `payment.succeeded`; None: nothing was paid
    # through the provider). The refund ledger never refunds more than this in all.
    paid_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    position: int
    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    quantity: int
    unit_price: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class OrderEvent(SQLModel, table=True):
    """The order's timeline: every stage and action, with who did it."""

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("order_id", "key"),
        # SLA breaches by what the order waited for (the reports): rare rows, read directly.
        Index(
            "ix_order_events_sla_breaches",
            "order_id",
            postgresql_where=text(f"type = '{EventType.SLA_SILENCE_BREACHED}'"),
        ),
        # Returns by reason (the reports): rare rows too.
        Index(
            "ix_order_events_returns",
            "order_id",
            postgresql_where=text(f"type = '{EventType.RETURN_REQUESTED}'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    key: str = Field(max_length=128)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    type: str = Field(max_length=64)
    stage: str = Field(max_length=32)
    actor: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


# What a provider says last of a message (lower-cased TurboSMS words, "unknown" for a message
# it does not know; the ESP's bounced and complained): nothing more is asked.
DELIVERY_FINAL = (
    "delivered",
    "read",
    "expired",
    "undelivered",
    "rejected",
    "failed",
    "cancelled",
    "unknown",
    "bounced",
    "complained",
)


class Notification(SQLModel, table=True):
    """Outbox: the row is written before sending; the unique key makes a retry send nothing.

    `delivery_status` is what the provider says later of a message it accepted: TurboSMS when
    asked (activities/turbosms.py: queued, delivered, read, undelivered, ...; `delivered_via`
    viber or sms), the ESP by its events (delivered, bounced, complained)."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The messages whose delivery TurboSMS is still to report, oldest asked first.
        Index(
            "ix_notifications_delivery_open",
            "delivery_checked_at",
            postgresql_where=text(
                "delivery_status IS NOT NULL AND delivery_status NOT IN ("
                + ", ".join(f"'{status}'" for status in DELIVERY_FINAL)
                + ")"
            ),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    kind: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    recipient_masked: str = Field(max_length=64)
    status: str = Field(
        max_length=16
    )  # pending | sending | sent | undeliverable | recipient_erased | suppressed
    # The ESP's events name the message by it (the Message-ID of an e-mail).
    provider_message_id: str | None = Field(default=None, max_length=256, index=True)
    attempts: int = 0
    # Sent again after an attempt died between calling the provider and recording it: for
    # e-mail (no idempotency key at SMTP) each one is a possible duplicate.
    resends: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)  # addresses masked
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    delivery_status: str | None = Field(default=None, max_length=16)
    delivered_via: str | None = Field(default=None, max_length=16)
    delivery_checked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )


class EmailSuppression(SQLModel, table=True):
    """What the ESP reported of a customer's e-mail address (one row per `customers`
    identity, which is one address): a hard bounce (`bounced_at`: no e-mail goes there any
    more; the phone instead) or a spam complaint (`complained_at`: no feedback request or
    reminder by e-mail). No address is kept here; erasure deletes the row."""

    __tablename__ = "email_suppressions"

    customer_id: uuid.UUID = Field(foreign_key="customers.id", primary_key=True)
    bounced_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    complained_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class EmailEvent(SQLModel, table=True):
    """Every ESP event whose signature held, once: its token is never taken again (a replay
    changes nothing), whether or not it was about a message of ours (`notification_id`)."""

    __tablename__ = "email_events"
    __table_args__ = (UniqueConstraint("provider", "token"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    token: str = Field(max_length=128)
    event: str = Field(max_length=32)
    notification_id: int | None = Field(default=None, foreign_key="notifications.id")
    received_at: datetime | None = Field(default=None, sa_column=_now_column())


class OrderProviderRefs(SQLModel, table=True):
    """What the providers call this order: payment, shipment. No personal data."""

    __tablename__ = "order_provider_refs"

    order_id: uuid.UUID = Field(foreign_key="orders.id", primary_key=True)
    payment_id: str | None = Field(default=None, max_length=64)
    payment_url: str | None = Field(default=None, max_length=500)
    carrier: str | None = Field(default=None, max_length=64)
    service: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=64, index=True)
    tracking_url: str | None = Field(default=None, max_length=500)
    # The carrier's own reference of the booking (Nova Poshta's document Ref: a cancellation
    # names it).
    carrier_ref: str | None = Field(default=None, max_length=64)


class TrackedParcel(SQLModel, table=True):
    """A parcel a carrier without webhooks is asked about (CarrierTrackingWorkflow): one row
    per booking (an order's parcel or a customer's return parcel), with the carrier's last status code, so each round tells an order only what
    changed. No personal data: the recipient's phone, which Nova Poshta wants beside the
    number, is read from the order's contacts when asked."""

    __tablename__ = "tracked_parcels"
    __table_args__ = (
        # The parcels one carrier is asked about, in a stable order (rounds page through them).
        Index(
            "ix_tracked_parcels_in_flight",
            "carrier_api",
            "order_id",
            "tracking_number",
            postgresql_where=text("NOT done"),
        ),
    )

    tracking_number: str = Field(max_length=64, primary_key=True)
    carrier_api: str = Field(max_length=16)  # the adapter that booked it (settings' carrier)
    order_id: uuid.UUID = Field(foreign_key="orders.id")
    # A customer's return parcel: its news go to the return's workflow, not the order's.
    return_id: uuid.UUID | None = Field(default=None, foreign_key="returns.id")
    code: str | None = Field(default=None, max_length=16)  # the carrier's last status code
    changed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # Nothing more to ask: cancelled, superseded by a re-shipment, or its order (a return
    # parcel: its return) ended.
    done: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Document(SQLModel, table=True):
    """Receipt, packing list and label PDFs, stored with the order (the label holds the address)."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("order_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    kind: str = Field(max_length=32)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("order_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    key: str = Field(max_length=128)
    stage: str = Field(max_length=32)
    cause: str = Field(max_length=16)  # human | system | external
    summary: str = Field(max_length=500)
    status: str = Field(default="open", max_length=16)
    opened_at: datetime | None = Field(default=None, sa_column=_now_column())


class WebhookEvent(SQLModel, table=True):
    """Every provider event accepted once: a replayed webhook finds its row and changes nothing."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    event_id: str = Field(max_length=128)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    type: str = Field(max_length=64)
    received_at: datetime | None = Field(default=None, sa_column=_now_column())


class PaymentState(SQLModel, table=True):
    """The latest news of each payment from its provider (a real provider's callbacks): one
    that the provider says is older than this changes nothing (webhooks may come out of
    order; Monobank says so), and the same outcome twice is told to the order once."""

    __tablename__ = "payment_states"

    provider: str = Field(max_length=16, primary_key=True)
    payment_id: str = Field(max_length=64, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    outcome: str = Field(max_length=16)  # activities.payment_gateways.Notice
    provider_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class Feedback(SQLModel, table=True):
    """The customer's answer, one per order: answering again replaces it (`updated_at`)."""

    __tablename__ = "feedback"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", unique=True)
    rating: int | None = None
    nps: int | None = None
    comment: str | None = Field(default=None, max_length=2000)
    # Optional per-line ratings: SKU -> 1-5.
    line_ratings: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class FeedbackBonus(SQLModel, table=True):
    """The bonus for answering the feedback request, per order: recorded when the request
    promises it (or, without a promise, when an answer earns it under the policy then), so
    what a customer was promised is what they get. Given for any answer, whatever its score."""

    __tablename__ = "feedback_bonuses"

    order_id: uuid.UUID = Field(foreign_key="orders.id", primary_key=True)
    code: str = Field(max_length=32)
    policy: str = Field(max_length=8)  # fixed | unique: the policy it was issued under
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class ApiKey(SQLModel, table=True):
    """A service's (or a script's) key: only its SHA-256 is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)  # service | operator | support | admin
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)  # shown in lists, so a key can be recognised
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class StaffAccount(SQLModel, table=True):
    """A person: operator, support or admin. The password is kept as a salted scrypt hash."""

    __tablename__ = "staff_accounts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    disabled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_sessions"

    token_hash: str = Field(max_length=64, primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="staff_accounts.id", index=True)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RateLimitCounter(SQLModel, table=True):
    """A fixed-window counter of the `limits` library, shared by every API process."""

    __tablename__ = "rate_limit_counters"

    key: str = Field(max_length=256, primary_key=True)
    count: int
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class AuditEntry(SQLModel, table=True):
    """Who did or read what, when and from where. Append-only (a trigger refuses changes)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = Field(default=None, sa_column=_now_column())
    actor: str = Field(max_length=120)  # "key:<name>" or "staff:<username>"
    role: str = Field(max_length=16)
    action: str = Field(max_length=64, index=True)  # e.g. order.read_personal_data, order.cancel
    target: str = Field(max_length=64, index=True)  # an order or customer id
    ip: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class OrderNote(SQLModel, table=True):
    """What staff write about an order: a note of its own, or the free text of an operator's
    action (a confirm note, a reject reason), kept here so that Temporal never holds it."""

    __tablename__ = "order_notes"

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    author: str = Field(max_length=120)
    text: str = Field(max_length=2000)
    action: str | None = Field(default=None, max_length=32)  # confirm, reject, … (None: a note)
    # Support marks a note that records the customer asking ("where is my order?").
    customer_contact: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class Refund(SQLModel, table=True):
    """The refund ledger: every refund the order asked for, written before the provider is
    called (the key makes a retried activity refund nothing twice); a provider's refund event
    counts only when it matches one of these rows. Rows are written under a lock on the
    order's row, and their sum (those the provider did not reject) never exceeds
    `orders.paid_amount` (activities/payments.py)."""

    __tablename__ = "refunds"

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    payment_id: str = Field(max_length=64)
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    status: str = Field(default="requested", max_length=16)  # requested | confirmed | rejected
    reason: str | None = Field(default=None, max_length=32)  # an operator's RefundReason
    actor: str | None = Field(default=None, max_length=120)  # who asked (None: the workflow)
    provider_refund_id: str | None = Field(default=None, max_length=64)
    requested_at: datetime | None = Field(default=None, sa_column=_now_column())
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class RefundLine(SQLModel, table=True):
    """An item an operator refunded by line (`POST …/refunds {"lines"}`): no longer the
    customer's to return, as an item sent back is no longer theirs to refund
    (starter/services/returns.py `still_the_customers`). Written, under the order's row lock,
    before the refund runs; gone again when the refund is refused; its ledger row (`refunds`,
    by the same key) rejected by the provider, it counts for nothing."""

    __tablename__ = "refund_lines"
    __table_args__ = (UniqueConstraint("refund_key", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    refund_key: str = Field(max_length=128)  # the ledger's key (refunds.idempotency_key)
    sku: str = Field(max_length=64)
    quantity: int
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class StatusPageVisit(SQLModel, table=True):
    """One view of an order's status page by the customer."""

    __tablename__ = "status_page_visits"

    id: int | None = Field(default=None, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    at: datetime | None = Field(default=None, sa_column=_now_column())
    # "link": opened from a link in a message (a click through a status link); "page": any
    # other view (a refresh, a language switch, the same link again within the hour);
    # "json": the page's JSON twin.
    source: str = Field(max_length=8)
    # Which message link was opened (a digest of it): a link counts as a click once an hour.
    link: str | None = Field(default=None, max_length=16)


class OrderFacts(SQLModel, table=True):
    """One row per order with what the reports count, kept by triggers in the database.

    Every insert into orders, order_events, notifications, feedback, order_provider_refs,
    status_page_visits and order_notes (and every update of the last four and of
    notifications) recounts the row of each order it touched (`refresh_order_facts`, in the
    migration 9d3c6f0a1b27), whoever writes: the worker, the API, a test or a bulk load.
    The reports then read one narrow row per order instead of every event
    (starter/services/reports.py says why). Code never writes it.
    """

    __tablename__ = "order_facts"
    # Rows are rewritten on every step of their order: room on the page keeps updates in place.
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    order_id: uuid.UUID = Field(foreign_key="orders.id", primary_key=True)
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    created_on: date  # the UTC day of created_at: the daily report's groups
    customer_id: uuid.UUID
    returning_customer: bool = False  # the customer had ordered before this order
    delivery_method: str = Field(max_length=16)
    payment_method: str = Field(max_length=16)
    carrier: str | None = Field(default=None, max_length=64)
    promised_date: date | None = None  # `expected_date` of `order.confirmed`
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cancel_reason: str | None = Field(default=None, max_length=64)  # "invalid": failed checks
    sla_breaches: int = 0
    feedback_requested: bool = False
    rating: int | None = None
    nps: int | None = None
    # Seconds from the stage's first event to the next stage's (summed over visits: documents
    # happen within handover), once the order has left it.
    intake_seconds: float | None = None
    validation_seconds: float | None = None
    confirmation_seconds: float | None = None
    stock_seconds: float | None = None
    payment_seconds: float | None = None
    picking_seconds: float | None = None
    documents_seconds: float | None = None
    handover_seconds: float | None = None
    transit_seconds: float | None = None
    feedback_seconds: float | None = None
    # Messages to the customer (the managers' alerts are not counted): sent, or refused for good.
    emails_sent: int = 0
    emails_failed: int = 0
    sms_sent: int = 0
    sms_failed: int = 0
    push_sent: int = 0
    push_failed: int = 0
    viber_sent: int = 0
    viber_failed: int = 0
    status_page_views: int = 0
    status_link_clicks: int = 0
    support_contacts: int = 0
    returns: int = 0  # customer returns requested (`return.requested`; refused at once: none)


class WebhookSubscription(SQLModel, table=True):
    """A receiver of order events on the shop's side. The secret signs every delivery: it is
    shown once when the subscription is created and kept here, because signing needs it."""

    __tablename__ = "webhook_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    url: str = Field(max_length=500)
    events: list[str] = Field(sa_column=Column(JSONB, nullable=False))  # ShopEventType values
    secret: str = Field(max_length=64)
    # A service key's subscription: events of the orders that key created. None: every order
    # (an admin's subscription).
    for_key_id: uuid.UUID | None = Field(default=None, foreign_key="api_keys.id", index=True)
    # A marketplace connector's write-back (README, Intake): the events of the orders it
    # brought, told to the marketplace in its own API instead of posted to `url`. Not shown
    # in the subscriptions' API; created and deleted with its connector.
    connector_id: uuid.UUID | None = Field(
        default=None, foreign_key="intake_connectors.id", ondelete="CASCADE", index=True
    )
    created_by: str = Field(max_length=120)  # "key:<name>" or "staff:<username>"
    active: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class ShopEvent(SQLModel, table=True):
    """The outbox of order events: written with the read model, in the same transaction as
    the timeline row it comes from; `seq` orders an order's events (its row lock is held)."""

    __tablename__ = "shop_events"

    seq: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)  # the receiver's dedup key
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    type: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The whole body as delivered: {"id", "type", "created_at", "data"}; no personal data.
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class ShopDelivery(SQLModel, table=True):
    """One event to one subscription: its state, attempts and last answer (the delivery log)."""

    __tablename__ = "shop_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_seq"),
        # What is due: the dispatcher's scan.
        Index(
            "ix_shop_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # An order's earlier events still pending for the same receiver: in order per order.
        Index(
            "ix_shop_deliveries_chain",
            "subscription_id",
            "order_id",
            "event_seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_shop_deliveries_log", "subscription_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscriptions.id", ondelete="CASCADE")
    event_seq: int = Field(
        sa_column=Column(BigInteger, ForeignKey("shop_events.seq"), nullable=False)
    )
    order_id: uuid.UUID
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    # Queued (or queued again by a redelivery): retried until `shop_events_retry_for` after.
    queued_at: datetime | None = Field(default=None, sa_column=_now_column())
    next_attempt_at: datetime | None = Field(default=None, sa_column=_now_column())
    last_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())


class ProviderSlot(SQLModel, table=True):
    """When a rate-limited provider's next call may go, for every worker alike
    (activities.providers.SharedRate)."""

    __tablename__ = "provider_slots"

    provider: str = Field(max_length=32, primary_key=True)
    next_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Return(SQLModel, table=True):
    """A customer's return of delivered goods, one row per return; its `ReturnWorkflow`
    keeps the status. The lines are in `return_lines`."""

    __tablename__ = "returns"
    __table_args__ = (
        UniqueConstraint("order_id", "seq"),
        UniqueConstraint("order_id", "request_key"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="orders.id", index=True)
    seq: int  # 1, 2, … within the order: the number's suffix
    number: str = Field(max_length=80, unique=True)  # e.g. SHOP-1001-R1
    # The caller's Idempotency-Key: the same request again finds this return.
    request_key: str = Field(max_length=64)
    status: str = Field(max_length=32)  # schema.contracts.ReturnStatus
    reason: str = Field(max_length=32)  # ReturnReason
    resolution: str = Field(max_length=16)  # ReturnResolution
    comment: str | None = Field(default=None, max_length=2000)  # the customer's words
    requested_by: str = Field(max_length=120)  # "customer" or a staff member
    decline: str | None = Field(default=None, max_length=32)  # ReturnDecline
    needs_action: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    carrier: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=64, index=True)
    tracking_url: str | None = Field(default=None, max_length=500)
    # The customer sticks orderflow's return label on the parcel; false: the carrier's branch
    # issues the return waybill itself (Nova Poshta's return order), there is no label.
    needs_label: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
    refunded: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    # An exchange's replacement order (a real order of its own, linked here).
    exchange_order_id: uuid.UUID | None = Field(default=None, foreign_key="orders.id")
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())

    @property
    def label_kind(self) -> str:
        """Its return label's kind in `documents` (one per return of the order)."""
        return f"return_label_{self.seq}"


class ReturnItem(SQLModel, table=True):
    """A line of a return: what was sent back, and what the inspection accepted."""

    __tablename__ = "return_lines"

    id: int | None = Field(default=None, primary_key=True)
    return_id: uuid.UUID = Field(foreign_key="returns.id", index=True)
    sku: str = Field(max_length=64)
    name: str = Field(max_length=200)
    quantity: int
    unit_price: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    accepted: int | None = None  # after inspection
    finding: str | None = Field(default=None, max_length=16)  # InspectionFinding for the rest


class IntakeConnector(SQLModel, table=True):
    """A shop platform orders arrive from (schema/intake): its kind, its settings, and its
    credentials sealed or by reference to the environment (schema/intake/credentials.py)."""

    __tablename__ = "intake_connectors"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=16)  # a ConnectorKind
    name: str = Field(max_length=32, unique=True)  # in its webhook's URL and its orders' numbers
    settings: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    credentials: dict[str, dict[str, str]] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    enabled: bool = Field(default=True, sa_column_kwargs={"server_default": "true"})
    # A polled connector's cursor: the latest `date_modified` of the orders taken (the next
    # poll asks for orders modified since); advanced only once they are taken.
    polled_to: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_by: str = Field(max_length=120)
    created_at: datetime | None = Field(default=None, sa_column=_now_column())
    updated_at: datetime | None = Field(default=None, sa_column=_now_column())


class IntakeDelivery(SQLModel, table=True):
    """Every webhook delivery a connector accepted once (the source's delivery id): the same
    delivery again finds its row and changes nothing."""

    __tablename__ = "intake_deliveries"
    __table_args__ = (UniqueConstraint("connector_id", "delivery_id"),)

    id: int | None = Field(default=None, primary_key=True)
    connector_id: uuid.UUID = Field(foreign_key="intake_connectors.id", index=True)
    delivery_id: str = Field(max_length=128)
    source_order_id: str = Field(max_length=64)
    received_at: datetime | None = Field(default=None, sa_column=_now_column())


class OrderSource(SQLModel, table=True):
    """Where an order came from: its connector and its id there (one order per source order)."""

    __tablename__ = "order_sources"
    __table_args__ = (UniqueConstraint("connector_id", "source_order_id"),)

    order_id: uuid.UUID = Field(foreign_key="orders.id", primary_key=True)
    connector_id: uuid.UUID = Field(foreign_key="intake_connectors.id", index=True)
    source_order_id: str = Field(max_length=64)


class IntakeFailure(SQLModel, table=True):
    """A source's order that could not become an order (a MappingError): shown in the
    operator queue until resolved. The raw payload is kept here only — never in Temporal —
    and goes when the failure is resolved, the connector deleted or the customer erased
    (by `email`, when the payload named one)."""

    __tablename__ = "intake_failures"

    id: int | None = Field(default=None, primary_key=True)
    connector_id: uuid.UUID = Field(foreign_key="intake_connectors.id", index=True)
    source_order_id: str = Field(max_length=64)
    field: str = Field(max_length=200)
    message: str = Field(max_length=500)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    email: str | None = Field(default=None, max_length=320, index=True)
    status: str = Field(default="open", max_length=16)  # open | resolved
    opened_at: datetime | None = Field(default=None, sa_column=_now_column())
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    resolved_by: str | None = Field(default=None, max_length=120)
