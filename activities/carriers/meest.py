"""Meest: tracking only (`trackingParcel`, the Meest Polska B2B API's statuses of a parcel),
read as AfterShip's words (`STATUS_CODES`). Booking, cancelling, stickers and returns are
not built, so Meest cannot be the carrier settings choose (README, Carriers, says what is
missing); the adapter is checked against its fixture (devstack/fixtures/meest/) and the
devstack's simulator answers the same shape.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from activities.carriers.base import (
    Booking,
    Branch,
    ParcelRequest,
    TrackedParcel,
    TrackingUpdate,
    not_built,
)
from activities.providers import Provider
from schema.contracts import TrackingStatus

KYIV = ZoneInfo("Europe/Kyiv")

# The documented status codes; the one for "delivered" was not in the documentation we
# could read, so no Meest code is read as delivered (README, Carriers).
STATUS_CODES: dict[str, TrackingStatus] = {
    **{code: TrackingStatus.IN_TRANSIT for code in ("1", "2", "3", "4", "5", "7", "8", "9")},
    **{code: TrackingStatus.IN_TRANSIT for code in ("10", "11", "12")},
    "6": TrackingStatus.AVAILABLE_FOR_PICKUP,  # received at the office
    "13": TrackingStatus.OUT_FOR_DELIVERY,  # handed over to the courier
    "14": TrackingStatus.AVAILABLE_FOR_PICKUP,  # at a parcel locker, accepted by the branch
}


class Meest:
    name = "meest"
    polls = True
    batch = 1  # trackingParcel takes one parcel
    reports_payout = False

    def __init__(self, api: Provider, sid: str) -> None:
        self._api = api
        self._sid = sid  # the partner's API key, kept out of every error message

    async def track(self, parcels: list[TrackedParcel]) -> list[TrackingUpdate]:
        updates = []
        for parcel in parcels:
            statuses = await self._api.call(
                "GET",
                "/trackingParcel",
                params={"idParcel": parcel.tracking_number, "sid": self._sid},
                absent_ok=True,
            )
            update = self.read_status(parcel.tracking_number, statuses)
            if update is not None:
                updates.append(update)
        return updates

    @staticmethod
    def read_status(number: str, statuses: Any) -> TrackingUpdate | None:
        """The parcel's last status (None: none, or a code not in the table)."""
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[-1], dict):
            return None
        last = statuses[-1]
        code = str(last.get("statusCode", "")).strip()
        if code not in STATUS_CODES or str(last.get("idParcel")) != number:
            return None
        at = datetime.now(UTC)
        with contextlib.suppress(ValueError, TypeError):
            at = datetime.fromisoformat(str(last["eventDate"])).replace(tzinfo=KYIV)
        return TrackingUpdate(
            tracking_number=number,
            code=code,
            status=STATUS_CODES[code],
            at=at,
            detail=str(last.get("eventDescription") or "")[:200],
        )

    async def book(self, parcel: ParcelRequest) -> Booking:
        raise not_built(self.name, "booking a parcel")

    async def cancel(self, tracking_number: str, carrier_ref: str) -> None:
        raise not_built(self.name, "cancelling a parcel")

    async def sticker(self, tracking_number: str, carrier_ref: str) -> bytes | None:
        return None

    async def book_return(self, parcel: ParcelRequest) -> Booking:
        raise not_built(self.name, "booking a customer's return parcel")

    async def find_branch(self, ref: str) -> Branch | None:
        return None
