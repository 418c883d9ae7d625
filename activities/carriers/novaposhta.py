"""Nova Poshta's API 2.0 (https://developers.novaposhta.ua): one POST endpoint, a body of
`{apiKey, modelName, calledMethod, methodProperties}`, an answer of `{success, data, errors,
warnings, errorCodes, …}` — HTTP 200 also when it refuses (`success: false`).

Waybills (`InternetDocument.save`: the tracking number is `IntDocNumber`, the carrier's
estimate `EstimatedDeliveryDate`), to a branch (`WarehouseWarehouse`) or to the door
(`WarehouseDoors`), with cash on delivery as a money transfer back (`BackwardDeliveryData`) or
as payment control (`AfterpaymentOnGoodsCost`); deleted on cancel (`InternetDocument.delete`);
the sticker from my.novaposhta.ua. A customer's return is Nova Poshta's return order of the
delivered waybill (`AdditionalService`: `CheckPossibilityCreateReturn`, `save` with
`orderCargoReturn`, the return's waybill from `getReturnOrdersList`). No webhooks: parcels are tracked by polling
(`TrackingDocument.getStatusDocuments`, up to 100 a call), each `StatusCode` read as
AfterShip's words (`STATUS_CODES`). The devstack's simulator speaks the same, from the same
fixtures (devstack/fixtures/novaposhta/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity

from activities.carriers.base import (
    Booking,
    Branch,
    ParcelRequest,
    TrackedParcel,
    TrackingUpdate,
)
from activities.providers import Provider, provider_error
from schema.contracts import CodPayout, TrackingStatus

KYIV = ZoneInfo("Europe/Kyiv")

# Error codes a retry may heal (Nova Poshta's own trouble); any other refusal is for good.
RETRYABLE_CODES = frozenset({"20000100008", "20000100016"})  # unknown error, unavailable

# StatusCode -> (AfterShip's tag, subtag, the money's way), as the issue reads them.
STATUS_CODES: dict[str, tuple[TrackingStatus, str, CodPayout | None]] = {
    "1": (TrackingStatus.INFO_RECEIVED, "", None),  # created by the sender
    "2": (TrackingStatus.EXCEPTION, "", None),  # deleted: an incident
    "3": (TrackingStatus.EXCEPTION, "", None),  # number not found: an incident
    "4": (TrackingStatus.IN_TRANSIT, "", None),  # in the sender's city
    "41": (TrackingStatus.IN_TRANSIT, "", None),
    "5": (TrackingStatus.IN_TRANSIT, "", None),  # on its way to the recipient's city
    "6": (TrackingStatus.IN_TRANSIT, "", None),  # in the recipient's city
    "104": (TrackingStatus.IN_TRANSIT, "", None),  # address changed
    "112": (TrackingStatus.IN_TRANSIT, "", None),  # delivery date moved by the recipient
    "101": (TrackingStatus.OUT_FOR_DELIVERY, "", None),  # the courier is on the way
    "7": (TrackingStatus.AVAILABLE_FOR_PICKUP, "", None),  # at the branch
    "8": (TrackingStatus.AVAILABLE_FOR_PICKUP, "", None),  # in the branch's parcel locker
    "9": (TrackingStatus.DELIVERED, "", None),
    "10": (TrackingStatus.DELIVERED, "", CodPayout.TRANSFER_PENDING),
    "11": (TrackingStatus.DELIVERED, "", CodPayout.PAID_OUT),
    "102": (TrackingStatus.EXCEPTION, "Exception_003", None),  # refused: returning
    "103": (TrackingStatus.EXCEPTION, "Exception_003", None),
    "105": (TrackingStatus.EXCEPTION, "Exception_008", None),  # storage ended: unclaimed
    "106": (TrackingStatus.EXCEPTION, "Exception_010", None),  # a return waybill: returning
    "111": (TrackingStatus.ATTEMPT_FAIL, "", None),  # nobody at the door
}
# The door: "Khreshchatyk 1" is street "Khreshchatyk", house "1" (Nova Poshta asks apart).
_HOUSE = re.compile(r"^(?P<street>.*?)[\s,]+(?P<house>\d+[\w/-]*)$")


@dataclass(frozen=True)
class NovaPoshtaAccount:
    """The shop's business account and the sender its waybills name (settings)."""

    api_key: str
    sender_ref: str
    contact_ref: str
    city_ref: str
    address_ref: str  # the branch the shop hands parcels in at
    phone: str
    cod: str = "backward_delivery"  # or "payment_control"
    tracking_page: str = "https://novaposhta.ua/tracking/"


