"""Limits at the edge: request size for every route, request rate for the public ones
(per process), failed sign-ins (counted in Postgres, shared by every API process)."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from slowapi import Limiter
from slowapi.util import get_remote_address
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.api.orders import ErrorBody
from schema.links import BadLink, LinkPurpose
from settings import Settings
from starter.services.access import SignInLimits
from starter.services.status_page import OrderListLimits


def client_and_path(request: Request) -> str:
    """Public endpoints are limited per client (its address behind our trusted proxies:
    ORDERFLOW_FORWARDED_ALLOW_IPS) and per URL; a customer link's URL counts per order, so
    every link of one order (each message carries its own) shares one count."""
    path = request.url.path
    token = request.path_params.get("token")
    if token:
        try:
            opened = request.app.state.links.order_of(tuple(LinkPurpose), token)
        except BadLink:
            pass
        else:
            path = path.replace(token, str(opened), 1)
    return f"{get_remote_address(request)}:{path}"


# Counted per route and key (by default slowapi scopes by the raw URL: per token, not order).
limiter = Limiter(key_func=client_and_path, key_style="endpoint")


class PostgresCounters(Storage):
    """A storage of the `limits` library in the table `rate_limit_counters`: fixed windows,
    one row per key, so every API process counts against the same numbers."""

    STORAGE_SCHEME: list[str] | None = ["orderflow+postgres"]  # noqa: RUF012  (the base declares it)

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        async with self._engine.begin() as conn:
            count = await conn.scalar(
                text(
                    "INSERT INTO rate_limit_counters AS c (key, count, expires_at) "
                    "VALUES (:key, :amount, now() + make_interval(secs => :expiry)) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN c.expires_at <= now() THEN :amount "
                    "ELSE c.count + :amount END, "
                    "expires_at = CASE WHEN c.expires_at <= now() THEN excluded.expires_at "
                    "ELSE c.expires_at END "
                    "RETURNING count"
                ),
                {"key": key, "amount": amount, "expiry": expiry},
            )
        return int(count)

    async def get(self, key: str) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                text(
                    "SELECT count FROM rate_limit_counters WHERE key = :key AND expires_at > now()"
                ),
                {"key": key},
            )
        return int(count or 0)

    async def get_expiry(self, key: str) -> float:
        async with self._engine.connect() as conn:
            expiry = await conn.scalar(
                text(
                    "SELECT extract(epoch FROM expires_at) FROM rate_limit_counters "
                    "WHERE key = :key AND expires_at > now()"
                ),
                {"key": key},
            )
        return float(expiry) if expiry is not None else time.time()

    async def check(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    async def reset(self) -> int | None:
        async with self._engine.begin() as conn:
            return (await conn.execute(text("DELETE FROM rate_limit_counters"))).rowcount

    async def clear(self, key: str) -> None:
        # Rows of windows long past go with it: the table holds only live counters.
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "DELETE FROM rate_limit_counters WHERE key = :key "
                    "OR expires_at < now() - interval '1 day'"
                ),
                {"key": key},
            )


def order_list_limits(engine: AsyncEngine, settings: Settings) -> OrderListLimits:
    return OrderListLimits(
        FixedWindowRateLimiter(PostgresCounters(engine)),
        per_address=parse(settings.customer_link_email_limit),
    )


def sign_in_limits(engine: AsyncEngine, settings: Settings) -> SignInLimits:
    return SignInLimits(
        FixedWindowRateLimiter(PostgresCounters(engine)),
        per_account=parse(settings.sign_in_account_limit),
        per_ip=parse(settings.sign_in_ip_limit),
    )


class BodySizeLimit:
    """413 for a body over `max_bytes`, whether announced by Content-Length or streamed; 400
    for a Content-Length that is not a number."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await _refuse(send, 400, "the Content-Length header is not a number of bytes")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await _refuse(send, 413, self.too_large)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _refuse(send, 413, self.too_large)

    @property
    def too_large(self) -> str:
        return f"request body over {self.max_bytes} bytes"


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = ErrorBody(detail=detail).model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
