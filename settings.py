"""Configuration: one `Settings` object read from `ORDERFLOW_*` environment variables.

Defaults serve the embedded stack that `make dev` brings up; production overrides
by environment only (see docker-compose.yml). The API, the worker, the devstack
and the tests all read this object.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schema.contracts import DeliveryMethod, OrderPolicy

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

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

    # Postgres: unset means the embedded server's socket under data_dir.
    database_url: str = ""

    # Mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "orderflow <orders@orderflow.localhost>"
    smtp_timeout_seconds: float = 10.0
    support_email: str = "support@orderflow.localhost"
    support_phone: str = "+380 44 000 00 00"

    # HTTP
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    worker_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for Prometheus to scrape
    worker_metrics_port: int = 9464

    # Policy: every duration an order lives by. Fixed into each order at its start.
    policy_activity_timeout: timedelta = timedelta(
        seconds=30
    )  # one attempt; a dead worker's is retried after it
    policy_activity_retry_initial: timedelta = timedelta(seconds=1)
    policy_activity_retry_max: timedelta = timedelta(minutes=1)
    policy_delivery_days_courier: int = 2
    policy_delivery_days_post: int = 5
    policy_delivery_days_pickup: int = 1

    def order_policy(self) -> OrderPolicy:
        """The policy a new order is started with (and keeps for its whole life)."""
        return OrderPolicy(
            activity_timeout=self.policy_activity_timeout,
            activity_retry_initial=self.policy_activity_retry_initial,
            activity_retry_max=self.policy_activity_retry_max,
            delivery_days={
                DeliveryMethod.COURIER: self.policy_delivery_days_courier,
                DeliveryMethod.POST: self.policy_delivery_days_post,
                DeliveryMethod.PICKUP: self.policy_delivery_days_pickup,
            },
        )

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = (
                f"postgresql+psycopg://postgres@/orderflow?host={self.data_dir / 'pg'}"
            )
        if not self.temporal_ui_url:
            self.temporal_ui_url = f"http://127.0.0.1:{self.temporal_ui_port}"
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
