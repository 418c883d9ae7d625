"""HTTP to the shop's providers: one shared client, errors mapped to named Temporal failures.

Retries come from the activities' retry policies, never from loops here: a provider that
is down or answers 5xx/429 raises a retryable `ProviderUnavailable`; one that refuses the
request (other 4xx) raises a non-retryable `ProviderRejected`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.vocabulary import ErrorType

# Calls are spaced a fifth more than 1/rate apart, so that the provider, which sees each call
# a few milliseconds (under load, a hundred) later than it was let go, still never counts
# more than the rate in a second.
JITTER_MARGIN = 1.2

# The provider's row says when its next call may go; a call goes only when it moves that
# moment on from now (one statement, so two workers never both go).
_TAKE_TURN = text(
    """
    INSERT INTO provider_slots AS s (provider, next_at)
    VALUES (:provider, clock_timestamp() + make_interval(secs => :spacing))
    ON CONFLICT (provider) DO UPDATE
        SET next_at = clock_timestamp() + make_interval(secs => :spacing)
        WHERE s.next_at <= clock_timestamp()
    RETURNING 0.0
    """
)
_NEXT_TURN = text(
    "SELECT extract(epoch FROM next_at - clock_timestamp()) FROM provider_slots"
    " WHERE provider = :provider"
)


class SharedRate:
    """A provider's rate limit held by every worker together, in Postgres (`provider_slots`:
    one row per provider). A call goes when it takes its turn — it moves the provider's next
    moment on by 1/rate in one statement — and otherwise sleeps until that moment and tries
    again. So N workers' calls are spaced as one worker's would be. A call that has waited
    `max_wait` in vain fails retryably (its activity's retry policy backs off)."""

    def __init__(
        self, engine: AsyncEngine, provider: str, per_second: float, max_wait: float = 10.0
    ) -> None:
        self._engine = engine
        self._provider = provider
        self._values = {"provider": provider, "spacing": JITTER_MARGIN / per_second}
        self._max_wait = max_wait

    async def take_turn(self) -> None:
        deadline = time.monotonic() + self._max_wait
        while True:
            async with self._engine.begin() as connection:
                if await connection.scalar(_TAKE_TURN, self._values) is not None:
                    return
                wait = float(await connection.scalar(_NEXT_TURN, self._values) or 0)
            if time.monotonic() + wait > deadline:
                raise ApplicationError(
                    f"{self._provider} is at its rate limit: no turn within {self._max_wait:g} s",
                    type=ErrorType.PROVIDER_UNAVAILABLE,
                )
            await asyncio.sleep(max(wait, 0.001))


class Provider:
    """One provider's HTTP API; `rate` holds its rate limit across every worker, `headers`
    go with every call (an API key)."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        base_url: str,
        rate: SharedRate | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._http = http
        self._base = base_url.rstrip("/")
        self._rate = rate
        self._headers = headers or {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {
            **self._headers,
            **({"Idempotency-Key": idempotency_key} if idempotency_key else {}),
        }
        if self._rate is not None:
            await self._rate.take_turn()
        try:
            response = await self._http.request(
                method, f"{self._base}{path}", json=json, headers=headers
            )
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{self.name} unreachable: {type(exc).__name__}",
                type=ErrorType.PROVIDER_UNAVAILABLE,
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ApplicationError(
                f"{self.name} answered {response.status_code}", type=ErrorType.PROVIDER_UNAVAILABLE
            )
        if response.status_code >= 400:
            raise ApplicationError(
                f"{self.name} refused {method} {path}: {response.status_code} {response.text[:200]}",
                type=ErrorType.PROVIDER_REJECTED,
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
