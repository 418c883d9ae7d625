"""Choosing a payment provider: outside the devstack its own credentials must be set and not
the devstack's; its API is the real one, inside the devstack its simulator."""

from __future__ import annotations

import secrets

import pytest

from settings import Settings

# Orderflow's own secrets, each random and its own (the one rule for secrets).
OURS = {
    name: secrets.token_urlsafe(32)
    for name in (
        "payment_webhook_secret",
        "warehouse_webhook_secret",
        "carrier_webhook_secret",
        "link_secret",
        "connector_secret",
    )
}


def test_the_chosen_providers_credentials_must_be_set_outside_the_devstack() -> None:
    Settings(**OURS).refuse_devstack_secrets()  # "sim" needs none of its own
    with pytest.raises(SystemExit) as refused:
        Settings(
            payment_provider="liqpay", liqpay_public_key="i123", **OURS
        ).refuse_devstack_secrets()
    assert "ORDERFLOW_LIQPAY_PRIVATE_KEY is unset" in str(refused.value)
    assert "LIQPAY_PUBLIC_KEY" not in str(refused.value)
    assert "MONOBANK" not in str(refused.value)  # only the chosen provider's
    with pytest.raises(SystemExit) as refused:
        Settings(
            payment_provider="monobank", monobank_token="dev-monobank-token", **OURS
        ).refuse_devstack_secrets()
    assert "ORDERFLOW_MONOBANK_TOKEN is the devstack's default" in str(refused.value)
    with pytest.raises(SystemExit):
        Settings(payment_provider="monobank", monobank_token="", **OURS).refuse_devstack_secrets()
    Settings(
        payment_provider="monobank", monobank_token="uXyZ-real-token", **OURS
    ).refuse_devstack_secrets()
    with pytest.raises(SystemExit) as refused:
        Settings(
            payment_provider="stripe", stripe_secret_key="sk_test_devstack", **OURS
        ).refuse_devstack_secrets()
    assert "ORDERFLOW_STRIPE_SECRET_KEY is the devstack's default" in str(refused.value)
    assert "ORDERFLOW_STRIPE_WEBHOOK_SECRET is unset" in str(refused.value)
    Settings(
        payment_provider="stripe",
        stripe_secret_key="sk_test_51Real",
        stripe_webhook_secret="whsec_real",
        **OURS,
    ).refuse_devstack_secrets()


def test_real_apis_outside_the_devstack_simulators_inside() -> None:
    assert Settings().liqpay_url == "https://www.liqpay.ua"
    assert Settings().monobank_url == "https://api.monobank.ua"
    assert Settings().stripe_url == "https://api.stripe.com"
    assert Settings(devstack=True, simulator_port=8100).stripe_url == "http://127.0.0.1:8100/stripe"
    assert Settings(devstack=True, simulator_port=8100).liqpay_url == "http://127.0.0.1:8100/liqpay"
