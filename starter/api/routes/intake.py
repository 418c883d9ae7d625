"""Orders arriving by a shop platform's signed webhooks (WooCommerce, Shopify), and the
source orders that could not be taken (intake failures, for operators).

A bad signature is 401 and stores nothing. A delivery is answered fast (the order recorded
and its workflow started, as `POST /v1/orders` does; the rest happens in the workflow):
202 `accepted`, or 202 `failed` when the order cannot be mapped (an intake failure in the
operator queue — the source must not retry what cannot change); 200 `duplicate` for a
delivery seen before or an order already taken; 200 `ping` for WooCommerce's ping."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from schema.api.connectors import IntakeAck, IntakeFailureOut
from schema.intake import ConnectorKind
from settings import get_settings
from starter.api.deps import AppSettings, Operator, Searcher, Session, Workflows, client_ip
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services import intake

router = APIRouter(prefix="/v1/intake", tags=["intake"])
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": IntakeAck, "description": "A delivery or an order already taken; a ping"},
    **responses(401, 404, 422, 429, 503),
}


def _raw_json(description: str) -> dict[str, Any]:
    # The body is read raw (its bytes are signed).
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }


async def _receive(
    kind: ConnectorKind,
    name: str,
    request: Request,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> IntakeAck:
    ack = await intake.receive_order_webhook(
        db,
        workflows=workflows,
        settings=settings,
        kind=kind,
        name=name,
        headers=dict(request.headers),
        body=await request.body(),
        ip=client_ip(request),
    )
    if ack.outcome not in ("accepted", "failed"):
        response.status_code = status.HTTP_200_OK
    return ack


@router.post(
    "/woocommerce/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAck,
    responses=_ANSWERS,
    openapi_extra=_raw_json(
        "WooCommerce's order (topics order.created, order.updated), signed "
        "X-WC-Webhook-Signature = base64(HMAC-SHA256(body, the connector's webhook_secret)), "
        "with X-WC-Webhook-Delivery-ID; or its ping, the form webhook_id=<id>"
    ),
    summary="A WooCommerce shop's order webhook",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def woocommerce(
    name: Name,
    request: Request,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> IntakeAck:
    return await _receive(
        ConnectorKind.WOOCOMMERCE, name, request, response, db, workflows, settings
    )


@router.post(
    "/shopify/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAck,
    responses=_ANSWERS,
    openapi_extra=_raw_json(
        "Shopify's order (topic orders/create), signed X-Shopify-Hmac-SHA256 = "
        "base64(HMAC-SHA256(body, the connector's webhook_secret)), with X-Shopify-Webhook-Id"
    ),
    summary="A Shopify shop's order webhook",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def shopify(
    name: Name,
    request: Request,
    response: Response,
    db: Session,
    workflows: Workflows,
    settings: AppSettings,
) -> IntakeAck:
    return await _receive(ConnectorKind.SHOPIFY, name, request, response, db, workflows, settings)


@router.get(
    "/failures",
    response_model=list[IntakeFailureOut],
    summary="Source orders that could not be taken, open ones, newest first",
)
async def failures(db: Session, caller: Searcher) -> list[IntakeFailureOut]:
    return await intake.open_failures(db)


@router.post(
    "/failures/{failure_id}/resolve",
    status_code=204,
    response_class=Response,
    responses=responses(404),
    summary="Close an intake failure (its raw payload is deleted)",
)
async def resolve(
    failure_id: Annotated[int, Path(ge=1, le=2**31 - 1)], db: Session, caller: Operator
) -> Response:
    await intake.resolve_failure(db, caller=caller, failure_id=failure_id)
    return Response(status_code=204)
