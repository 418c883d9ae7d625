"""Secrets have no usable defaults outside the devstack: the API and the worker refuse to
start, naming each variable; docker-compose requires them and keeps the internals local."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SECRETS = (
    "ORDERFLOW_PAYMENT_WEBHOOK_SECRET",
    "ORDERFLOW_WAREHOUSE_WEBHOOK_SECRET",
    "ORDERFLOW_CARRIER_WEBHOOK_SECRET",
    "ORDERFLOW_LINK_SECRET",
    "ORDERFLOW_CONNECTOR_SECRET",
)
STRONG = "kX3uYp0Zr8-TmQv7Lw2NbJc5Hd9FgAe4"  # 32 characters, none twice


def _strong(n: int) -> str:
    """A strong secret of its own (every secret must differ from the others)."""
    return f"{STRONG}{n:02d}"


def _production_env(**secrets: str) -> dict[str, str]:
    """The environment of a production host: no devstack flag, nothing but what is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    return {**env, "ORDERFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1", **secrets}


def _refusal(settings: Settings) -> str:
    with pytest.raises(SystemExit) as refused:
        settings.refuse_devstack_secrets()
    return str(refused.value)


def test_every_unset_short_or_devstack_secret_is_named() -> None:
    settings = Settings(
        payment_webhook_secret="dev-payment-secret",
        warehouse_webhook_secret="short",
        link_secret=STRONG,
    )
    message = _refusal(settings)
    assert "ORDERFLOW_PAYMENT_WEBHOOK_SECRET is the devstack's default" in message
    assert "ORDERFLOW_WAREHOUSE_WEBHOOK_SECRET is shorter than 32 characters" in message
    assert "ORDERFLOW_CARRIER_WEBHOOK_SECRET is unset" in message
    assert "ORDERFLOW_LINK_SECRET" not in message
    previous = settings.model_copy(
        update={
            "payment_webhook_secret": _strong(1),
            "warehouse_webhook_secret": _strong(2),
            "carrier_webhook_secret": _strong(3),
            "link_previous_secrets": ["dev-link-secret"],
        }
    )
    assert "ORDERFLOW_LINK_PREVIOUS_SECRETS[0] is the devstack's default" in _refusal(previous)


def test_every_secret_meets_one_rule_and_no_two_are_the_same() -> None:
    """The previous link secrets as the others: long, not predictable, and all distinct."""
    settings = Settings(
        payment_webhook_secret=_strong(1),
        warehouse_webhook_secret="k" * 40,
        carrier_webhook_secret="password" * 4,
        link_secret=_strong(1),
        link_previous_secrets=["x", _strong(2), _strong(2)],
    )
    message = _refusal(settings)
    assert "ORDERFLOW_WAREHOUSE_WEBHOOK_SECRET is too predictable" in message
    assert "ORDERFLOW_CARRIER_WEBHOOK_SECRET is too predictable" in message
    assert "ORDERFLOW_LINK_SECRET is the same as ORDERFLOW_PAYMENT_WEBHOOK_SECRET" in message
    assert "ORDERFLOW_LINK_PREVIOUS_SECRETS[0] is shorter than 32 characters" in message
    assert (
        "ORDERFLOW_LINK_PREVIOUS_SECRETS[2] is the same as ORDERFLOW_LINK_PREVIOUS_SECRETS[1]"
        in message
    )
    assert "ORDERFLOW_PAYMENT_WEBHOOK_SECRET" not in message.split("is the same as")[0]


def test_strong_secrets_or_the_devstack_flag_let_it_start() -> None:
    Settings(devstack=True).refuse_devstack_secrets()
    strong = Settings(
        **{name.removeprefix("ORDERFLOW_").lower(): _strong(n) for n, name in enumerate(SECRETS)},
        link_previous_secrets=[secrets.token_hex(16), secrets.token_urlsafe(32)],
    )
    strong.refuse_devstack_secrets()


@pytest.mark.parametrize("argv", [["-m", "starter.api"], ["worker.py"]], ids=["api", "worker"])
def test_api_and_worker_refuse_to_start_with_devstack_secrets(argv: list[str]) -> None:
    env = _production_env(ORDERFLOW_LINK_SECRET=STRONG, ORDERFLOW_CARRIER_WEBHOOK_SECRET="x" * 8)
    run = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "refuses to start outside the devstack" in run.stderr
    assert "ORDERFLOW_PAYMENT_WEBHOOK_SECRET is unset" in run.stderr
    assert "ORDERFLOW_CARRIER_WEBHOOK_SECRET is shorter than 32 characters" in run.stderr
    assert "ORDERFLOW_LINK_SECRET" not in run.stderr


def test_compose_requires_the_secrets_and_keeps_internals_local() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for service in ("api", "worker"):
        env = services[service]["environment"]
        for name in (*SECRETS, "ORDERFLOW_PUBLIC_URL"):
            assert env[name].startswith(f"${{{name}:?"), f"{service} must require {name}"
    for service in ("temporal", "temporal-ui", "mail", "prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[service]["ports"]), service
    # The API publishes the public port only (a host port per replica, for a load balancer);
    # /metrics is on its own port, not published.
    assert services["api"]["ports"] == ["8000-8003:8000"]
    assert services["api"]["environment"]["ORDERFLOW_API_METRICS_HOST"] == "0.0.0.0"
    assert all("ports" not in services[name] for name in ("worker", "postgres", "migrate"))


def test_a_chosen_messaging_providers_credentials_are_required() -> None:
    strong = {name.removeprefix("ORDERFLOW_").lower(): _strong(n) for n, name in enumerate(SECRETS)}
    Settings(**strong).refuse_devstack_secrets()  # SMS by the simulated gateway, plain SMTP
    chosen = Settings(**strong, sms_provider="turbosms", email_provider="mailgun")
    message = _refusal(chosen)
    assert "ORDERFLOW_TURBOSMS_TOKEN is unset (ORDERFLOW_SMS_PROVIDER=turbosms)" in message
    assert (
        "ORDERFLOW_MAILGUN_WEBHOOK_SIGNING_KEY is unset (ORDERFLOW_EMAIL_PROVIDER=mailgun)"
        in message
    )
    devstack_values = Settings(
        **strong,
        sms_provider="turbosms",
        turbosms_token="dev-turbosms-token",
        email_provider="mailgun",
        mailgun_webhook_signing_key="dev-mailgun-signing-key",
    )
    message = _refusal(devstack_values)
    assert "ORDERFLOW_TURBOSMS_TOKEN is the devstack's default" in message
    assert "ORDERFLOW_MAILGUN_WEBHOOK_SIGNING_KEY is the devstack's default" in message
    Settings(
        **strong,
        sms_provider="turbosms",
        turbosms_token="a-real-token-from-the-cabinet",
        email_provider="mailgun",
        mailgun_webhook_signing_key="key-from-mailgun",
    ).refuse_devstack_secrets()
