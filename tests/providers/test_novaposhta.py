"""The Nova Poshta adapter against the recorded requests and answers of its documentation
(devstack/fixtures/novaposhta/, the same the simulator speaks): every request carries the
fixture request's fields, every fixture answer reads as orderflow's words, and the error
envelopes (HTTP 200, `success: false`) are named failures — retried or not by their codes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carriers.base import Address, Branch, ParcelRequest, TrackedParcel
from activities.carriers.novaposhta import STATUS_CODES, NovaPoshta, NovaPoshtaAccount
from activities.providers import Provider
from devstack.fixtures import fixture
from schema.contracts import CodPayout, TrackingStatus

ACCOUNT = NovaPoshtaAccount(
    api_key="dev-novaposhta-key",
    sender_ref="6e9acced-d072-11e3-95eb-0050568046cd",
    contact_ref="a4f5e3b6-d072-11e3-95eb-0050568046cd",
    city_ref="8d5a980d-391c-11dd-90d9-001a92567626",
    address_ref="1ec09d88-e1c2-11e3-8c4a-0050568002cf",
    phone="380441234567",
)
BRANCH_REF = "1ec09d2e-e1c2-11e3-8c4a-0050568002cf"
Answer = Callable[[dict[str, Any]], Any]


class NovaPoshtaDouble:
    """Nova Poshta's endpoint as the fixtures record it: each call answered by the fixture
    of its method; every body sent is kept."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.sent: list[dict[str, Any]] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        if request.method == "GET":
            return httpx.Response(200, content=self.answers["sticker"])
        body = json.loads(request.content)
        self.sent.append(body)
        return httpx.Response(200, json=self.answers[f"{body['modelName']}.{body['calledMethod']}"])


@pytest.fixture
async def http() -> AsyncIterator[Callable[[NovaPoshtaDouble], NovaPoshta]]:
    clients: list[httpx.AsyncClient] = []

    def adapter(double: NovaPoshtaDouble, account: NovaPoshtaAccount = ACCOUNT) -> NovaPoshta:
        client = httpx.AsyncClient(transport=httpx.MockTransport(double))
        clients.append(client)
        return NovaPoshta(
            Provider("novaposhta", client, "https://api.novaposhta.ua/v2.0/json/"),
            Provider("novaposhta", client, "https://my.novaposhta.ua"),
            account,
        )

    yield adapter  # type: ignore[misc]
    for client in clients:
        await client.aclose()


def _carries(sent: dict[str, Any], recorded: dict[str, Any], *, but: set[str]) -> None:
    """The request sent has the recorded one's model, method and every field, with the
    recorded values (`but`: fields whose value is the day's)."""
    assert (sent["modelName"], sent["calledMethod"]) == (
        recorded["modelName"],
        recorded["calledMethod"],
    )
    assert sent["apiKey"] == recorded["apiKey"]
    wanted, given = recorded["methodProperties"], sent["methodProperties"]
    assert set(wanted) <= set(given), f"missing {set(wanted) - set(given)}"
    assert {k: v for k, v in given.items() if k not in but} == {
        k: v for k, v in wanted.items() if k not in but
    }


def _parcel(**changes: Any) -> ParcelRequest:
    parcel = ParcelRequest(
        key="order-1:shipment",
        order_id="order-1",
        reference="SHOP-1001",
        service="WarehouseWarehouse",
        weight_kg=1.0,
        declared_value=Decimal("500.00"),
        description="Mug",
        address=Address(country="UA", name="Коваль Ірина", phone="+380501234567"),
        branch=Branch(ref=BRANCH_REF, number="25"),
        cash_on_delivery=Decimal("500.00"),
    )
    return dataclasses.replace(parcel, **changes)


