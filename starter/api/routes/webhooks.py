"""Signed provider events (payment, warehouse, carrier) -> workflow signals.

A bad or stale signature is 401 and changes nothing; a replayed event (same provider and
event id) is answered 200 `duplicate` and changes nothing either."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from schema.webhooks import HEADER
from settings import get_settings
from starter.api.deps import AppSettings, Session, Workflows
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services.provider_events import Provider, receive_event

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "/{provider}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "A replay of an event already accepted: nothing changed"},
        **responses(401, 404, 409, 422, 429, 503),
    },
    summary="Signed provider events (payment, warehouse, carrier)",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def receive(
    provider: Provider,
    request: Request,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
    signature: Annotated[
        str | None,
        Header(
            alias=HEADER,
            pattern=r"^t=[0-9]{1,12},v1=[0-9a-f]{64}$",
            description="`t=<unix seconds>,v1=<hex HMAC-SHA256 of '{t}.{body}'>`",
        ),
    ] = None,
) -> dict[str, Any]:
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
    return {"accepted": fresh, "duplicate": not fresh}
