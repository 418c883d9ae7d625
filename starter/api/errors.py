"""Every error the API answers with has one body, `ErrorBody`: a sentence saying why, and for
invalid input every bad field named. The order services' named failures map to status codes
here, in one table."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from slowapi.errors import RateLimitExceeded
from starlette.exceptions import HTTPException as StarletteHTTPException

from activities.payment_gateways import InvalidCallback
from schema.api.orders import ErrorBody, FieldError
from schema.intake.credentials import CredentialUnusable
from schema.links import BadLink, ExpiredLink
from schema.webhooks import BadSignature
from starter.services.access import (
    AccountNotFound,
    LockingOneselfOut,
    SignInLocked,
    UsernameTaken,
    WrongCredentials,
)
from starter.services.email_events import EmailEventRefused
from starter.services.erasure import CustomerNotFound
from starter.services.errors import (
    ActionRefused,
    ConnectorNotFound,
    InputRefused,
    IntakeFailureNotFound,
    OrderNotFound,
    OrderNumberConflict,
    ReturnNotFound,
    SubscriptionNotFound,
    TemporalUnavailable,
)
from starter.services.provider_events import EventMismatch, InvalidEvent

STATUS_OF: dict[type[Exception], int] = {
    ExpiredLink: 410,  # before BadLink, its base: the first match answers
    BadLink: 404,
    OrderNotFound: 404,
    SubscriptionNotFound: 404,
    ReturnNotFound: 404,
    CustomerNotFound: 404,
    AccountNotFound: 404,
    ConnectorNotFound: 404,
    IntakeFailureNotFound: 404,
    OrderNumberConflict: 409,
    ActionRefused: 409,
    UsernameTaken: 409,
    LockingOneselfOut: 409,
    BadSignature: 401,
    WrongCredentials: 401,
    InvalidEvent: 422,
    InvalidCallback: 422,
    InputRefused: 422,
    EventMismatch: 409,
    EmailEventRefused: 406,
    TemporalUnavailable: 503,
    CredentialUnusable: 503,
}

MEANING = {
    400: "Malformed request: a body that cannot be read as JSON text, or a Content-Length "
    "that is not a number",
    401: "Missing, unknown or expired credentials (or a bad webhook signature)",
    403: "The caller's role may not do this",
    404: "No such order, subscription or connector (or not one this caller may see), or a "
    "link that is not valid",
    409: "Refused in the order's current state; the reason is given",
    410: "The link has expired",
    413: "Request body too large",
    422: "Invalid input; each bad field is named",
    429: "Too many requests; retry after the given seconds",
    503: "Temporal unreachable (or a connector's credential cannot be read); retry the same "
    "request",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a route gives."""
    return {code: {"model": ErrorBody, "description": MEANING[code]} for code in codes}


def _body(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=ErrorBody(detail=detail).model_dump(), headers=headers or None
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))
    if isinstance(exc, InputRefused):
        body = ErrorBody(detail=str(exc), errors=[FieldError(field=exc.field, message=exc.message)])
        return JSONResponse(status_code=422, content=body.model_dump())
    return _body(status, str(exc))


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field=".".join(str(part) for part in err["loc"][1:]) or str(err["loc"][0]),
            message=err["msg"].removeprefix("Value error, "),
        )
        for err in exc.errors()
    ]
    detail = f"invalid request: {', '.join(e.field for e in errors)}"
    return JSONResponse(
        status_code=422, content=ErrorBody(detail=detail, errors=errors).model_dump()
    )


async def _sign_in_locked(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SignInLocked)
    return _body(429, str(exc), **{"Retry-After": str(exc.retry_after)})


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    return _body(
        429, f"too many requests: limit {exc.detail}; try again later", **{"Retry-After": "60"}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _documented_methods(request) or headers.get("Allow", "")
    return JSONResponse(
        status_code=exc.status_code,
        content=ErrorBody(detail=str(exc.detail)).model_dump(),
        headers=headers or None,
    )


def _documented_methods(request: Request) -> str | None:
    """`Allow` for a 405: every method the OpenAPI lists for the path (Starlette names only
    those of the first route that matched it)."""
    for template, operations in request.app.openapi()["paths"].items():
        pattern = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
        )
        if re.fullmatch(pattern, request.url.path):
            return ", ".join(method.upper() for method in operations)
    return None


def document_edge_answers(app: FastAPI) -> None:
    """The OpenAPI tells every answer: beside each route's own `responses(...)`, what the edge
    adds — 401 where a caller authenticates (the operation's `security`), 403 where it names
    the permission needed, 400 and 413 where a body is read, 422 wherever input is validated —
    each with `ErrorBody` (FastAPI's own validation body is one this app never sends)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operations in schema["paths"].values():
            for operation in operations.values():
                codes = {422} if operation.get("parameters") else set()
                if "requestBody" in operation:
                    codes |= {400, 413, 422}
                for requirement in operation.get("security", []):
                    codes.add(401)
                    if any(requirement.values()):  # roles named: a caller without them gets 403
                        codes.add(403)
                answers = operation["responses"]
                for code in sorted(codes):
                    if str(code) not in answers or code == 422:
                        answers[str(code)] = _documented(code)
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _documented(code: int) -> dict[str, Any]:
    return {
        "description": MEANING[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def install(app: FastAPI) -> None:
    for kind in STATUS_OF:
        app.add_exception_handler(kind, _service_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_exception_handler(SignInLocked, _sign_in_locked)
    app.add_exception_handler(StarletteHTTPException, _http_error)