async def test_a_branch_waybill_with_cash_on_delivery_is_the_documented_request(
    http: Callable[..., NovaPoshta],
) -> None:
    save, branches = fixture("novaposhta", "save_branch_cod"), fixture("novaposhta", "warehouses")
    double = NovaPoshtaDouble(
        {"InternetDocument.save": save["response"], "Address.getWarehouses": branches["response"]}
    )
    booking = await http(double).book(_parcel())

    looked_up, saved = double.sent
    _carries(looked_up, branches["request"], but=set())
    _carries(saved, save["request"], but={"DateTime"})
    assert booking.tracking_number == "20450912345678"
    assert booking.carrier_ref == "b9c5d1b2-cd0f-11f0-a1d5-48df37b921db"
    assert booking.expected_date == date(2026, 11, 30)  # EstimatedDeliveryDate
    assert booking.tracking_url.endswith("?cargo_number=20450912345678")


async def test_a_door_waybill_with_payment_control_is_the_documented_request(
    http: Callable[..., NovaPoshta],
) -> None:
    save = fixture("novaposhta", "save_doors_payment_control")
    double = NovaPoshtaDouble({"InternetDocument.save": save["response"]})
    account = dataclasses.replace(ACCOUNT, cod="payment_control")
    door = Address(
        country="UA",
        city="Kyiv",
        line1="Khreshchatyk 1",
        postal_code="01001",
        name="Iryna Koval",
        phone="+380501234567",
    )
    parcel = _parcel(service="WarehouseDoors", branch=None, address=door, reference="SHOP-1002")
    booking = await http(double, account).book(parcel)

    [saved] = double.sent
    _carries(saved, save["request"], but={"DateTime"})
    assert "BackwardDeliveryData" not in saved["methodProperties"]
    assert booking.expected_date == date(2026, 12, 1)


async def test_a_retried_booking_finds_the_waybill_its_lost_attempt_made(
    http: Callable[..., NovaPoshta],
) -> None:
    """Nova Poshta takes no idempotency key: attempt 2 asks for the day's waybills first
    and takes the one with its client number, saving nothing."""
    listed = fixture("novaposhta", "document_list")
    double = NovaPoshtaDouble({"InternetDocument.getDocumentList": listed["response"]})
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)

    booking = await retry.run(http(double).book, _parcel())

    [asked] = double.sent
    _carries(asked, listed["request"], but={"DateTimeFrom", "DateTimeTo"})
    assert booking.tracking_number == "20450912345678"
    assert [body["calledMethod"] for body in double.sent] == ["getDocumentList"]


async def test_cancel_deletes_the_waybill_by_its_ref(http: Callable[..., NovaPoshta]) -> None:
    deleted = fixture("novaposhta", "delete")
    double = NovaPoshtaDouble({"InternetDocument.delete": deleted["response"]})
    await http(double).cancel("20450912345678", "b9c5d1b2-cd0f-11f0-a1d5-48df37b921db")
    [sent] = double.sent
    _carries(sent, deleted["request"], but=set())


async def test_tracking_asks_with_the_phone_and_reads_every_answer(
    http: Callable[..., NovaPoshta],
) -> None:
    tracked = fixture("novaposhta", "status_documents")
    double = NovaPoshtaDouble({"TrackingDocument.getStatusDocuments": tracked["response"]})
    parcels = [
        TrackedParcel(doc["DocumentNumber"], "+" + doc["Phone"])
        for doc in tracked["request"]["methodProperties"]["Documents"]
    ]
    at_branch, paid_out, unknown = await http(double).track(parcels)

    [sent] = double.sent
    _carries(sent, tracked["request"], but=set())
    assert (at_branch.code, at_branch.status) == ("7", TrackingStatus.AVAILABLE_FOR_PICKUP)
    assert at_branch.storage_until == date(2026, 12, 5)  # DatePayedKeeping
    assert at_branch.cod is None
    assert (paid_out.code, paid_out.status, paid_out.cod) == (
        "11",
        TrackingStatus.DELIVERED,
        CodPayout.PAID_OUT,
    )
    assert paid_out.cod_amount == Decimal("500")  # AmountPaid (payment control)
    assert paid_out.at.date() == date(2026, 12, 1)  # RecipientDateTime
    assert (unknown.code, unknown.status) == ("3", TrackingStatus.EXCEPTION)


