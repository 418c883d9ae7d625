"""The carrier port: what orderflow asks of any carrier, and what it hears back.

A carrier books a parcel (a tracking number, its tracking page, the carrier's own reference
and its estimate of the delivery date), cancels a booking, prints its own sticker when it has
one, tracks parcels in batches (carriers without webhooks: Nova Poshta, Ukrposhta, Meest) and
books a customer's return. Errors are the providers' named ones (activities/providers.py):
`ProviderUnavailable` is retried, `ProviderRejected` is not (an incident an operator settles).

Adapters: `simulated` (the devstack's invented carrier, AfterShip's words, webhooks),
`novaposhta`, `ukrposhta`, `meest` (tracking only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from temporalio.exceptions import ApplicationError

from schema.contracts import CodPayout, TrackingStatus
from schema.vocabulary import ErrorType


@dataclass(frozen=True)
class Branch:
    """A carrier's branch (Nova Poshta's відділення or parcel locker) the parcel waits at."""

    ref: str
    number: str
    city: str = ""
    working: bool = True


@dataclass(frozen=True)
class Address:
    """Where a parcel goes (or comes from, for a return). Personal data: the activity reads it
    from Postgres and hands it to the carrier; it never reaches Temporal."""

    country: str
    city: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    name: str | None = None
    phone: str | None = None  # E.164


@dataclass(frozen=True)
class ParcelRequest:
    """One parcel to book: the order's, or a customer's return parcel (`return_ref`)."""

    key: str  # the booking's idempotency key, the same on every retry
    order_id: str
    reference: str  # the shop's number for it (order number, return number)
    service: str  # from the carrier rules (activities/data/carrier_rules.json)
    weight_kg: float
    declared_value: Decimal
    description: str  # what is inside, in words (the goods' names)
    address: Address  # the recipient's (the sender's, for a return)
    branch: Branch | None = None  # delivered to a branch instead of the door
    cash_on_delivery: Decimal | None = None  # collected from the recipient for the shop
    callback_url: str = ""  # carriers that push their news (the simulated one)
    return_ref: str | None = None
    lines: list[tuple[str, int]] | None = None  # a return parcel's SKUs and quantities
    # A return: the delivered parcel's tracking number (Nova Poshta returns a waybill by it).
    delivered_tracking_number: str | None = None


@dataclass(frozen=True)
class Booking:
    tracking_number: str
    tracking_url: str
    carrier_ref: str  # the carrier's own reference of the booking (Nova Poshta's Ref)
    expected_date: date | None = None  # the carrier's estimate (EstimatedDeliveryDate)
    # A return: the customer sticks orderflow's return label on the parcel. False: the
    # carrier's branch issues the return waybill itself (Nova Poshta's return order).
    label: bool = True


@dataclass(frozen=True)
class TrackedParcel:
    """A parcel in flight, as a tracking call asks for it."""

    tracking_number: str
    phone: str | None = None  # the recipient's: Nova Poshta answers more with it


@dataclass(frozen=True)
class TrackingUpdate:
    """What a carrier says of one parcel now, in orderflow's words beside its own code."""

    tracking_number: str
    code: str  # the carrier's own status code ("7"), kept to see what changed
    status: TrackingStatus
    at: datetime
    subtag: str = ""  # AfterShip's subtag, where the carrier's code means one (refused, …)
    detail: str = ""  # the carrier's words (no personal data: the status text only)
    storage_until: date | None = None  # at a branch: kept free of charge until
    cod: CodPayout | None = None  # cash on delivery: the money's way to the shop
    cod_amount: Decimal | None = None  # ... and how much was paid out


class Carrier(Protocol):
    """One carrier's API, as the shipping activities use it."""

    name: str  # as settings name it: sim, novaposhta, ukrposhta, meest
    polls: bool  # no webhooks: tracked by the tracking schedule (CarrierTrackingWorkflow)
    batch: int  # tracking numbers one tracking call takes
    reports_payout: bool  # tells when cash on delivery is paid out to the shop

    async def book(self, parcel: ParcelRequest) -> Booking: ...

    async def cancel(self, tracking_number: str, carrier_ref: str) -> None: ...

    async def sticker(self, tracking_number: str, carrier_ref: str) -> bytes | None:
        """The carrier's own label (PDF), when it prints one."""
        ...

    async def track(self, parcels: list[TrackedParcel]) -> list[TrackingUpdate]:
        """At most `batch` parcels; an unknown number is left out or answered as the
        carrier answers it (Nova Poshta: status 3)."""
        ...

    async def book_return(self, parcel: ParcelRequest) -> Booking: ...

    async def find_branch(self, ref: str) -> Branch | None:
        """The branch by its reference (None: the carrier knows no such branch)."""
        ...


def not_built(carrier: str, what: str) -> ApplicationError:
    """What an adapter does not do (yet): refused for good, an operator settles it (README,
    Carriers, says which)."""
    return ApplicationError(
        f"{carrier}: {what} is not built in orderflow's {carrier} adapter",
        type=ErrorType.PROVIDER_REJECTED,
        non_retryable=True,
    )
