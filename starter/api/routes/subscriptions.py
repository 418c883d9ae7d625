"""Order events for the shop's backend: subscriptions and their delivery log (admins, and a
service key for the orders it creates). Each delivery is signed with the subscription's
secret (`Orderflow-Signature`, schema/shop_events.py); the workers deliver them."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from schema.api.subscriptions import (
    DeliveryOut,
    DeliveryPage,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from starter.api.deps import AppSettings, Session, Subscriber
from starter.api.errors import responses
from starter.services import subscriptions

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["order events"])


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    responses=responses(409, 422),
    summary="Subscribe a receiver to order events (the secret is shown once)",
)
async def create(
    body: SubscriptionIn, db: Session, caller: Subscriber, settings: AppSettings
) -> SubscriptionCreated:
    return await subscriptions.create_subscription(db, caller=caller, body=body, settings=settings)


@router.get("", response_model=list[SubscriptionOut], summary="The caller's subscriptions")
async def list_all(db: Session, caller: Subscriber) -> list[SubscriptionOut]:
    return await subscriptions.list_subscriptions(db, caller=caller)


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    responses=responses(404),
    summary="One subscription, with its pending and failed deliveries counted",
)
async def get_one(subscription_id: uuid.UUID, db: Session, caller: Subscriber) -> SubscriptionOut:
    return await subscriptions.get_subscription(db, caller=caller, subscription_id=subscription_id)


@router.patch(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    responses=responses(404, 409, 422),
    summary="Change the URL or the events, or pause (active false) and resume (409 for the "
    "subscription of a revoked key: it stays paused)",
)
async def update(
    subscription_id: uuid.UUID,
    body: SubscriptionPatch,
    db: Session,
    caller: Subscriber,
    settings: AppSettings,
) -> SubscriptionOut:
    return await subscriptions.update_subscription(
        db, caller=caller, subscription_id=subscription_id, body=body, settings=settings
    )


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=responses(404),
    summary="Delete a subscription and its delivery log",
)
async def delete(subscription_id: uuid.UUID, db: Session, caller: Subscriber) -> Response:
    await subscriptions.delete_subscription(db, caller=caller, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryPage,
    responses=responses(404),
    summary="The delivery log, newest first: each event, its attempts, the last answer",
)
async def deliveries(
    subscription_id: uuid.UUID,
    db: Session,
    caller: Subscriber,
    status: Literal["pending", "delivered", "failed"] | None = None,
    order_id: uuid.UUID | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="`next_cursor` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    return await subscriptions.deliveries(
        db,
        caller=caller,
        subscription_id=subscription_id,
        status=status,
        order_id=order_id,
        before=before,
        limit=limit,
    )


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    responses=responses(404),
    summary="Send a delivery again (same event id and body; after what is pending before it)",
)
async def redeliver(
    subscription_id: uuid.UUID,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    db: Session,
    caller: Subscriber,
) -> DeliveryOut:
    return await subscriptions.redeliver(
        db, caller=caller, subscription_id=subscription_id, delivery_id=delivery_id
    )
