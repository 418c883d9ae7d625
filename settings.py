"""Configuration: one `Settings` object read from `ORDERFLOW_*` environment variables.

Defaults serve the embedded stack that `make dev` brings up; production overrides
by environment only (see docker-compose.yml). The API, the worker, the devstack
and the tests all read this object.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schema.contracts import DeliveryMethod, OrderPolicy, ReturnPolicy
from schema.links import CustomerLinks, LinkPurpose

ROOT = Path(__file__).resolve().parent


# The secrets' values in this file: known to everyone, so usable only on a developer's machine.
DEVSTACK_SECRETS = frozenset(
    {"dev-payment-secret", "dev-warehouse-secret", "dev-carrier-secret", "dev-link-secret"}
)
MIN_SECRET_LENGTH = 32
BONUS_CODE = re.compile(r"[A-Za-z0-9-]{3,32}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    # True on a developer's machine (`python -m devstack` sets it for its children, the tests
    # set it): the secrets may keep this file's defaults. Elsewhere the API and the worker
    # refuse to start until every secret is set (`refuse_devstack_secrets`).
    devstack: bool = False

    # Where the embedded stack keeps its state (Temporal SQLite file, Postgres, mail).
    data_dir: Path = ROOT / ".data"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "orders"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None  # client certificate (mTLS), PEM
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None
    temporal_ui_port: int = 8233
    temporal_ui_url: str = ""  # unset: the dev server's UI on temporal_ui_port

    # Workflows a worker keeps in memory between their steps (the SDK's sticky cache). Each
    # costs memory; one that is not cached replays its history on its next step or query
    # (README, Speed: about 0.23 MB each; an uncached one replays its history on its next step
    # or query, tens of milliseconds). Orders beyond it wait on the server, not here.
    worker_max_cached_workflows: int = 500

    # Postgres: unset means the embedded server's socket under data_dir.
    database_url: str = ""

    # Mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "orderflow <orders@orderflow.localhost>"
    smtp_timeout_seconds: float = 10.0
    support_email: str = "support@orderflow.localhost"
    support_phone: str = "+380 44 000 00 00"

    manager_email: str = (
        "managers@orderflow.localhost"  # alerts: failed payments, escalations, incidents
    )
    default_timezone: str = "Europe/Kyiv"  # for quiet hours when the address says nothing

    # Providers (the devstack's simulators by default; one service, a path per provider)
    simulator_port: int = 8100
    simulator_autopilot: bool = False  # simulators move orders on by themselves (make dev)
    simulator_step_seconds: float = 3.0  # autopilot's pace between events
    payment_url: str = ""
    warehouse_url: str = ""
    carrier_url: str = ""
    sms_url: str = ""
    push_url: str = ""
    sms_sender: str = "orderflow"
    # Gateways throttle; so do we, across every worker (activities.providers.SharedRate).
    sms_rate_per_second: float = 5.0
    push_rate_per_second: float = 50.0
    provider_timeout_seconds: float = 10.0
    # HMAC-SHA256 secrets of signed webhooks; the devstack's simulators sign with the same
    payment_webhook_secret: str = "dev-payment-secret"
    warehouse_webhook_secret: str = "dev-warehouse-secret"
    carrier_webhook_secret: str = "dev-carrier-secret"
    webhook_tolerance_seconds: int = 300
    # HMAC-SHA256 key of the links customers get in messages (status page, answers); the
    # previous keys still open links already sent, so the key can be rotated.
    link_secret: str = "dev-link-secret"
    link_previous_secrets: list[str] = []
    link_lifetime: timedelta = timedelta(days=120)  # an order's link outlives its feedback stage
    # The "my orders" link lists every order of an e-mail: it lives an hour.
    order_list_link_lifetime: timedelta = timedelta(hours=1)

    # The feedback bonus, given for any answer (never depending on the score): "none" (and
    # then no message promises one), "fixed" (everyone gets `feedback_bonus_code`) or
    # "unique" (a code per order, generated and stored). The feedback request that promised a
    # bonus records the promise: that order gets its bonus even if the policy changes later.
    feedback_bonus: Literal["none", "fixed", "unique"] = "none"
    feedback_bonus_code: str = ""

    # Order events to the shop's backend (signed webhooks from the outbox `shop_deliveries`):
    # every worker process runs the dispatcher; each delivery is retried with exponential
    # backoff (from `_retry_base`, capped at `_retry_max`) for `_retry_for` before it is
    # given up (and can still be redelivered by hand).
    shop_events_dispatcher: bool = True
    shop_events_poll_seconds: float = 1.0
    shop_events_batch: int = 50
    shop_events_timeout_seconds: float = 10.0
    shop_events_retry_base: timedelta = timedelta(seconds=5)
    shop_events_retry_max: timedelta = timedelta(minutes=10)
    shop_events_retry_for: timedelta = timedelta(hours=72)

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = ""  # where customers and providers reach the API; unset: 127.0.0.1:api_port
    max_request_bytes: int = 1_048_576
    feedback_rate_limit: str = "5/minute"  # per client and order
    status_page_rate_limit: str = "120/minute"  # views per client and order (page and JSON)
    # "My orders" links: requests per client address (429 past it), and e-mails per address
    # (past it the request is still answered 202, and nothing is sent).
    customer_link_rate_limit: str = "10/hour"
    customer_link_email_limit: str = "3/hour"
    webhook_rate_limit: str = "1200/minute"  # per client and provider
    worker_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for Prometheus to scrape
    worker_metrics_port: int = 9464
    # The API's /metrics is served on a port of its own, never beside the public API.
    api_metrics_host: str = "127.0.0.1"
    api_metrics_port: int = 9465
    # Staff sign-in: failed attempts allowed per account and per client address before a
    # lockout until the window ends (429 with Retry-After); counted in Postgres for every process.
    sign_in_account_limit: str = "5/15minutes"
    sign_in_ip_limit: str = "20/15minutes"

    # Policy: every duration an order lives by. Fixed into each order at its start.
    policy_activity_timeout: timedelta = timedelta(
        seconds=30
    )  # one attempt; a dead worker's is retried after it
    policy_activity_retry_initial: timedelta = timedelta(seconds=1)
    policy_activity_retry_max: timedelta = timedelta(minutes=1)
    policy_delivery_days_courier: int = 2
    policy_delivery_days_post: int = 5
    policy_delivery_days_pickup: int = 1
    policy_review_amount: Decimal = Decimal("20000")
    policy_review_quantity: int = 20
    policy_review_sla: timedelta = timedelta(hours=2)
    policy_backorder_deadline: timedelta = timedelta(days=14)
    policy_stock_attempts: int = (
        5  # reservation rounds (back-orders, alternatives) before giving up
    )
    policy_payment_expiry: timedelta = timedelta(hours=72)
    policy_payment_reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=60))
    policy_picking_attempts: int = 3
    policy_packing_wait: timedelta = timedelta(days=1)  # a pick task not packed: an incident
    policy_carrier_silence: timedelta = timedelta(days=3)
    policy_pickup_hold: timedelta = timedelta(days=7)
    policy_pickup_reminder: timedelta = timedelta(days=5)
    policy_feedback_earliest: timedelta = timedelta(hours=24)
    policy_feedback_latest: timedelta = timedelta(hours=48)
    policy_feedback_reminder: timedelta = timedelta(days=3)
    policy_feedback_wait: timedelta = timedelta(days=7)
    policy_quiet_from_hour: int = 21
    policy_quiet_until_hour: int = 9
    policy_silence_period: timedelta = timedelta(hours=24)
    policy_silence_max_notices: int = 7
    policy_parcel_return_wait: timedelta = timedelta(days=21)  # a refused parcel back by then
    # Customer returns: fixed into each return at its start.
    policy_return_window: timedelta = timedelta(days=14)  # from delivery (EU, UA law)
    policy_return_non_returnable: tuple[str, ...] = ("HYG-", "FOOD-")  # SKU prefixes: approval
    policy_return_sets: tuple[str, ...] = ("SET-",)  # SKU prefixes of sets: part of one, approval
    policy_return_shipping_wait: timedelta = timedelta(days=14)  # approved: the parcel by then
    policy_return_inspection_wait: timedelta = timedelta(days=3)  # received: inspected by then
    # Where return parcels go (printed on the return label).
    returns_address: str = "orderflow returns desk, Warehouse 1, 01001 Kyiv, UA"

    def order_policy(self) -> OrderPolicy:
        """The policy a new order is started with (and keeps for its whole life)."""
        return OrderPolicy(
            delivery_days={
                DeliveryMethod.COURIER: self.policy_delivery_days_courier,
                DeliveryMethod.POST: self.policy_delivery_days_post,
                DeliveryMethod.PICKUP: self.policy_delivery_days_pickup,
            },
            **{
                name: getattr(self, f"policy_{name}")
                for name in OrderPolicy.__dataclass_fields__
                if name != "delivery_days"
            },
        )

    def return_policy(self) -> ReturnPolicy:
        """The policy a new customer return is started with."""
        return ReturnPolicy(
            **{
                name: getattr(self, f"policy_return_{name}")
                for name in ReturnPolicy.__dataclass_fields__
            }
        )

    def customer_links(self) -> CustomerLinks:
        return CustomerLinks(
            self.link_secret,
            self.link_previous_secrets,
            self.link_lifetime,
            {LinkPurpose.ORDER_LIST: self.order_list_link_lifetime},
        )

    def refuse_devstack_secrets(self) -> None:
        """Outside the devstack, stop the process (exit 1, naming each variable) while a
        webhook or link-signing secret is unset, short or one of the devstack's defaults."""
        if self.devstack:
            return
        problems = []
        for name in (
            "payment_webhook_secret",
            "warehouse_webhook_secret",
            "carrier_webhook_secret",
            "link_secret",
        ):
            value = getattr(self, name)
            variable = f"ORDERFLOW_{name.upper()}"
            if name not in self.model_fields_set:
                problems.append(f"{variable} is unset")
            elif value in DEVSTACK_SECRETS:
                problems.append(f"{variable} is the devstack's default")
            elif len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{variable} is shorter than {MIN_SECRET_LENGTH} characters")
        if any(old in DEVSTACK_SECRETS for old in self.link_previous_secrets):
            problems.append("ORDERFLOW_LINK_PREVIOUS_SECRETS holds a devstack default")
        if problems:
            raise SystemExit(
                "orderflow refuses to start outside the devstack: "
                + "; ".join(problems)
                + f". Give each a random value of at least {MIN_SECRET_LENGTH} characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))'); on a "
                "developer's machine set ORDERFLOW_DEVSTACK=true instead."
            )

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        if self.feedback_bonus == "fixed" and not BONUS_CODE.fullmatch(self.feedback_bonus_code):
            raise ValueError(
                "ORDERFLOW_FEEDBACK_BONUS=fixed needs ORDERFLOW_FEEDBACK_BONUS_CODE: "
                "3 to 32 letters, digits or dashes"
            )
        if not self.database_url:
            self.database_url = (
                f"postgresql+psycopg://postgres@/orderflow?host={self.data_dir / 'pg'}"
            )
        self.public_url = self.public_url or f"http://127.0.0.1:{self.api_port}"
        simulators = f"http://127.0.0.1:{self.simulator_port}"
        self.payment_url = self.payment_url or f"{simulators}/payment"
        self.warehouse_url = self.warehouse_url or f"{simulators}/warehouse"
        self.carrier_url = self.carrier_url or f"{simulators}/carrier"
        self.sms_url = self.sms_url or f"{simulators}/sms"
        self.push_url = self.push_url or f"{simulators}/push"
        if not self.temporal_ui_url:
            self.temporal_ui_url = f"http://127.0.0.1:{self.temporal_ui_port}"
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