async def test_more_than_a_hundred_numbers_are_never_sent_in_one_call(
    http: Callable[..., NovaPoshta],
) -> None:
    double = NovaPoshtaDouble({})
    with pytest.raises(ValueError, match="at most 100"):
        await http(double).track([TrackedParcel(f"2045{n:010d}") for n in range(101)])
    assert double.sent == []


@pytest.mark.parametrize(
    ("name", "retryable"), [("error_auth", False), ("error_unavailable", True)]
)
async def test_error_envelopes_are_named_failures_retried_by_their_codes(
    http: Callable[..., NovaPoshta], name: str, retryable: bool
) -> None:
    refused = fixture("novaposhta", name)
    model, method = refused["request"]["modelName"], refused["request"]["calledMethod"]
    double = NovaPoshtaDouble({f"{model}.{method}": refused["response"]})
    with pytest.raises(ApplicationError) as failed:
        await http(double).call(model, method, refused["request"]["methodProperties"])
    assert failed.value.type == ("ProviderUnavailable" if retryable else "ProviderRejected")
    assert failed.value.non_retryable is not retryable
    assert refused["response"]["errorCodes"][0] in str(failed.value)


async def test_the_sticker_is_the_documented_pdf(http: Callable[..., NovaPoshta]) -> None:
    printed = fixture("novaposhta", "print_marking")
    double = NovaPoshtaDouble({"sticker": b"%PDF-1.4 sticker"})
    pdf = await http(double).sticker("20450912345678", "ref")
    assert pdf == b"%PDF-1.4 sticker"
    assert double.paths == [printed["request"]["path"]]
    expired = NovaPoshtaDouble({"sticker": b"<html>log in</html>"})
    with pytest.raises(ApplicationError, match="not a PDF") as failed:
        await http(expired).sticker("20450912345678", "ref")
    assert "dev-novaposhta-key" not in str(failed.value)  # the key never reaches a history


def test_every_status_code_of_the_issue_means_what_it_says() -> None:
    def meaning(code: str) -> tuple[TrackingStatus, str, CodPayout | None]:
        return STATUS_CODES[code]

    assert meaning("1")[0] == TrackingStatus.INFO_RECEIVED
    for code in ("4", "41", "5", "6", "104", "112"):
        assert meaning(code)[0] == TrackingStatus.IN_TRANSIT
    assert meaning("101")[0] == TrackingStatus.OUT_FOR_DELIVERY  # in transit, with the courier
    assert meaning("7")[0] == meaning("8")[0] == TrackingStatus.AVAILABLE_FOR_PICKUP
    assert [meaning(code) for code in ("9", "10", "11")] == [
        (TrackingStatus.DELIVERED, "", None),
        (TrackingStatus.DELIVERED, "", CodPayout.TRANSFER_PENDING),
        (TrackingStatus.DELIVERED, "", CodPayout.PAID_OUT),
    ]
    refused = {code: meaning(code)[1] for code in ("102", "103", "105", "106")}
    assert refused == {
        "102": "Exception_003",  # refused: it comes back
        "103": "Exception_003",
        "105": "Exception_008",  # storage ended, unclaimed
        "106": "Exception_010",  # a return waybill: on its way back
    }
    assert meaning("111")[0] == TrackingStatus.ATTEMPT_FAIL
    assert meaning("2") == meaning("3") == (TrackingStatus.EXCEPTION, "", None)  # an incident


async def test_an_answer_for_a_number_not_asked_about_is_dropped(
    http: Callable[..., NovaPoshta],
) -> None:
    """A foreign tracking number in Nova Poshta's answer reaches no order."""
    tracked = fixture("novaposhta", "status_documents")
    double = NovaPoshtaDouble({"TrackingDocument.getStatusDocuments": tracked["response"]})
    [only] = await http(double).track([TrackedParcel("20450912345678", "+380501234567")])
    assert only.tracking_number == "20450912345678"
