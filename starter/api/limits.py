"""Limits at the edge: request size for every route, request rate for the public ones."""

from __future__ import annotations

from slowapi import Limiter
from slowapi.util import get_remote_address
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.api import ErrorBody


def client_and_path(request: Request) -> str:
    """Public endpoints are limited per client and per URL (so per order for the feedback form)."""
    return f"{get_remote_address(request)}:{request.url.path}"


limiter = Limiter(key_func=client_and_path)


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
