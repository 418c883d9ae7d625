"""HTTP to the shop's providers: one shared client, errors mapped to named Temporal failures.

Retries come from the activities' retry policies, never from loops here: a provider that
is down or answers 5xx/429 raises a retryable `ProviderUnavailable`; one that refuses the
request (other 4xx) raises a non-retryable `ProviderRejected`.
"""

from __future__ import annotations

from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from temporalio import activity
from temporalio.exceptions import ApplicationError


class Provider:
    """One provider's HTTP API; `rate_per_second` caps this process's calls to it (leaky bucket)."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        base_url: str,
        rate_per_second: float | None = None,
    ) -> None:
        self.name = name
        self._http = http
        self._base = base_url.rstrip("/")
        self._limiter = AsyncLimiter(rate_per_second, 1) if rate_per_second else None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            response = await self._http.request(
                method, f"{self._base}{path}", json=json, headers=headers
            )
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{self.name} unreachable: {type(exc).__name__}", type="ProviderUnavailable"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ApplicationError(
                f"{self.name} answered {response.status_code}", type="ProviderUnavailable"
            )
        if response.status_code >= 400:
            raise ApplicationError(
                f"{self.name} refused {method} {path}: {response.status_code} {response.text[:200]}",
                type="ProviderRejected",
                non_retryable=True,
            )
        body: dict[str, Any] = response.json() if response.content else {}
        return body


def step_key(order_id: str, step: str) -> str:
    """An idempotency key for this step of this run: the same on every retry, new for a repeat."""
    info = activity.info()
    return f"{order_id}:{step}:{info.workflow_run_id}:{info.activity_id}"


def make_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The process's one HTTP client (connection pooling, timeouts everywhere)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds), limits=httpx.Limits(max_connections=50)
    )
