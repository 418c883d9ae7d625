"""The devstack's own carrier (`ORDERFLOW_CARRIER=sim`): an invented API that speaks
AfterShip's tracking words and pushes its news as signed webhooks. The existing tests and
stored histories use it."""

from __future__ import annotations

from activities.carriers.base import (
    Booking,
    Branch,
    ParcelRequest,
    TrackedParcel,
    TrackingUpdate,
    not_built,
)
from activities.providers import Provider


class SimulatedCarrier:
    name = "sim"
    polls = False  # it calls back: /v1/webhooks/carrier
    batch = 0
    reports_payout = False

    def __init__(self, api: Provider) -> None:
        self._api = api

    async def book(self, parcel: ParcelRequest) -> Booking:
        # An erased customer's parcel is booked to the country alone: the rest is gone.
        place = {
            "country": parcel.address.country,
            "city": parcel.address.city,
            "postal_code": parcel.address.postal_code,
        }
        body = {
            "order_ref": parcel.order_id,
            "reference": parcel.reference,
            "service": parcel.service,
            "weight_kg": parcel.weight_kg,
            "destination": {k: v for k, v in place.items() if v is not None},
            "callback_url": parcel.callback_url,
        }
        return self._booking(
            await self._api.call("POST", "/v1/shipments", json=body, idempotency_key=parcel.key)
        )

    async def book_return(self, parcel: ParcelRequest) -> Booking:
        place = {
            "country": parcel.address.country,
            "city": parcel.address.city,
            "postal_code": parcel.address.postal_code,
        }
        body = {
            "order_ref": parcel.order_id,
            "return_ref": parcel.return_ref,
            "direction": "return",
            "reference": parcel.reference,
            "service": parcel.service,
            "weight_kg": parcel.weight_kg,
            "origin": {k: v for k, v in place.items() if v is not None},
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in parcel.lines or []],
            "callback_url": parcel.callback_url,
        }
        return self._booking(
            await self._api.call("POST", "/v1/shipments", json=body, idempotency_key=parcel.key)
        )

    @staticmethod
    def _booking(answer: dict[str, str]) -> Booking:
        number = answer["tracking_number"]
        return Booking(number, answer["tracking_url"], carrier_ref=number)

    async def cancel(self, tracking_number: str, carrier_ref: str) -> None:
        await self._api.call("DELETE", f"/v1/shipments/{tracking_number}")

    async def sticker(self, tracking_number: str, carrier_ref: str) -> bytes | None:
        return None  # orderflow prints the label itself

    async def track(self, parcels: list[TrackedParcel]) -> list[TrackingUpdate]:
        raise not_built(self.name, "tracking by polling (it sends webhooks)")

    async def find_branch(self, ref: str) -> Branch | None:
        return None  # it has no branches
