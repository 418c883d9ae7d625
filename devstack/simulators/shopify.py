"""A Shopify store's `orders/create` webhook (devstack/fixtures/shopify: the orders):
POST /shopify/sim/orders has the store post one fixture's order to orderflow's
/v1/intake/shopify/<connector>, signed as Shopify signs it (X-Shopify-Hmac-SHA256: base64
HMAC-SHA256 of the body with the app's secret), with X-Shopify-Webhook-Id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from devstack.simulators.woocommerce import ShopWebhook, shop_webhook

shopify = APIRouter(prefix="/shopify", tags=["shopify"])


@shopify.post("/sim/orders")
async def send_order(request: Request, webhook: ShopWebhook) -> dict[str, Any]:
    """The store posts one order as Shopify does."""
    return await shop_webhook(
        request,
        "shopify",
        webhook,
        signed="X-Shopify-Hmac-SHA256",
        delivery="X-Shopify-Webhook-Id",
        topic="X-Shopify-Topic",
    )