class NovaPoshta:
    name = "novaposhta"
    polls = True
    batch = 100  # getStatusDocuments takes up to 100 documents
    reports_payout = True

    def __init__(self, api: Provider, printing: Provider, account: NovaPoshtaAccount) -> None:
        self._api = api
        self._printing = printing
        self._account = account

    async def call(self, model: str, method: str, properties: dict[str, Any]) -> list[Any]:
        """One method; its `data`, or the envelope's refusal as a named failure."""
        answer = await self._api.call(
            "POST",
            "/",
            json={
                "apiKey": self._account.api_key,
                "modelName": model,
                "calledMethod": method,
                "methodProperties": properties,
            },
        )
        if not isinstance(answer, dict) or "success" not in answer:
            raise provider_error(self.name, f"{model}.{method}: no envelope", retryable=True)
        if not answer["success"]:
            codes = [str(code) for code in answer.get("errorCodes") or []]
            errors = "; ".join(str(error) for error in answer.get("errors") or [])[:300]
            raise provider_error(
                self.name,
                f"{model}.{method} refused: {errors or 'no reason given'} (codes {codes})",
                retryable=bool(codes) and set(codes) <= RETRYABLE_CODES,
            )
        data = answer.get("data")
        return data if isinstance(data, list) else []

    # --- waybills -------------------------------------------------------------------------

    async def book(self, parcel: ParcelRequest) -> Booking:
        if activity.in_activity() and activity.info().attempt > 1:
            # Nova Poshta takes no idempotency key: a retry after a lost answer first looks
            # for the waybill the lost attempt made, by the client number it carries.
            made = await self._made_today(parcel.reference)
            if made is not None:
                return made
        properties = {
            **self._common(parcel),
            **await self._recipient(parcel),
            **self._cash_on_delivery(parcel),
        }
        [document] = await self._one("InternetDocument", "save", properties)
        return self._booking(document)

    def _common(self, parcel: ParcelRequest) -> dict[str, Any]:
        account = self._account
        return {
            "NewAddress": "1",
            "PayerType": "Recipient",
            "PaymentMethod": "Cash",
            "CargoType": "Parcel",
            "VolumeGeneral": "0.001",
            "Weight": f"{max(parcel.weight_kg, 0.1):.1f}",
            "ServiceType": parcel.service,
            "SeatsAmount": "1",
            "Description": parcel.description or parcel.reference,
            "Cost": _whole(parcel.declared_value),
            "CitySender": account.city_ref,
            "Sender": account.sender_ref,
            "SenderAddress": account.address_ref,
            "ContactSender": account.contact_ref,
            "SendersPhone": account.phone,
            "DateTime": datetime.now(KYIV).strftime("%d.%m.%Y"),
            "InfoRegClientBarcodes": parcel.reference,
        }

    async def _recipient(self, parcel: ParcelRequest) -> dict[str, Any]:
        address = parcel.address
        if address.name is None or address.phone is None:
            raise provider_error(
                self.name, "the recipient's name and phone are gone (erased)", retryable=False
            )
        recipient = {
            "RecipientName": address.name,
            "RecipientType": "PrivatePerson",
            "RecipientsPhone": address.phone.lstrip("+"),
            "RecipientArea": "",
            "RecipientAreaRegions": "",
            "RecipientHouse": "",
            "RecipientFlat": "",
        }
        if parcel.branch is not None:
            branch = await self.find_branch(parcel.branch.ref)
            if branch is None or not branch.working:
                raise provider_error(
                    self.name,
                    f"branch {parcel.branch.ref} is not a working Nova Poshta branch",
                    retryable=False,
                )
            return {
                **recipient,
                "RecipientCityName": branch.city,
                "RecipientAddressName": branch.number,
            }
        match = _HOUSE.match((address.line1 or "").strip())
        street, house = (match["street"], match["house"]) if match else (address.line1 or "", "")
        return {
            **recipient,
            "RecipientCityName": address.city or "",
            "RecipientAddressName": street,
            "RecipientHouse": house,
            "RecipientFlat": address.line2 or "",
        }

    def _cash_on_delivery(self, parcel: ParcelRequest) -> dict[str, Any]:
        if parcel.cash_on_delivery is None:
            return {}
        amount = _whole(parcel.cash_on_delivery)
        if self._account.cod == "payment_control":
            return {"AfterpaymentOnGoodsCost": amount}
        return {
            "BackwardDeliveryData": [
                {"PayerType": "Recipient", "CargoType": "Money", "RedeliveryString": amount}
            ]
        }

    async def _made_today(self, reference: str) -> Booking | None:
        today = datetime.now(KYIV).strftime("%d.%m.%Y")
        documents = await self.call(
            "InternetDocument",
            "getDocumentList",
            {"DateTimeFrom": today, "DateTimeTo": today, "GetFullList": "1"},
        )
        for document in documents:
            if isinstance(document, dict) and document.get("InfoRegClientBarcodes") == reference:
                return self._booking(document)
        return None

    def _booking(self, document: dict[str, Any]) -> Booking:
        try:
            number, ref = str(document["IntDocNumber"]), str(document["Ref"])
        except KeyError as exc:
            raise provider_error(self.name, f"a waybill without {exc}", retryable=False) from exc
        return Booking(
            tracking_number=number,
            tracking_url=f"{self._account.tracking_page}?cargo_number={number}",
            carrier_ref=ref,
            expected_date=_date(document.get("EstimatedDeliveryDate")),
        )

    async def cancel(self, tracking_number: str, carrier_ref: str) -> None:
        await self._one("InternetDocument", "delete", {"DocumentRefs": carrier_ref})

    async def sticker(self, tracking_number: str, carrier_ref: str) -> bytes | None:
        path = (
            f"/orders/printMarking100x100/orders[]/{tracking_number}"
            f"/type/pdf/apiKey/{self._account.api_key}"
        )
        pdf = await self._printing.download(path, f"the sticker of {tracking_number}")
        if not pdf.startswith(b"%PDF"):
            # An expired key prints an HTML page, not a sticker: no retry changes that.
            raise provider_error(self.name, "the sticker is not a PDF", retryable=False)
        return pdf

    # --- a customer's return: Nova Poshta's return order (AdditionalService) ---------------

    async def book_return(self, parcel: ParcelRequest) -> Booking:
        """A return order of the delivered waybill, back to the shop's address: Nova Poshta
        checks it may come back (a refusal is its own words, for good), the return's waybill
        is issued by the branch the customer brings the parcel to (no label to print), and
        tracked as any waybill. Nova Poshta takes no idempotency key: a retry first looks
        for the order its lost attempt made, by the delivered waybill's number."""
        delivered = parcel.delivered_tracking_number
        if not delivered:
            raise provider_error(
                self.name, "a return needs the delivered waybill's number", retryable=False
            )
        order = None
        if activity.in_activity() and activity.info().attempt > 1:
            order = await self._return_ordered_today(delivered)
        if order is None:
            order = await self._order_return(delivered, parcel.reference)
        number = str(order.get("ExpressWaybillNumber") or "")
        if not number:  # the return's waybill is issued with the order: not yet, ask again
            raise provider_error(
                self.name,
                f"return order {order.get('OrderNumber')} has no waybill yet",
                retryable=True,
            )
        return Booking(
            tracking_number=number,
            tracking_url=f"{self._account.tracking_page}?cargo_number={number}",
            carrier_ref=str(order.get("OrderRef", "")),
            expected_date=_date(order.get("EstimatedDeliveryDate")),
            label=False,
        )

    async def _order_return(self, delivered: str, reference: str) -> dict[str, Any]:
        [possible] = await self._one(
            "AdditionalService", "CheckPossibilityCreateReturn", {"Number": delivered}
        )
        # Nova Poshta's own first reason and subtype: the customer's reason is the shop's.
        reason = _first_ref(await self.call("AdditionalService", "getReturnReasons", {}))
        subtype = _first_ref(
            await self.call("AdditionalService", "getReturnReasonsSubtypes", {"ReasonRef": reason})
        )
        [saved] = await self._one(
            "AdditionalService",
            "save",
            {
                "OrderType": "orderCargoReturn",
                "IntDocNumber": delivered,
                "PaymentMethod": "NonCash" if possible.get("NonCash") else "Cash",
                "Reason": reason,
                "SubtypeReason": subtype,
                "Note": reference,
                "ReturnAddressRef": possible.get("Ref", ""),
            },
        )
        orders = await self.call(
            "AdditionalService", "getReturnOrdersList", {"Number": saved.get("Number", "")}
        )
        for order in orders:
            if isinstance(order, dict) and order.get("OrderNumber") == saved.get("Number"):
                return order
        raise provider_error(
            self.name, f"return order {saved.get('Number')} is not in the list", retryable=True
        )

    async def _return_ordered_today(self, delivered: str) -> dict[str, Any] | None:
        today = datetime.now(KYIV).strftime("%d.%m.%Y")
        orders = await self.call(
            "AdditionalService", "getReturnOrdersList", {"BeginDate": today, "EndDate": today}
        )
        for order in orders:
            if isinstance(order, dict) and order.get("DocumentNumber") == delivered:
                return order
        return None

    async def find_branch(self, ref: str) -> Branch | None:
        found = await self.call("Address", "getWarehouses", {"Ref": ref, "Language": "UA"})
        for branch in found:
            if isinstance(branch, dict) and branch.get("Ref") == ref:
                return Branch(
                    ref=ref,
                    number=str(branch.get("Number", "")),
                    city=str(branch.get("CityDescription", "")),
                    working=branch.get("WarehouseStatus", "Working") == "Working",
                )
        return None

    # --- tracking -------------------------------------------------------------------------

    async def track(self, parcels: list[TrackedParcel]) -> list[TrackingUpdate]:
        if len(parcels) > self.batch:
            raise ValueError(f"Nova Poshta tracks at most {self.batch} documents a call")
        documents = [
            {"DocumentNumber": parcel.tracking_number, "Phone": (parcel.phone or "").lstrip("+")}
            for parcel in parcels
        ]
        answers = await self.call(
            "TrackingDocument", "getStatusDocuments", {"Documents": documents}
        )
        asked = {parcel.tracking_number for parcel in parcels}
        updates = []
        for answer in answers:
            update = self.read_status(answer)
            if update is not None and update.tracking_number in asked:
                updates.append(update)
        return updates

    @staticmethod
    def read_status(answer: Any) -> TrackingUpdate | None:
        """One document's status in orderflow's words (None: a code not in the table)."""
        if not isinstance(answer, dict):
            return None
        code = str(answer.get("StatusCode", "")).strip()
        if code not in STATUS_CODES or not answer.get("Number"):
            return None
        status, subtag, cod = STATUS_CODES[code]
        received = _datetime(answer.get("RecipientDateTime"))
        return TrackingUpdate(
            tracking_number=str(answer["Number"]),
            code=code,
            status=status,
            subtag=subtag,
            at=received if status == TrackingStatus.DELIVERED and received else datetime.now(UTC),
            detail=str(answer.get("Status", ""))[:200],
            storage_until=_date(answer.get("DatePayedKeeping")),
            cod=cod,
            cod_amount=_paid_out(answer) if cod == CodPayout.PAID_OUT else None,
        )

    async def _one(self, model: str, method: str, properties: dict[str, Any]) -> list[Any]:
        data = await self.call(model, method, properties)
        if len(data) != 1 or not isinstance(data[0], dict):
            raise provider_error(
                self.name, f"{model}.{method} answered {len(data)} items, not 1", retryable=False
            )
        return data


