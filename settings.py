"""Configuration: one `Settings` object read from `ORDERFLOW_*` environment variables.

Defaults serve the embedded stack that `make dev` brings up; production overrides
by environment only (see docker-compose.yml). The API, the worker, the devstack
and the tests all read this object.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from schema.contracts import DeliveryMethod, OrderPolicy, ReturnPolicy
from schema.links import CustomerLinks, LinkPurpose

ROOT = Path(__file__).resolve().parent


# The secrets' values in this file: known to everyone, so usable only on a developer's machine.
DEVSTACK_SECRETS = frozenset(
    {
        "dev-payment-secret",
        "dev-warehouse-secret",
        "dev-carrier-secret",
        "dev-link-secret",
        "dev-connector-secret",
        "dev-liqpay-private-key",
        "dev-monobank-token",
        "dev-wayforpay-secret-key",
        "sk_test_devstack",
        "whsec_devstack",
        "dev-turbosms-token",
        "dev-mailgun-signing-key",
    }
)
# Each payment provider's credentials that must not be the devstack's outside it (the chosen
# provider's only): what signs or authorises a call or a callback.
PAYMENT_SECRETS: dict[str, tuple[str, ...]] = {
    "sim": (),
    "liqpay": ("liqpay_public_key", "liqpay_private_key"),
    "monobank": ("monobank_token",),
    "wayforpay": ("wayforpay_merchant_account", "wayforpay_secret_key", "wayforpay_domain"),
    "stripe": ("stripe_secret_key", "stripe_webhook_secret"),
}
# Where each real provider's API lives (outside the devstack; inside, its simulator).
PAYMENT_APIS = {
    "liqpay": "https://www.liqpay.ua",
    "monobank": "https://api.monobank.ua",
    "wayforpay": "https://api.wayforpay.com",
    "stripe": "https://api.stripe.com",
}
# The messaging providers' credentials, needed outside the devstack when chosen:
# (setting, its value that chooses the provider) -> what must then be set.
MESSAGING_CREDENTIALS = {
    ("sms_provider", "turbosms"): ("turbosms_token",),
    ("email_provider", "mailgun"): ("mailgun_webhook_signing_key",),
}
MIN_SECRET_LENGTH = 32
# What a secret's characters say of its randomness (length × Shannon entropy of its letters):
# 32 random hex digits (128 bits) estimate 96 to 125, token_urlsafe(32) about 200; "k" * 40
# estimates 0. A value that repeats a shorter one ("password" × 4) is refused besides.
MIN_SECRET_BITS = 80

# Each carrier API's setting, its real address, and its simulator's path in the devstack.
CARRIER_APIS = (
    ("novaposhta_url", "https://api.novaposhta.ua/v2.0/json/", "novaposhta/v2.0/json/"),
    ("novaposhta_print_url", "https://my.novaposhta.ua", "novaposhta/print"),
    ("novaposhta_tracking_page", "https://novaposhta.ua/tracking/", "novaposhta/tracking/"),
    ("ukrposhta_url", "https://www.ukrposhta.ua/ecom/0.0.1", "ukrposhta/ecom/0.0.1"),
    (
        "ukrposhta_tracking_url",
        "https://www.ukrposhta.ua/status-tracking/0.0.1",
        "ukrposhta/status-tracking/0.0.1",
    ),
    (
        "ukrposhta_tracking_page",
        "https://track.ukrposhta.ua/tracking_UA.html",
        "ukrposhta/tracking/",
    ),
)
# Each marketplace API's setting, its real address, and its simulator's path in the devstack.
MARKETPLACE_APIS = (("prom_url", "https://my.prom.ua/api/v1", "prom/api/v1"),)
# The devstack's carrier accounts: what its simulators expect (devstack/fixtures/). The keys
# start with "dev-": outside the devstack such a value is refused like an unset one.
DEVSTACK_CARRIER_ACCOUNTS = {
    "novaposhta_api_key": "dev-novaposhta-key",
    "novaposhta_sender_ref": "6e9acced-d072-11e3-95eb-0050568046cd",
    "novaposhta_sender_contact_ref": "a4f5e3b6-d072-11e3-95eb-0050568046cd",
    "novaposhta_sender_city_ref": "8d5a980d-391c-11dd-90d9-001a92567626",
    "novaposhta_sender_address_ref": "1ec09d88-e1c2-11e3-8c4a-0050568002cf",
    "novaposhta_sender_phone": "380441234567",
    "ukrposhta_bearer": "dev-ukrposhta-bearer",
    "ukrposhta_tracking_bearer": "dev-ukrposhta-tracking-bearer",
    "ukrposhta_counterparty_token": "dev-ukrposhta-counterparty-token",
    "ukrposhta_sender_uuid": "3b1a7a0e-6a6f-4f38-8a55-7f1d1e6b5c01",
}
# The credentials each carrier needs; outside the devstack the chosen one's must be set.
CARRIER_CREDENTIALS = {
    "sim": (),
    "novaposhta": (
        "novaposhta_api_key",
        "novaposhta_sender_ref",
        "novaposhta_sender_contact_ref",
        "novaposhta_sender_city_ref",
        "novaposhta_sender_address_ref",
        "novaposhta_sender_phone",
    ),
    "ukrposhta": (
        "ukrposhta_bearer",
        "ukrposhta_tracking_bearer",
        "ukrposhta_counterparty_token",
        "ukrposhta_sender_uuid",
    ),
}
BONUS_CODE = re.compile(r"[A-Za-z0-9-]{3,32}")


def secret_problem(value: str) -> str | None:
    """What is wrong with a secret, as the refusal says it; None for a good one."""
    if value in DEVSTACK_SECRETS:
        return "is the devstack's default"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    bits = sum(c * math.log2(len(value) / c) for c in Counter(value).values())
    if bits < MIN_SECRET_BITS or value in (value + value)[1:-1]:
        return "is too predictable (its characters repeat: use a random value)"
    return None


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

    # The shop: printed on the receipt and the labels, named as the e-mails' sender. The
    # support contacts close every message and page, and are the shop's e-mail and phone on
    # its documents.
    shop_name: str = "Orderflow Demo Shop"
    shop_legal_name: str = "Orderflow Demo Shop LLC"
    shop_address: str = "Khreshchatyk 1, 01001 Kyiv, UA"
    shop_tax_id: str = "00000000"
    support_email: str = "support@orderflow.localhost"
    support_phone: str = "+380 44 000 00 00"

    # Mail: the sender's address (its domain also names every Message-ID; shown with the
    # shop's name unless it carries a name of its own), and where replies go (unset: support).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "orders@orderflow.localhost"
    smtp_reply_to: str = ""
    smtp_timeout_seconds: float = 10.0
    # A relay that wants a login (an ESP's: Mailgun's smtp.mailgun.org:587); STARTTLS is used
    # whenever the server offers it. Unset: no login (the devstack's sink, a local relay).
    smtp_username: str = ""
    smtp_password: str = ""

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
    carrier_url: str = ""  # the simulated carrier's (ORDERFLOW_CARRIER=sim)
    sms_url: str = ""
    push_url: str = ""
    sms_sender: str = "orderflow"  # the SMS's sender (an alpha name registered with TurboSMS)
    # The payment provider (README, Payments): "sim" is orderflow's own invented API at
    # `payment_url`; the others are the real APIs at `<provider>_url` (their simulators in the
    # devstack, which `make dev` runs with "liqpay").
    payment_provider: Literal["sim", "liqpay", "monobank", "wayforpay", "stripe"] = "sim"
    liqpay_url: str = ""
    liqpay_public_key: str = "sandbox_devstack"
    liqpay_private_key: str = "dev-liqpay-private-key"
    liqpay_sandbox: bool = False  # LiqPay's test mode: `sandbox: 1`, test payments count
    monobank_url: str = ""
    monobank_token: str = "dev-monobank-token"  # X-Token (a test token from api.monobank.ua)
    wayforpay_url: str = ""
    wayforpay_merchant_account: str = "test_merch_n1"
    wayforpay_secret_key: str = "dev-wayforpay-secret-key"
    wayforpay_domain: str = "orderflow.localhost"  # merchantDomainName
    stripe_url: str = ""
    stripe_secret_key: str = "sk_test_devstack"  # Authorization: Bearer (a test key: sk_test_…)
    stripe_webhook_secret: str = "whsec_devstack"  # the webhook endpoint's signing secret
    # Text messages (README, Messaging): "sim" is orderflow's invented gateway at `sms_url`
    # (SMS only); "turbosms" is TurboSMS's HTTP API (SMS, and Viber with SMS as its fallback)
    # at `turbosms_url` (unset: https://api.turbosms.ua, or its simulator in the devstack,
    # which `make dev` runs).
    sms_provider: Literal["sim", "turbosms"] = "sim"
    turbosms_url: str = ""
    turbosms_token: str = "dev-turbosms-token"  # Bearer: the HTTP API's key from the cabinet
    viber_sender: str = "orderflow"  # the Viber sender registered with TurboSMS
    turbosms_viber_ttl: int = 3600  # seconds Viber has before TurboSMS sends the SMS instead
    # Delivery as TurboSMS reports it (message/status.json), asked every so often for the
    # messages of the last `_status_window` whose fate is still open.
    turbosms_status_poll_seconds: float = 60.0
    turbosms_status_window: timedelta = timedelta(hours=48)
    # E-mail goes out over SMTP (above). "mailgun": Mailgun relays it, and its events (hard
    # bounces, complaints, deliveries) are heard at /v1/webhooks/mailgun, signed with
    # `mailgun_webhook_signing_key` (Mailgun's "HTTP webhook signing key").
    email_provider: Literal["smtp", "mailgun"] = "smtp"
    mailgun_webhook_signing_key: str = "dev-mailgun-signing-key"
    # Gateways throttle; so do we, across every worker (activities.providers.SharedRate).
    sms_rate_per_second: float = 5.0
    push_rate_per_second: float = 50.0
    provider_timeout_seconds: float = 10.0
    # The carrier every parcel goes with (activities/carriers/): the devstack's invented one
    # (`sim`, webhooks in AfterShip's words), Nova Poshta's API 2.0 or Ukrposhta's eCom API
    # (tracked by polling, `carrier_poll_interval`). Meest is tracking only (README, Carriers).
    carrier: Literal["sim", "novaposhta", "ukrposhta"] = "sim"
    carrier_poll_interval: timedelta = timedelta(minutes=15)  # the tracking schedule's round
    # Nova Poshta (https://developers.novaposhta.ua): the key of the shop's business account,
    # and the sender the waybills name (refs from Counterparty.getCounterparties,
    # getCounterpartyContactPersons and Address.getWarehouses of that account).
    # Unset URLs: the real API outside the devstack, the simulator inside it.
    novaposhta_url: str = ""
    novaposhta_print_url: str = ""  # stickers (my.novaposhta.ua)
    novaposhta_tracking_page: str = ""  # the customer's tracking page (?cargo_number=)
    novaposhta_api_key: str = ""
    novaposhta_sender_ref: str = ""
    novaposhta_sender_contact_ref: str = ""
    novaposhta_sender_city_ref: str = ""
    novaposhta_sender_address_ref: str = ""  # the branch the shop hands parcels in at
    novaposhta_sender_phone: str = ""
    # Cash on delivery as a money transfer (`BackwardDeliveryData`, the recipient pays the
    # fee) or as "payment control" (`AfterpaymentOnGoodsCost`, to the shop's account).
    novaposhta_cod: Literal["backward_delivery", "payment_control"] = "backward_delivery"
    # Ukrposhta eCom (https://dev.ukrposhta.ua): the bearer of the eCom API, the counterparty
    # token of the shop's account, and the sender client's uuid (created once in its cabinet).
    ukrposhta_url: str = ""
    ukrposhta_tracking_url: str = ""  # status-tracking/0.0.1
    ukrposhta_tracking_page: str = ""  # the customer's tracking page (?barcode=)
    ukrposhta_bearer: str = ""
    ukrposhta_tracking_bearer: str = ""
    ukrposhta_counterparty_token: str = ""
    ukrposhta_sender_uuid: str = ""
    # HMAC-SHA256 secrets of signed webhooks; the devstack's simulators sign with the same
    payment_webhook_secret: str = "dev-payment-secret"
    warehouse_webhook_secret: str = "dev-warehouse-secret"
    carrier_webhook_secret: str = "dev-carrier-secret"
    webhook_tolerance_seconds: int = 300
    # HMAC-SHA256 key of the links customers get in messages (status page, answers); the
    # previous keys still open links already sent, so the key can be rotated.
    link_secret: str = "dev-link-secret"
    link_previous_secrets: list[str] = []
    # Seals the intake connectors' stored credentials (schema/intake/credentials.py).
    connector_secret: str = "dev-connector-secret"
    # Marketplaces whose orders are polled (README, Intake): how often the schedule polls
    # every enabled connector, and each API (unset: the real one outside the devstack, its
    # simulator inside it); each connector's credentials are its own.
    marketplace_poll_interval: timedelta = timedelta(minutes=5)
    prom_url: str = ""
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
    shop_events_batch: int = 50  # deliveries in flight at once, per worker process
    # ... and to one receiver: a slow one holds its own events only (README, shop's events).
    shop_events_per_receiver: int = 4
    shop_events_timeout_seconds: float = 10.0
    shop_events_retry_base: timedelta = timedelta(seconds=5)
    shop_events_retry_max: timedelta = timedelta(minutes=10)
    shop_events_retry_for: timedelta = timedelta(hours=72)

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = ""  # where customers and providers reach the API; unset: 127.0.0.1:api_port
    max_request_bytes: int = 1_048_576
    # The proxies (load balancers) in front of the API whose X-Forwarded-For is believed:
    # addresses or networks, comma-separated ("10.0.0.0/8, 192.168.1.7"). Unset: none, the
    # peer is the client. The client's address is the right-most one not of these proxies;
    # every rate limit, the sign-in lockout and the audit log key on it.
    forwarded_allow_ips: str = ""
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
    policy_delivery_days_pickup: int = 1  # ready for pickup
    policy_delivery_days_branch: int = 2  # the carrier's own estimate replaces it once booked
    # Express courier orders: the same day (0) when confirmed before the cutoff hour, in the
    # customer's time; after it, the next.
    policy_express_delivery_days: int = 0
    policy_express_cutoff_hour: int = 14
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
    policy_carrier_news_wait: timedelta = timedelta(days=9)  # a silent carrier: an incident
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
    # Cash on delivery collected by a carrier that reports payouts (Nova Poshta) and not
    # paid out this long after delivery: an incident for the bookkeeper.
    policy_cod_payout_wait: timedelta = timedelta(days=3)
    # At a carrier's branch: the reminder this long before the free storage ends.
    policy_branch_storage_reminder: timedelta = timedelta(days=1)
    # Customer returns: fixed into each return at its start.
    policy_return_window: timedelta = timedelta(days=14)  # from delivery (EU, UA law)
    policy_return_non_returnable: tuple[str, ...] = ("HYG-", "FOOD-")  # SKU prefixes: approval
    policy_return_sets: tuple[str, ...] = ("SET-",)  # SKU prefixes of sets: part of one, approval
    policy_return_shipping_wait: timedelta = timedelta(days=14)  # approved: the parcel by then
    policy_return_inspection_wait: timedelta = timedelta(days=3)  # received: inspected by then
    policy_return_silence_period: timedelta = timedelta(hours=24)  # the customer heard nothing
    policy_return_silence_max_notices: int = 7
    # Where return parcels go, to the shop's name (the return label); unset: the shop's address.
    returns_address: str = ""

    def order_policy(self) -> OrderPolicy:
        """The policy a new order is started with (and keeps for its whole life)."""
        return OrderPolicy(
            delivery_days={
                DeliveryMethod.COURIER: self.policy_delivery_days_courier,
                DeliveryMethod.POST: self.policy_delivery_days_post,
                DeliveryMethod.PICKUP: self.policy_delivery_days_pickup,
                DeliveryMethod.BRANCH: self.policy_delivery_days_branch,
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
        webhook or link-signing secret (the previous link secrets too) is unset, a devstack
        default, short, too predictable, or the same as another: one rule for every secret;
        and while a chosen provider's credential is unset or the devstack's."""
        if self.devstack:
            return
        problems = []
        given: dict[str, str] = {}
        for name in (
            "payment_webhook_secret",
            "warehouse_webhook_secret",
            "carrier_webhook_secret",
            "link_secret",
            "connector_secret",
        ):
            variable = f"ORDERFLOW_{name.upper()}"
            if name not in self.model_fields_set:
                problems.append(f"{variable} is unset")
            else:
                given[variable] = getattr(self, name)
        for n, old in enumerate(self.link_previous_secrets):
            given[f"ORDERFLOW_LINK_PREVIOUS_SECRETS[{n}]"] = old
        first_of: dict[str, str] = {}
        for variable, value in given.items():
            problem = secret_problem(value)
            if problem:
                problems.append(f"{variable} {problem}")
            elif value in first_of:
                problems.append(f"{variable} is the same as {first_of[value]}")
            first_of.setdefault(value, variable)
        # The payment provider's credentials are issued by it (some are not secret at all): set,
        # and never the devstack's.
        for name in PAYMENT_SECRETS[self.payment_provider]:
            variable = f"ORDERFLOW_{name.upper()}"
            if name not in self.model_fields_set or not getattr(self, name):
                problems.append(
                    f"{variable} is unset (ORDERFLOW_PAYMENT_PROVIDER={self.payment_provider})"
                )
            elif getattr(self, name) in DEVSTACK_SECRETS:
                problems.append(f"{variable} is the devstack's default")
        for name in CARRIER_CREDENTIALS[self.carrier]:  # the chosen carrier's, no other
            if not getattr(self, name):
                problems.append(
                    f"ORDERFLOW_{name.upper()} is unset (ORDERFLOW_CARRIER={self.carrier})"
                )
            elif getattr(self, name).startswith("dev-"):
                problems.append(f"ORDERFLOW_{name.upper()} is the devstack's default")
        for (setting, chosen), names in MESSAGING_CREDENTIALS.items():
            if getattr(self, setting) != chosen:
                continue
            for name in names:
                variable = f"ORDERFLOW_{name.upper()}"
                if name not in self.model_fields_set or not getattr(self, name):
                    problems.append(f"{variable} is unset (ORDERFLOW_{setting.upper()}={chosen})")
                elif getattr(self, name) in DEVSTACK_SECRETS:
                    problems.append(f"{variable} is the devstack's default")
        if problems:
            raise SystemExit(
                "orderflow refuses to start outside the devstack: "
                + "; ".join(problems)
                + f". Give each secret its own random value of at least {MIN_SECRET_LENGTH} "
                "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))') and "
                "the providers' credentials from their cabinets; on a developer's "
                "machine set ORDERFLOW_DEVSTACK=true instead."
            )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for each in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(each, strict=False)
            except ValueError:
                raise ValueError(
                    f"ORDERFLOW_FORWARDED_ALLOW_IPS: {each!r} is no address or network "
                    "(give proxies as 10.0.0.5 or 10.0.0.0/8, comma-separated)"
                ) from None
        return value

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
        # The real carriers' and marketplaces' APIs unless the devstack runs (then their
        # simulators, and the carrier accounts they know).
        for name, real, simulated in (*CARRIER_APIS, *MARKETPLACE_APIS):
            if not getattr(self, name):
                setattr(self, name, f"{simulators}/{simulated}" if self.devstack else real)
        if self.devstack:
            for name, value in DEVSTACK_CARRIER_ACCOUNTS.items():
                setattr(self, name, getattr(self, name) or value)
        self.sms_url = self.sms_url or f"{simulators}/sms"
        self.push_url = self.push_url or f"{simulators}/push"
        for provider, real in PAYMENT_APIS.items():
            url = f"{provider}_url"
            setattr(
                self,
                url,
                getattr(self, url) or (f"{simulators}/{provider}" if self.devstack else real),
            )
        self.turbosms_url = self.turbosms_url or (
            f"{simulators}/turbosms" if self.devstack else "https://api.turbosms.ua"
        )
        if not self.temporal_ui_url:
            self.temporal_ui_url = f"http://127.0.0.1:{self.temporal_ui_port}"
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings every process reads at its start; a value that cannot be read stops it
    with one line naming the variable and how to write it (no traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SystemExit(f"orderflow cannot start: {settings_problems(exc)}") from None
    except SettingsError as exc:  # a list or mapping that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        variable = f"ORDERFLOW_{found.group(1).upper()}" if found else "ORDERFLOW_*"
        raise SystemExit(
            f"orderflow cannot start: {variable}: write {_HOW_TO_WRITE['json']}"
        ) from None


# How each kind of setting is written, for the one line a bad value gets.
_HOW_TO_WRITE = {
    "time_delta": "a duration in ISO 8601, e.g. PT90S (90 seconds), PT2H or P14D",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "decimal": "a decimal number, e.g. 20000",
    "json": 'JSON, e.g. ["PT24H", "PT60H"]',
}


def settings_problems(error: ValidationError) -> str:
    """One clause per bad variable: `ORDERFLOW_POLICY_REVIEW_SLA='90s': write a duration in
    ISO 8601, e.g. PT90S (90 seconds), PT2H or P14D`."""
    problems = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        variable = f"ORDERFLOW_{name.upper()}" if name else "ORDERFLOW_*"
        kind = next((k for k in _HOW_TO_WRITE if problem["type"].startswith(k)), None)
        value = problem.get("input")
        shown = f"={value!r}" if isinstance(value, str) else ""
        how = f"write {_HOW_TO_WRITE[kind]}" if kind else problem["msg"]
        problems.append(f"{variable}{shown}: {how}")
    return "; ".join(problems)
