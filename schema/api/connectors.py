"""Intake connectors as admins configure them, what a source's webhook is answered, and
the source orders that could not be taken (intake failures)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schema.api.fields import StrictModel
from schema.intake import ConnectorKind

ConnectorName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        max_length=32,
        description="Lower-case letters, digits and '-': in the webhook's URL and in the "
        "numbers of its orders (`WC-<name>-<source id>`)",
        examples=["myshop"],
    ),
]
Credentials = Annotated[
    dict[
        Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")],
        Annotated[str, Field(min_length=1, max_length=500)],
    ],
    Field(
        max_length=8,
        description="Write-only. Each value either `env:VAR` (read from the API's "
        "environment when used) or the secret itself (stored encrypted). Names by kind: "
        "woocommerce and shopify `webhook_secret`; prom `api_token`; rozetka `username`, "
        "`password`",
    ),
]


class ConnectorIn(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "woocommerce",
                    "name": "myshop",
                    "credentials": {"webhook_secret": "env:MYSHOP_WC_SECRET"},
                }
            ]
        }
    )

    kind: ConnectorKind
    name: ConnectorName
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="By kind (README, Intake): woocommerce `locale`, `branch_methods`, "
        "`branch_ref_meta`, `cod_methods`; shopify `locale`, `branch_ref_attribute`, "
        "`branch_number_attribute`, `cod_gateways`",
    )
    credentials: Credentials
    enabled: bool = Field(default=True, strict=True)


class ConnectorPatch(StrictModel):
    settings: dict[str, Any] | None = Field(default=None, description="Replaces the settings")
    credentials: Credentials | None = Field(
        default=None, description="Replaces the credentials named; the others stay"
    )
    enabled: bool | None = Field(default=None, strict=True)


class ConnectorOut(BaseModel):
    id: uuid.UUID
    kind: ConnectorKind
    name: str
    settings: dict[str, Any] = Field(description="With every default filled in")
    credentials: dict[str, Literal["environment", "stored"]] = Field(
        description="Which credentials are set and how they are kept; never their values"
    )
    enabled: bool
    webhook_path: str | None = Field(
        description="Where the source posts its webhooks (after ORDERFLOW_PUBLIC_URL); "
        "None for a kind that is polled"
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class IntakeAck(BaseModel):
    """What a source's webhook is answered: 202 taken (or refused into an intake failure),
    200 a delivery or an order already taken, or WooCommerce's ping."""

    outcome: Literal["accepted", "failed", "duplicate", "ping", "ignored"]
    order_id: str | None = None
    failure_id: int | None = Field(
        default=None, description="The intake failure an operator sees in the queue"
    )


class IntakeFailureOut(BaseModel):
    id: int
    connector: str
    source_order_id: str
    field: str
    message: str
    status: Literal["open", "resolved"]
    opened_at: datetime
