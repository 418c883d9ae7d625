"""Signed provider events (payment, warehouse, carrier) -> workflow signals.

A bad or stale signature is 401 and changes nothing; a replayed event (same provider and
event id) is answered 200 `duplicate` and changes nothing either."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from schema.api.admin import WebhookAck
from schema.webhooks import HEADER, BadSignature
from settings import get_settings
from starter.api.deps import AppSettings, Session, Workflows
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services.provider_events import Envelope, ReportingProvider, receive_event

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "/{provider}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAck,
    responses={
        200: {"model": WebhookAck, "description": "A replay of an event already accepted"},
        **responses(401, 404, 409, 422, 429, 503),
    },
    # The body is read raw (its bytes are signed); this is what it must hold.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Envelope.model_json_schema()}},
        }
    },
    summary="Signed provider events (payment, warehouse, carrier)",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def receive(
    provider: ReportingProvider,
    request: Request,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    signature: Annotated[
        str,
        Header(
            alias=HEADER,
            description="`t=<unix seconds>,v1=<hex HMAC-SHA256 of '{t}.{body}'>`; missing, "
            "malformed or wrong, the answer is 401",
        ),
    ] = "",
) -> WebhookAck:
    if not signature.isascii():
        raise BadSignature(f"malformed {HEADER} header")
    body = await request.body()
    fresh = await receive_event(
        db,
        workflows=workflows,
        settings=settings,
        provider=provider,
        body=body,
        signature=signature,
    )
    if not fresh:
        response.status_code = status.HTTP_200_OK
    return WebhookAck(accepted=fresh, duplicate=not fresh)
