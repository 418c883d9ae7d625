"""Order events for the shop's backend: subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from schema.api.fields import StrictModel
from schema.shop_events import ShopEventType

# An http(s) URL with a host name (or address) and a path: where the shop receives events.
HttpUrl = Annotated[
    str,
    Field(
        min_length=10,
        max_length=500,
        pattern=r"^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?$",
        examples=["https://shop.example.com/hooks/orderflow"],
    ),
]
EventTypes = Annotated[list[ShopEventType], Field(min_length=1, max_length=len(ShopEventType))]


class SubscriptionIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/hooks/orderflow",
                    "events": ["order.confirmed", "order.shipped", "order.delivered"],
                }
            ]
        }
    )

    url: HttpUrl
    events: EventTypes


class SubscriptionPatch(StrictModel):
    url: HttpUrl | None = None
    events: EventTypes | None = None
    active: bool | None = Field(default=None, strict=True, description="false pauses deliveries")


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[ShopEventType]
    active: bool
    scope: Literal["all_orders", "own_orders", "connector_orders"] = Field(
        description="all_orders: an admin's; own_orders: the orders the subscribing key "
        "created; connector_orders: a marketplace connector's write-back (the orders it "
        "brought, told to the marketplace in its own API at `url`; created with the connector)"
    )
    created_by: str
    created_at: datetime
    pending: int = Field(description="Deliveries waiting to be sent or retried")
    failed: int = Field(description="Deliveries given up (redeliver them by hand)")


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="Signs every delivery (Orderflow-Signature); shown this once only"
    )


class DeliveryOut(BaseModel):
    id: int
    event_id: uuid.UUID
    type: ShopEventType
    order_id: uuid.UUID
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = Field(description="Pass as `before` for older deliveries")
