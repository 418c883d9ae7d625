"""Administration: staff sessions and accounts, service keys, the audit log, erasure,
and the small answers of health and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from schema.api.fields import Email, OneLine, Role, StrictModel


class SessionIn(StrictModel):
    username: OneLine = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"


class KeyIn(StrictModel):
    name: OneLine = Field(min_length=1, max_length=100, examples=["shop-backend"])
    role: Role


# A staff member's password: the rule the API checks, and the CLI before it asks twice.
StaffPassword = Annotated[str, Field(min_length=10, max_length=200)]


class AccountIn(StrictModel):
    username: str = Field(
        min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$", examples=["olena"]
    )
    password: StaffPassword
    # Staff are people; a backend service calls with an API key (its orders, its events).
    role: Literal[Role.OPERATOR, Role.SUPPORT, Role.ADMIN]


class AccountCreated(BaseModel):
    username: str
    role: Role


class AccountOut(AccountCreated):
    disabled: bool
    sessions: int = Field(description="Open sessions")
    created_at: datetime | None


class SessionsRevoked(BaseModel):
    username: str
    sessions: int = Field(description="How many sessions ended")


class KeyIssued(BaseModel):
    name: str
    role: Role
    key: str = Field(description="Shown this once; only its hash is stored")


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    revoked: bool


class KeyRevoked(BaseModel):
    id: uuid.UUID
    revoked: bool


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    ip: str | None
    detail: dict[str, Any]


class DocumentLink(BaseModel):
    kind: str
    url: str


class WebhookAck(BaseModel):
    accepted: bool = Field(description="False: a replay of an event accepted before")
    duplicate: bool


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, dict[str, Any]] = Field(
        description="database, temporal (with the workers polling), smtp: each with its status"
    )


class ErasureIn(StrictModel):
    email: Email


class ErasureOut(BaseModel):
    customer_id: uuid.UUID | None = Field(
        description="None: no order of that e-mail was ever taken; only intake failures "
        "(a shop's orders that could not be taken) held it"
    )
    orders: list[uuid.UUID]
    erased: bool
