"""The Prom.ua adapter against its documentation's shapes (devstack/fixtures/prom/, the same
the simulator speaks): an order listed becomes the order a shop would post (a Nova Poshta
branch, cash on delivery, Prom's price strings), what cannot be taken names its field; the
list is asked with the cursor and paged by `last_id`; a status update is taken only when its
id is in `processed_ids`; a refused token is a non-retryable refusal, an outage retried."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.marketplaces import PromApi
from devstack.fixtures import fixture
from schema.intake import MappingError
from schema.intake.prom import PromSettings, amount, map_order, status_update


def _order(name: str = "order_novaposhta_cod", **changes: Any) -> dict[str, Any]:
    return fixture("prom", name)["body"] | changes


def test_a_listed_order_becomes_the_order_a_shop_would_post() -> None:
    mapped = map_order("kyiv", _order(), PromSettings())
    order = mapped.order
    assert (mapped.source_order_id, order.number) == ("315927488", "PROM-kyiv-315927488")
    assert (order.customer.name, order.customer.email, order.customer.phone) == (
        "Олена Коваленко",
        "olena.kovalenko@example.com",
        "+380501234567",
    )
    assert order.delivery.method == "branch" and order.delivery.branch is not None
    assert order.delivery.branch.ref == "1ec09d2e-e1c2-11e3-8c4a-0050568002cf"
    assert order.payment.method == "cod" and order.currency == "UAH"
    # The SKU, else the product's external id; "1 299,50 грн." read as an amount.
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("MUG-01", 2, Decimal("250.00")),
        ("TEA-01", 1, Decimal("1299.50")),
    ]


def test_a_courier_order_reads_prom_s_one_line_address_and_pays_through_orderflow() -> None:
    order = map_order("kyiv", _order("order_courier_card"), PromSettings()).order
    assert order.delivery.method == "courier" and order.delivery.address is not None
    address = order.delivery.address
    assert (address.country, address.city, address.postal_code) == ("UA", "Київ", "01001")
    assert address.line1.startswith("вул. Хрещатик, 1")
    assert order.payment.method == "prepaid"
    assert order.customer.phone == "+380677654321"  # "067 765 43 21"
    assert order.note == "Подзвоніть за годину до доставки"


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("order_no_phone", {}, "phone"),
        ("order_novaposhta_cod", {"id": None}, "id"),
        (
            "order_novaposhta_cod",
            {"delivery_provider_data": {"provider": "nova_poshta", "type": "W"}},
            "delivery_provider_data.recipient_warehouse_id",
        ),
        (
            "order_courier_card",
            {"payment_data": {"type": "prosale", "status": "paid"}},
            "payment_data.status",
        ),
        ("order_courier_card", {"delivery_address": "Київ"}, "delivery_address"),
        ("order_novaposhta_cod", {"products": []}, "lines"),
    ],
)
def test_what_cannot_be_taken_names_its_field(
    name: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(MappingError) as failed:
        map_order("kyiv", _order(name, **changes), PromSettings())
    assert failed.value.field == field


def test_prom_s_amounts() -> None:
    assert amount("1 299,50 грн.", "p") == "1299.50"
    assert amount("250 грн.", "p") == "250.00"
    assert amount(99.9, "p") == "99.90"
    with pytest.raises(MappingError):
        amount("договірна", "products[0].price")


def test_the_status_updates_have_the_documented_shapes() -> None:
    documented = fixture("prom", "set_status")["request"]
    confirmed = {"type": "order.confirmed", "data": {}}
    assert status_update(confirmed, "315927488") == ("orders/set_status", documented)
    shipped = {"type": "order.shipped", "data": {"carrier": "NovaPoshta", "tracking_number": "1"}}
    path, body = status_update(shipped, "315927488")
    assert path == "delivery/save_declaration_id"
    assert body.keys() == fixture("prom", "save_declaration_id")["request"].keys()
    assert body["delivery_type"] == "nova_poshta"
    abroad = {"type": "order.shipped", "data": {"carrier": "WorldSim", "tracking_number": "1"}}
    assert status_update(abroad, "7") == ("", {})
    cancelled = {"type": "order.cancelled", "data": {"reason": "customer_request"}}
    assert status_update(cancelled, "7")[1] == {
        "status": "canceled",
        "ids": [7],
        "cancellation_reason": "buyers_request",
    }
    other = {"type": "order.cancelled", "data": {"reason": "payment_expired"}}
    assert status_update(other, "7")[1]["cancellation_text"] == "payment_expired"
    assert status_update({"type": "order.paid", "data": {}}, "7") == ("", {})


async def _prom(respond: Any) -> tuple[PromApi, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    return PromApi(client, "https://my.prom.example/api/v1", "prom-token-1"), client


async def test_the_list_is_asked_from_the_cursor_and_paged_by_last_id() -> None:
    sent: list[httpx.Request] = []
    first = [{"id": 1000 - n} for n in range(100)]

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        page = first if "last_id" not in request.url.params else [{"id": 5}]
        return httpx.Response(200, json={"orders": page})

    api, client = await _prom(respond)
    async with client:
        orders = await api.orders_since(datetime(2026, 11, 30, 10, 16, 3, 114583, tzinfo=UTC))
    assert len(orders) == 101
    assert [dict(request.url.params) for request in sent] == [
        {"last_modified_from": "2026-11-30T10:16:03", "limit": "100"},
        {"last_modified_from": "2026-11-30T10:16:03", "limit": "100", "last_id": "901"},
    ]
    assert sent[0].url.path == "/api/v1/orders/list"
    assert sent[0].headers["Authorization"] == "Bearer prom-token-1"


async def test_a_status_is_taken_only_when_prom_processed_the_id() -> None:
    documented = fixture("prom", "set_status")
    answers = iter([documented["response"], {"processed_ids": [], "errors": {"1": "no"}}])
    api, client = await _prom(lambda _: httpx.Response(200, json=next(answers)))
    async with client:
        assert await api.tell("orders/set_status", documented["request"]) is None
        refused = await api.tell("orders/set_status", {"status": "received", "ids": [1]})
    assert refused is not None and "[1]" in refused


async def test_a_refused_token_is_not_retried_and_an_outage_is() -> None:
    refusal = fixture("prom", "error_unauthorized")
    for response, retried in (
        (httpx.Response(refusal["status"], json=refusal["response"]), False),
        (httpx.Response(503), True),
    ):
        api, client = await _prom(lambda _, answer=response: answer)
        async with client:
            with pytest.raises(ApplicationError) as failed:
                await api.orders_since(datetime.now(UTC))
        assert failed.value.non_retryable is not retried
        assert "prom-token-1" not in str(failed.value)
