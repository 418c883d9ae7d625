"""Each source's order mapped into today's `POST /v1/orders` input, from the fixtures
written from their documentation: what an order keeps, and the field a failure names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from devstack.fixtures import fixture
from schema.intake import MappingError, signature_matches
from schema.intake.shopify import ShopifySettings
from schema.intake.shopify import map_order as map_shopify
from schema.intake.woocommerce import WooSettings, is_ping
from schema.intake.woocommerce import map_order as map_woo


def test_a_woocommerce_order_becomes_the_order_a_shop_would_post() -> None:
    mapped = map_woo("myshop", fixture("woocommerce", "order_kyiv_cod")["body"], WooSettings())
    order = mapped.order
    assert mapped.source_order_id == "728" and order.number == "WC-myshop-728"
    assert (order.customer.name, order.customer.email) == (
        "Олена Коваль",
        "olena.koval@example.com",
    )
    assert order.customer.phone == "+380501234567"  # "050 123 45 67", read in Ukraine
    assert order.delivery.method == "courier" and order.delivery.address is not None
    assert (order.delivery.address.city, order.delivery.address.line2) == ("Київ", "кв. 5")
    assert order.payment.method == "cod" and order.currency == "UAH"
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("MUG-01", 2, Decimal("250.00")),
        ("TEA-01", 1, Decimal("250.00")),
    ]
    assert order.note is None


def test_a_woocommerce_nova_poshta_branch_is_read_from_the_plugins_shipping_line() -> None:
    body = fixture("woocommerce", "order_novaposhta_branch")["body"]
    order = map_woo("myshop", body, WooSettings()).order
    assert order.delivery.method == "branch" and order.delivery.branch is not None
    assert order.delivery.branch.ref == "1ec09d2e-e1c2-11e3-8c4a-0050568002cf"
    assert order.payment.method == "cod"  # the plugin's own cash-on-delivery gateway
    body["shipping_lines"][0]["meta_data"] = []
    with pytest.raises(MappingError) as failed:
        map_woo("myshop", body, WooSettings())
    assert failed.value.field == "shipping_lines[0].meta_data.warehouse_id"
    # Another plugin's keys: the connector's settings name them.
    body["shipping_lines"][0]["method_id"] = "nova_poshta_shipping"
    body["shipping_lines"][0]["meta_data"] = [
        {"key": "np_ref", "value": "1ec09d2e-e1c2-11e3-8c4a-0050568002cf"}
    ]
    other = WooSettings(branch_methods=["nova_poshta_shipping"], branch_ref_meta="np_ref")
    assert map_woo("myshop", body, other).order.delivery.method == "branch"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"billing": {"phone": ""}}, "billing.phone"),
        ({"payment_method": "liqpay", "date_paid": "2026-12-01T10:00:00"}, "date_paid"),
        ({"currency": "uah"}, "currency"),
        ({"line_items": []}, "lines"),
    ],
)
def test_a_woocommerce_order_that_cannot_be_taken_names_the_field(
    change: dict[str, object], field: str
) -> None:
    body = fixture("woocommerce", "order_kyiv_cod")["body"]
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    with pytest.raises(MappingError) as failed:
        map_woo("myshop", body, WooSettings())
    assert failed.value.field == field


def test_the_woocommerce_documentations_own_example_is_paid_at_the_source() -> None:
    with pytest.raises(MappingError) as failed:
        map_woo("myshop", fixture("woocommerce", "order_docs_sample")["body"], WooSettings())
    assert failed.value.field == "date_paid" and "paid at the source" in failed.value.message


def test_a_shopify_order_becomes_the_order_a_shop_would_post() -> None:
    mapped = map_shopify(
        "lviv", fixture("shopify", "orders_create_lviv_cod")["body"], ShopifySettings()
    )
    order = mapped.order
    assert mapped.source_order_id == "820982911946154509"
    assert order.number == "SH-lviv-820982911946154509"
    assert (order.customer.name, order.customer.phone) == ("Андрій Мельник", "+380671234567")
    assert order.delivery.method == "courier" and order.payment.method == "cod"
    assert sum(line.unit_price * line.quantity for line in order.lines) == Decimal("460.00")


def test_a_shopify_branch_comes_from_the_orders_note_attributes() -> None:
    body = fixture("shopify", "orders_create_novaposhta_branch")["body"]
    order = map_shopify("lviv", body, ShopifySettings()).order
    assert order.delivery.branch is not None
    assert (order.delivery.branch.ref, order.delivery.branch.number) == (
        "1ec09d2e-e1c2-11e3-8c4a-0050568002cf",
        "25",
    )


def test_shopify_paid_and_the_references_own_example_are_refused_by_field() -> None:
    paid = fixture("shopify", "orders_create_lviv_cod")["body"] | {
        "financial_status": "paid",
        "payment_gateway_names": ["shopify_payments"],
    }
    with pytest.raises(MappingError) as failed:
        map_shopify("lviv", paid, ShopifySettings())
    assert failed.value.field == "financial_status"
    with pytest.raises(MappingError) as failed:
        map_shopify(
            "lviv", fixture("shopify", "orders_create_docs_sample")["body"], ShopifySettings()
        )
    assert failed.value.field == "customer.phone"  # "555-555-SHIP"


def test_the_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = json.dumps(fixture("shopify", "orders_create_lviv_cod")["body"]).encode()
    signed = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    assert signature_matches("s3cret", body, signed)
    assert not signature_matches("s3cret", body + b" ", signed)
    assert not signature_matches("other", body, signed)
    assert not signature_matches("s3cret", body, "")


def test_woocommerces_ping_is_its_form_body_only() -> None:
    assert is_ping(b"webhook_id=15")
    assert not is_ping(b"webhook_id=")
    assert not is_ping(b'{"webhook_id": 15}')
