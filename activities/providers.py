"""HTTP to the shop's providers: one shared client, errors mapped to named Temporal failures.

Retries come from the activities' retry policies, never from loops here: a provider that
is down or answers 5xx/429 raises a retryable `ProviderUnavailable`; one that refuses the
request (other 4xx) raises a non-retryable `ProviderRejected`. Providers that answer 200
with an error inside (Nova Poshta's `success: false` with `errorCodes`) are judged by their
adapters through `provider_error`, with the codes a retry may heal.
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

from schema.pii import mask_addresses
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


def provider_error(
    name: str, message: str, *, retryable: bool, status: int | None = None
) -> ApplicationError:
    """A provider's failure as the activities name it: `ProviderUnavailable` (retried) or
    `ProviderRejected` (refused for good: an incident an operator settles; its HTTP status,
    when there was one, its only detail). Its words may quote what it was sent: e-mail
    addresses and phone numbers are masked (the failure is kept in the order's history)."""
    message = mask_addresses(message)
    if retryable:
        return ApplicationError(f"{name}: {message}", type=ErrorType.PROVIDER_UNAVAILABLE)
    return ApplicationError(
        f"{name}: {message}",
        *([] if status is None else [status]),
        type=ErrorType.PROVIDER_REJECTED,
        non_retryable=True,
    )


class Provider:
    """One provider's HTTP API; `rate` holds its rate limit across every worker, `headers`
    go with every call (an API key)."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        base_url: str,
        rate: SharedRate | None = None,
        headers: dict[str, str] | None = None,  # e.g. the provider's Authorization
    ) -> None:
        self.name = name
        self._http = http
        self._base = base_url.rstrip("/")
        self._rate = rate
        self._headers = headers or {}

    def url(self, path: str) -> str:
        return f"{self._base}{path}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,  # kept out of errors: they may carry a token
        absent_ok: bool = False,  # a 404 is an answer (None): "nothing known of it yet"
    ) -> Any:
        """JSON (`json`) or a form (`form`) in, JSON out."""
        response = await self._send(
            method,
            path,
            f"{method} {path}",
            json=json,
            form=form,
            idempotency_key=idempotency_key,
            headers=headers,
            params=params,
            absent_ok=absent_ok,
        )
        if response is None:
            return None
        try:
            body: Any = response.json() if response.content else {}
        except ValueError as exc:  # a proxy's error page where JSON was due: try again
            raise provider_error(self.name, "answered no JSON", retryable=True) from exc
        return body

    async def send(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The provider's answer itself, below 400 (a redirect is not followed); errors mapped."""
        response = await self._send(method, path, f"{method} {path}", form=form, headers=headers)
        assert response is not None
        return response

    async def download(self, path: str, what: str, params: dict[str, str] | None = None) -> bytes:
        """A document the provider prints (a sticker's PDF), with the same error mapping;
        `what` names it in errors instead of the path (which may carry a key)."""
        response = await self._send("GET", path, what, params=params)
        assert response is not None
        return response.content

    async def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        form: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        absent_ok: bool = False,
    ) -> httpx.Response | None:
        sent = {**self._headers, **(headers or {})}
        if idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        if self._rate is not None:
            await self._rate.take_turn()
        try:
            response = await self._http.request(
                method, self.url(path), json=json, data=form, headers=sent, params=params
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
        if response.status_code == 404 and absent_ok:
            return None
        if response.status_code >= 400:
            raise provider_error(
                self.name,
                f"refused {what}: {response.status_code} {response.text[:200]}",
                retryable=False,
                status=response.status_code,
            )
        return response


def step_key(order_id: str, step: str) -> str:
    """An idempotency key for this step of this run: the same on every retry, new for a repeat."""
    info = activity.info()
    return f"{order_id}:{step}:{info.workflow_run_id}:{info.activity_id}"


def make_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The process's one HTTP client (connection pooling, timeouts everywhere)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds), limits=httpx.Limits(max_connections=50)
    )
