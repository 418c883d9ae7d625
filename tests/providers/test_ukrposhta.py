"""The Ukrposhta adapter against the recorded requests and answers of its documentation
(devstack/fixtures/ukrposhta/, the same the simulator speaks): the address, the client and the
shipment with `postPay` carry the fixture requests' fields; the barcode is the tracking
number; tracking reads the documented event codes; a refusal is named and not retried; the
counterparty token never reaches an error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.carriers.base import Address, ParcelRequest, TrackedParcel
from activities.carriers.ukrposhta import EVENTS, Ukrposhta, UkrposhtaAccount
from activities.providers import Provider
from devstack.fixtures import fixture
from schema.contracts import TrackingStatus

ACCOUNT = UkrposhtaAccount(
    counterparty_token="dev-ukrposhta-counterparty-token",
    sender_uuid="3b1a7a0e-6a6f-4f38-8a55-7f1d1e6b5c01",
)
PARCEL = ParcelRequest(
    key="order-1:shipment",
    order_id="order-1",
    reference="SHOP-1001",
    service="W2D",
    weight_kg=1.0,
    declared_value=Decimal("500.00"),
    description="Mug",
    address=Address(
        country="UA",
        city="Kyiv",
        line1="Khreshchatyk 1",
        postal_code="01001",
        name="Iryna Koval",
        phone="+380501234567",
    ),
    cash_on_delivery=Decimal("500.00"),
)


class UkrposhtaDouble:
    """Ukrposhta's two APIs as the fixtures record them; every request is kept."""

    def __init__(self, answers: dict[tuple[str, str], httpx.Response]) -> None:
        self.answers = answers
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        for (method, path), response in self.answers.items():
            if request.method == method and request.url.path.endswith(path):
                return response
        return httpx.Response(404, json={"message": "not found"})


def _json(name: str) -> httpx.Response:
    return httpx.Response(200, json=fixture("ukrposhta", name)["response"])


@pytest.fixture
async def adapter() -> AsyncIterator[Callable[[UkrposhtaDouble], Ukrposhta]]:
    clients: list[httpx.AsyncClient] = []

    def build(double: UkrposhtaDouble) -> Ukrposhta:
        client = httpx.AsyncClient(transport=httpx.MockTransport(double))
        clients.append(client)
        return Ukrposhta(
            Provider("ukrposhta", client, "https://www.ukrposhta.ua/ecom/0.0.1",
                     headers={"Authorization": "Bearer dev-ukrposhta-bearer"}),
            Provider("ukrposhta", client, "https://www.ukrposhta.ua/status-tracking/0.0.1",
                     headers={"Authorization": "Bearer dev-ukrposhta-tracking-bearer"}),
            ACCOUNT,
        )  # fmt: skip

    yield build
    for client in clients:
        await client.aclose()


def _carries(sent: httpx.Request, recorded: dict[str, Any]) -> None:
    assert sent.method == recorded["method"]
    assert sent.url.path.endswith(recorded["path"])
    assert dict(sent.url.params) == recorded.get("params", {})
    if "body" in recorded:
        body = json.loads(sent.content)
        assert set(recorded["body"]) <= set(body), f"missing {set(recorded['body']) - set(body)}"
        assert {k: body[k] for k in recorded["body"]} == recorded["body"]


async def test_a_shipment_with_cash_on_delivery_is_the_documented_requests(
    adapter: Callable[[UkrposhtaDouble], Ukrposhta],
) -> None:
    double = UkrposhtaDouble(
        {
            ("POST", "/addresses"): _json("address"),
            ("POST", "/clients"): _json("client"),
            ("POST", "/shipments"): _json("shipment"),
        }
    )
    booking = await adapter(double).book(PARCEL)

    address, client, shipment = double.sent
    _carries(address, fixture("ukrposhta", "address")["request"])
    _carries(client, fixture("ukrposhta", "client")["request"])
    _carries(shipment, fixture("ukrposhta", "shipment")["request"])
    assert all(r.headers["Authorization"] == "Bearer dev-ukrposhta-bearer" for r in double.sent)
    assert booking.tracking_number == "0500112345678"  # the barcode
    assert booking.carrier_ref == "7f0e2c55-1b1d-4c2a-8f35-6c3a2f0b9e42"
    assert booking.tracking_url.endswith("?barcode=0500112345678")


async def test_cancel_deletes_and_the_sticker_is_the_documented_pdf(
    adapter: Callable[[UkrposhtaDouble], Ukrposhta],
) -> None:
    double = UkrposhtaDouble(
        {
            ("DELETE", "/shipments/7f0e2c55-1b1d-4c2a-8f35-6c3a2f0b9e42"): httpx.Response(200),
            ("GET", "/sticker"): httpx.Response(200, content=b"%PDF-1.4 sticker"),
        }
    )
    ukrposhta = adapter(double)
    await ukrposhta.cancel("0500112345678", "7f0e2c55-1b1d-4c2a-8f35-6c3a2f0b9e42")
    pdf = await ukrposhta.sticker("0500112345678", "7f0e2c55-1b1d-4c2a-8f35-6c3a2f0b9e42")
    deleted, printed = double.sent
    _carries(deleted, fixture("ukrposhta", "shipment_delete")["request"])
    _carries(printed, fixture("ukrposhta", "sticker")["request"])
    assert pdf.startswith(b"%PDF")


async def test_tracking_reads_the_last_event_and_skips_a_barcode_not_yet_accepted(
    adapter: Callable[[UkrposhtaDouble], Ukrposhta],
) -> None:
    recorded = fixture("ukrposhta", "status_last")
    double = UkrposhtaDouble({("GET", "/statuses/last"): _json("status_last")})
    [delivered] = await adapter(double).track([TrackedParcel("0500112345678")])
    _carries(double.sent[0], recorded["request"])
    assert double.sent[0].headers["Authorization"] == "Bearer dev-ukrposhta-tracking-bearer"
    assert (delivered.code, delivered.status) == ("41000", TrackingStatus.DELIVERED)
    assert delivered.cod is None  # Ukrposhta does not say when cash on delivery is paid out

    unknown = UkrposhtaDouble({})  # 404: nothing known of it yet
    assert await adapter(unknown).track([TrackedParcel("0500100000000")]) == []


async def test_a_refusal_is_named_and_keeps_the_token_out_of_the_error(
    adapter: Callable[[UkrposhtaDouble], Ukrposhta],
) -> None:
    refused = fixture("ukrposhta", "error")["response"]
    double = UkrposhtaDouble(
        {
            ("POST", "/addresses"): _json("address"),
            ("POST", "/clients"): _json("client"),
            ("POST", "/shipments"): httpx.Response(refused["status"], json=refused["body"]),
        }
    )
    with pytest.raises(ApplicationError) as failed:
        await adapter(double).book(PARCEL)
    assert failed.value.type == "ProviderRejected" and failed.value.non_retryable
    assert "Recipient uuid is not valid" in str(failed.value)
    assert ACCOUNT.counterparty_token not in str(failed.value)


def test_the_documented_events_mean_what_they_say() -> None:
    assert EVENTS["10100"] == TrackingStatus.INFO_RECEIVED
    assert {EVENTS[c] for c in ("20700", "20800", "21500")} == {TrackingStatus.IN_TRANSIT}
    assert {EVENTS[c] for c in ("21400", "21700")} == {TrackingStatus.AVAILABLE_FOR_PICKUP}
    assert {EVENTS[c] for c in ("31100", "31300", "31400")} == {TrackingStatus.ATTEMPT_FAIL}
    assert {EVENTS[c] for c in ("41000", "48000")} == {TrackingStatus.DELIVERED}