def _whole(amount: Decimal) -> str:
    """Nova Poshta's money: hryvnias as a string, no kopecks where it wants whole numbers."""
    return str(amount.quantize(Decimal("1")) if amount == amount.to_integral() else amount)


def _first_ref(items: list[Any]) -> str:
    """The Ref of a list's first item ("" when the list is empty)."""
    first = items[0] if items else None
    return str(first.get("Ref", "")) if isinstance(first, dict) else ""


def _paid_out(answer: dict[str, Any]) -> Decimal | None:
    """The cash on delivery the shop was paid: the money transfer's sum, or the payment
    control's amount paid."""
    for field in ("RedeliverySum", "AmountPaid"):
        try:
            amount = Decimal(str(answer.get(field) or "0"))
        except InvalidOperation:
            continue
        if amount > 0:
            return amount
    return None


_FORMATS = ("%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%d.%m.%Y", "%Y-%m-%d")


def _datetime(value: Any) -> datetime | None:
    """Nova Poshta writes dates several ways (dd.mm.yyyy, yyyy-mm-dd, dd-mm-yyyy), in Kyiv."""
    text = str(value or "").strip()
    if not text or text.startswith("0001"):
        return None
    for pattern in _FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=KYIV)
        except ValueError:
            continue
    return None


def _date(value: Any) -> date | None:
    moment = _datetime(value)
    return moment.date() if moment is not None else None
