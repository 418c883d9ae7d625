"""Ukrposhta's eCom API 0.0.1 (https://dev.ukrposhta.ua): the recipient's address and client,
then a shipment (`deliveryType` W2W to their post office, W2D to the door) with cash on
delivery as `postPay`; its sticker as a PDF; a shipment deleted on cancel. Tracked by polling
`status-tracking/0.0.1/statuses/last?barcode=` (one barcode a call), each event code read as
AfterShip's words (`EVENTS`).

Authentication: the eCom bearer (a header) and the shop's counterparty token (a query
parameter, kept out of every error message). Ukrposhta's tracking does not say when cash on
delivery is paid out: an order paid in cash is collected at delivery, as before. Not built:
a customer's return parcel (README, Carriers).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
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
from activities.providers import Provider, provider_error
from schema.contracts import TrackingStatus

KYIV = ZoneInfo("Europe/Kyiv")

# Event code -> AfterShip's tag (the codes the documentation names; others are left unread).
EVENTS: dict[str, TrackingStatus] = {
    "10100": TrackingStatus.INFO_RECEIVED,  # accepted at the post office
    "20700": TrackingStatus.IN_TRANSIT,
    "20800": TrackingStatus.IN_TRANSIT,
    "21500": TrackingStatus.IN_TRANSIT,
    "21400": TrackingStatus.AVAILABLE_FOR_PICKUP,  # at the post office for delivery
    "21700": TrackingStatus.AVAILABLE_FOR_PICKUP,
    "31100": TrackingStatus.ATTEMPT_FAIL,  # not delivered: an attempt failed
    "31300": TrackingStatus.ATTEMPT_FAIL,
    "31400": TrackingStatus.ATTEMPT_FAIL,
    "41000": TrackingStatus.DELIVERED,
    "48000": TrackingStatus.DELIVERED,
}


@dataclass(frozen=True)
class UkrposhtaAccount:
    counterparty_token: str
    sender_uuid: str  # the shop as a client of its counterparty
    tracking_page: str = "https://track.ukrposhta.ua/tracking_UA.html"


class Ukrposhta:
    name = "ukrposhta"
    polls = True
    batch = 1  # statuses/last takes one barcode
    reports_payout = False

    def __init__(self, ecom: Provider, tracking: Provider, account: UkrposhtaAccount) -> None:
        self._ecom = ecom
        self._tracking = tracking
        self._account = account

    def _token(self) -> dict[str, str]:
        return {"token": self._account.counterparty_token}

    async def book(self, parcel: ParcelRequest) -> Booking:
        address = parcel.address
        if address.name is None or address.phone is None or address.postal_code is None:
            raise provider_error(
                self.name,
                "the recipient's name, phone or postcode is gone (erased)",
                retryable=False,
            )
        street, house = _street_and_house(address.line1 or "")
        place = await self._ecom.call(
            "POST",
            "/addresses",
            json={
                "postcode": address.postal_code,
                "country": address.country,
                "city": address.city or "",
                "street": street,
                "houseNumber": house,
                "apartmentNumber": address.line2 or "",
            },
        )
        first, _, last = address.name.strip().partition(" ")
        phone = address.phone.lstrip("+")
        client = await self._ecom.call(
            "POST",
            "/clients",
            params=self._token(),
            json={
                "type": "INDIVIDUAL",
                "firstName": first,
                "lastName": last or first,
                "addressId": _field(place, "id", self.name),
                "phoneNumber": phone,
                "externalId": parcel.reference,
            },
        )
        body: dict[str, Any] = {
            "sender": {"uuid": self._account.sender_uuid},
            "recipient": {"uuid": _field(client, "uuid", self.name)},
            "recipientPhone": phone,
            "deliveryType": parcel.service,
            "type": "STANDARD",
            "paidByRecipient": True,
            "nonCashPayment": False,
            "externalId": parcel.reference,
            "description": parcel.description or parcel.reference,
            "parcels": [
                {
                    "weight": round(max(parcel.weight_kg, 0.1) * 1000),
                    "length": 30,
                    "declaredPrice": _amount(parcel.declared_value),
                }
            ],
        }
        if parcel.cash_on_delivery is not None:
            body["postPay"] = _amount(parcel.cash_on_delivery)
            body["postPayPaidByRecipient"] = True
        # Ukrposhta takes no idempotency key: a retry after a lost answer may make a second
        # shipment (README, Carriers). Its externalId is the shop's number, to find it by.
        shipment = await self._ecom.call("POST", "/shipments", params=self._token(), json=body)
        barcode = str(_field(shipment, "barcode", self.name))
        return Booking(
            tracking_number=barcode,
            tracking_url=f"{self._account.tracking_page}?barcode={barcode}",
            carrier_ref=str(_field(shipment, "uuid", self.name)),
        )

    async def cancel(self, tracking_number: str, carrier_ref: str) -> None:
        await self._ecom.call("DELETE", f"/shipments/{carrier_ref}", params=self._token())

    async def sticker(self, tracking_number: str, carrier_ref: str) -> bytes | None:
        pdf = await self._ecom.download(
            f"/shipments/{carrier_ref}/sticker",
            f"the sticker of {tracking_number}",
            params=self._token(),
        )
        if not pdf.startswith(b"%PDF"):
            raise provider_error(self.name, "the sticker is not a PDF", retryable=False)
        return pdf

    async def track(self, parcels: list[TrackedParcel]) -> list[TrackingUpdate]:
        updates = []
        for parcel in parcels:
            last = await self._tracking.call(  # 404: not accepted yet, nothing to tell
                "GET", "/statuses/last", params={"barcode": parcel.tracking_number}, absent_ok=True
            )
            update = self.read_status(last)
            if update is not None and update.tracking_number == parcel.tracking_number:
                updates.append(update)
        return updates

    @staticmethod
    def read_status(last: Any) -> TrackingUpdate | None:
        if not isinstance(last, dict):
            return None
        code = str(last.get("event", "")).strip()
        if code not in EVENTS or not last.get("barcode"):
            return None
        at = datetime.now(UTC)
        with contextlib.suppress(ValueError, TypeError):
            at = datetime.fromisoformat(str(last["date"])).replace(tzinfo=KYIV)
        return TrackingUpdate(
            tracking_number=str(last["barcode"]),
            code=code,
            status=EVENTS[code],
            at=at,
            detail=str(last.get("eventName") or "")[:200],
        )

    async def book_return(self, parcel: ParcelRequest) -> Booking:
        raise not_built(self.name, "booking a customer's return parcel")

    async def find_branch(self, ref: str) -> Branch | None:
        return None  # delivered to the post office of the recipient's postcode (W2W)


def _street_and_house(line: str) -> tuple[str, str]:
    street, _, house = line.strip().rpartition(" ")
    return (street, house) if street and house[:1].isdigit() else (line.strip(), "")


def _amount(value: Decimal) -> int | float:
    """Hryvnias as a JSON number: whole when they are."""
    return int(value) if value == value.to_integral() else float(value)


def _field(answer: Any, name: str, carrier: str) -> Any:
    if not isinstance(answer, dict) or name not in answer:
        raise provider_error(carrier, f"an answer without {name}", retryable=False)
    return answer[name]
