"""Callbacks of the real payment providers, a route each in the provider's own shape
(LiqPay's form of `data` and `signature`, ...): the chosen provider's adapter verifies and
reads it (activities/payment_gateways), then one shared path checks it against the order,
records it once and tells the order (starter/services/provider_events.receive_payment_notice).

Only the provider the settings chose is heard: another's callback is 404. A bad signature
is 401 and changes nothing; a callback about another payment, amount or currency is 409 and
opens an incident; a replay is answered 200 `duplicate` and changes nothing. Every answer
that took the callback is 200: the providers retry on anything else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from activities.payment_gateways import CallbackReader
from activities.payment_gateways.wayforpay import WayForPayGateway
from schema.api.admin import WebhookAck
from settings import get_settings
from starter.api.deps import Session, Workflows
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services.provider_events import receive_payment_notice

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookAck, "description": "Taken (or a replay of one taken before)"},
    **responses(401, 404, 409, 422, 429, 503),
}


def _form(*fields: str) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in fields}
    schema = {"type": "object", "required": list(fields), "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


def _reader(request: Request, provider: str) -> CallbackReader:
    reader: CallbackReader | None = request.app.state.payment_callbacks
    if reader is None or reader.name != provider:
        raise HTTPException(404, f"this shop takes no payments through {provider}")
    return reader


async def _receive(
    provider: str, request: Request, db: Session, workflows: Workflows
) -> WebhookAck:
    notice = await _reader(request, provider).read_callback(request.headers, await request.body())
    fresh = await receive_payment_notice(db, workflows=workflows, provider=provider, notice=notice)
    return WebhookAck(accepted=fresh, duplicate=not fresh)


@router.post(
    "/liqpay",
    response_model=WebhookAck,
    responses=_ANSWERS,
    openapi_extra=_form("data", "signature"),
    summary="LiqPay's callback to server_url: data = base64(JSON), "
    "signature = base64(sha1(private_key + data + private_key))",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def liqpay(request: Request, db: Session, workflows: Workflows) -> WebhookAck:
    return await _receive("liqpay", request, db, workflows)


@router.post(
    "/monobank",
    response_model=WebhookAck,
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    summary="Monobank acquiring's webhook: the invoice's status, signed by ECDSA P-256 (X-Sign) "
    "with the key from /api/merchant/pubkey",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def monobank(request: Request, db: Session, workflows: Workflows) -> WebhookAck:
    return await _receive("monobank", request, db, workflows)


@router.post(
    "/stripe",
    response_model=WebhookAck,
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    summary="Stripe's events (checkout.session.*, payment_intent.succeeded/payment_failed, "
    "refund.*, charge.refunded), signed `Stripe-Signature: t=…,v1=…` (HMAC-SHA256 of "
    "`{t}.{body}` with the endpoint's whsec_ secret, 300 s tolerance)",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def stripe(request: Request, db: Session, workflows: Workflows) -> WebhookAck:
    return await _receive("stripe", request, db, workflows)


@router.post(
    "/wayforpay",
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    summary="WayForPay's callback to serviceUrl (merchantSignature: HMAC-MD5 over the documented "
    "fields), answered with the signed `accept` it waits for",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def wayforpay(request: Request, db: Session, workflows: Workflows) -> dict[str, Any]:
    reader = _reader(request, "wayforpay")
    assert isinstance(reader, WayForPayGateway)
    notice = await reader.read_callback(request.headers, await request.body())
    await receive_payment_notice(db, workflows=workflows, provider="wayforpay", notice=notice)
    return reader.accept(str(notice.order_ref))
