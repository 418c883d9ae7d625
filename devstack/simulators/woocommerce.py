"""A WooCommerce shop's order webhooks (devstack/fixtures/woocommerce: the orders):
POST /woocommerce/sim/orders has the shop post one fixture's order to orderflow's
/v1/intake/woocommerce/<connector>, signed as WooCommerce signs it (X-WC-Webhook-Signature:
base64 HMAC-SHA256 of the body with the webhook's secret). The same `delivery_id` again is
WooCommerce retrying that delivery. `shop_webhook` serves Shopify's simulator too."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from devstack.fixtures import fixture
from devstack.simulators.state import log, sim_of
from schema.intake import signature

woocommerce = APIRouter(prefix="/woocommerce", tags=["woocommerce"])


class ShopWebhook(BaseModel):
    connector: str = Field(description="The connector's name in orderflow")
    secret: str = Field(min_length=1, description="The webhook's secret, as the connector has it")
    fixture: str = Field(description="The order: a fixture's name")
    changes: dict[str, Any] = Field(default={}, description="Top-level fields replaced")
    delivery_id: str | None = Field(default=None, description="Unset: a new delivery")
    topic: str | None = Field(default=None, description="Unset: the fixture's")


async def shop_webhook(
    request: Request, source: str, webhook: ShopWebhook, *, signed: str, delivery: str, topic: str
) -> dict[str, Any]:
    """Post the fixture's order to orderflow's intake with the source's headers (their
    names: `signed`, `delivery`, `topic`); what was sent, and orderflow's answer."""
    sim = sim_of(request)
    recorded = fixture(source, webhook.fixture)
    order = recorded["body"] | webhook.changes
    body = json.dumps(order, ensure_ascii=False).encode()
    response = await sim.http.post(
        f"{sim.settings.public_url}/v1/intake/{source}/{webhook.connector}",
        content=body,
        headers={
            "content-type": "application/json",
            signed: signature(webhook.secret, body),
            delivery: webhook.delivery_id or str(uuid.uuid4()),
            topic: webhook.topic or recorded["topic"],
        },
    )
    log.info("shop webhook", source=source, status=response.status_code)
    return {"status": response.status_code, "answer": response.json(), "sent": order}


@woocommerce.post("/sim/orders")
async def send_order(request: Request, webhook: ShopWebhook) -> dict[str, Any]:
    """The shop posts one order as WooCommerce does (its fixture's topic unless `topic`)."""
    return await shop_webhook(
        request,
        "woocommerce",
        webhook,
        signed="X-WC-Webhook-Signature",
        delivery="X-WC-Webhook-Delivery-ID",
        topic="X-WC-Webhook-Topic",
    )
