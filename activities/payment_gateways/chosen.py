"""The payment provider settings choose (`ORDERFLOW_PAYMENT_PROVIDER`), built once per process:
the worker's activities call it, the API's webhook routes read its callbacks."""

from __future__ import annotations

import httpx

from activities.payment_gateways import CallbackReader, PaymentGateway
from activities.payment_gateways.liqpay import LiqPayGateway
from activities.payment_gateways.monobank import MonobankGateway
from activities.payment_gateways.simulated import SimulatedGateway
from activities.payment_gateways.stripe import StripeGateway
from activities.payment_gateways.wayforpay import WayForPayGateway
from activities.providers import Provider
from settings import Settings


def chosen_gateway(settings: Settings, http: httpx.AsyncClient) -> PaymentGateway:
    match settings.payment_provider:
        case "liqpay":
            return _liqpay(settings, http)
        case "monobank":
            return _monobank(settings, http)
        case "wayforpay":
            return _wayforpay(settings, http)
        case "stripe":
            return _stripe(settings, http)
        case _:
            return SimulatedGateway(Provider("payment", http, settings.payment_url))


def callback_reader(settings: Settings, http: httpx.AsyncClient) -> CallbackReader | None:
    """The reader of the chosen provider's callbacks (None for "sim": its webhooks are the
    generic signed ones)."""
    match settings.payment_provider:
        case "liqpay":
            return _liqpay(settings, http)
        case "monobank":
            return _monobank(settings, http)
        case "wayforpay":
            return _wayforpay(settings, http)
        case "stripe":
            return _stripe(settings, http)
        case _:
            return None


def _liqpay(settings: Settings, http: httpx.AsyncClient) -> LiqPayGateway:
    return LiqPayGateway(
        Provider("liqpay", http, settings.liqpay_url),
        settings.liqpay_public_key,
        settings.liqpay_private_key,
        settings.liqpay_sandbox,
    )


def _monobank(settings: Settings, http: httpx.AsyncClient) -> MonobankGateway:
    return MonobankGateway(
        Provider("monobank", http, settings.monobank_url), settings.monobank_token
    )


def _wayforpay(settings: Settings, http: httpx.AsyncClient) -> WayForPayGateway:
    return WayForPayGateway(
        Provider("wayforpay", http, settings.wayforpay_url),
        settings.wayforpay_merchant_account,
        settings.wayforpay_secret_key,
        settings.wayforpay_domain,
    )


def _stripe(settings: Settings, http: httpx.AsyncClient) -> StripeGateway:
    return StripeGateway(
        Provider("stripe", http, settings.stripe_url),
        settings.stripe_secret_key,
        settings.stripe_webhook_secret,
    )
