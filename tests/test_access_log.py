"""No raw e-mail or phone number in a log line: the access log masks query strings."""

from __future__ import annotations

import logging

import pytest

from schema.api.fields import Role
from starter.api.access_log import masked_url
from tests.stack import Stack


async def test_a_search_by_contact_leaves_no_contact_in_the_access_log(
    dev_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    support = dev_stack.as_role[Role.SUPPORT]
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        for q in ("iryna.koval@example.com", "+380 50 123 45 67", "+380501234567"):
            assert (await support.get("/v1/orders", params={"q": q, "limit": 5})).status_code == 200
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "uvicorn.access" and '"GET /v1/orders' in r.getMessage()
    ]  # (the simulators' lines pass here too)
    assert len(lines) == 3, lines
    assert all('"GET /v1/orders?q=***&limit=*** HTTP/1.1" 200' in line for line in lines), lines
    logged = "\n".join(caplog.text.splitlines() + lines)
    for contact in ("iryna", "example.com", "380", "4567", "%40", "%2B"):
        assert contact not in logged


def test_masking_keeps_the_names_only() -> None:
    assert masked_url("/v1/orders") == "/v1/orders"
    assert masked_url("/v1/orders?q=a%40b.c&stage=payment") == "/v1/orders?q=***&stage=***"
    assert masked_url("/v1/orders?garbage") == "/v1/orders?garbage=***"
    assert masked_url("/v1/orders?iryna%40example.com") == "/v1/orders?***=***"
    assert masked_url("/v1/orders?&&") == "/v1/orders?***"


def test_customer_link_tokens_are_not_logged() -> None:
    token = "IyABwqHdQhOxtIJV9dSHTw.awgUHg.MxKJT_UN-e5XnhTfMX-rhKgUCbpZ8_uQKrTc0v6spkA"
    assert masked_url(f"/order/{token}/m") == "/order/***/m"
    assert masked_url(f"/order/{token}?lang=en") == "/order/***?lang=***"
    assert masked_url(f"/v1/customer/orders/{token}/cancel") == "/v1/customer/orders/***/cancel"
    assert masked_url(f"/my-orders/{token}") == "/my-orders/***"
    assert masked_url("/v1/orders/3f0c2a9e") == "/v1/orders/3f0c2a9e"  # an id opens nothing
