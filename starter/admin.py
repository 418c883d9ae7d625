"""Administration: API keys, staff accounts and sessions, the audit log, and erasure of a customer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import delete, update
from sqlmodel import col, select

from schema.tables import (
    ApiKey,
    AuditEntry,
    Customer,
    CustomerAddress,
    Document,
    Feedback,
    Notification,
    Order,
    StaffAccount,
)
from starter.auth import (
    Permission,
    Principal,
    Role,
    audit,
    hash_password,
    issue_api_key,
    open_staff_session,
    require,
)
from starter.deps import Session

router = APIRouter(tags=["admin"])
Admin = Annotated[Principal, require(Permission.ADMINISTER)]
ERASED = "erased"


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["shop-backend"])
    role: Role


class AccountIn(BaseModel):
    username: str = Field(
        min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$", examples=["olena"]
    )
    password: str = Field(min_length=10, max_length=200)
    role: Role


class SessionIn(BaseModel):
    username: str
    password: str


class ErasureIn(BaseModel):
    email: EmailStr


@router.post("/v1/sessions", tags=["auth"], summary="Sign in: a session token for a staff account")
async def sign_in(body: SessionIn, db: Session) -> dict[str, str]:
    token = await open_staff_session(db, username=body.username, password=body.password)
    if token is None:
        raise HTTPException(401, "wrong username or password")
    return {"token": token, "token_type": "bearer"}


@router.post("/v1/admin/keys", status_code=201, summary="Issue an API key (shown once)")
async def create_key(body: KeyIn, db: Session, caller: Admin) -> dict[str, str]:
    key = await issue_api_key(db, name=body.name, role=body.role)
    await audit(db, caller, "key.issue", body.name, role=body.role.value)
    await db.commit()
    return {"name": body.name, "role": body.role.value, "key": key}


@router.get("/v1/admin/keys", summary="API keys (prefixes only)")
async def list_keys(db: Session, caller: Admin) -> list[dict[str, Any]]:
    keys = (await db.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all()
    return [
        {
            "id": str(k.id),
            "name": k.name,
            "role": k.role,
            "prefix": k.prefix,
            "revoked": k.revoked_at is not None,
        }
        for k in keys
    ]


@router.delete("/v1/admin/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(key_id: uuid.UUID, db: Session, caller: Admin) -> dict[str, Any]:
    key = await db.get(ApiKey, key_id)
    if key is None:
        raise HTTPException(404, f"no key {key_id}")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    db.add(key)
    await audit(db, caller, "key.revoke", str(key_id))
    await db.commit()
    return {"id": str(key_id), "revoked": True}


@router.post("/v1/admin/accounts", status_code=201, summary="Create a staff account")
async def create_account(body: AccountIn, db: Session, caller: Admin) -> dict[str, str]:
    if (await db.exec(select(StaffAccount).where(StaffAccount.username == body.username))).first():
        raise HTTPException(409, f"username {body.username} is taken")
    db.add(
        StaffAccount(
            username=body.username, password_hash=hash_password(body.password), role=body.role.value
        )
    )
    await audit(db, caller, "account.create", body.username, role=body.role.value)
    await db.commit()
    return {"username": body.username, "role": body.role.value}


@router.get("/v1/admin/audit", summary="The audit log, newest first")
async def audit_log(
    db: Session,
    caller: Admin,
    target: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(min(limit, 1000))
    if target:
        query = query.where(AuditEntry.target == target)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    rows = (await db.exec(query)).all()
    return [r.model_dump(mode="json") for r in rows]


@router.post(
    "/v1/admin/erasures", summary="Erase a customer's personal data (GDPR art. 17, 152-FZ)"
)
async def erase_customer(body: ErasureIn, db: Session, caller: Admin) -> dict[str, Any]:
    """Orders keep their history with the customer anonymized; workflows hold no personal data
    (architecture rule 1), so nothing in Temporal changes. Documents holding the address go."""
    customer = (await db.exec(select(Customer).where(Customer.email == body.email.lower()))).first()
    if customer is None:
        raise HTTPException(404, "no customer with that e-mail")
    cid = customer.id
    order_ids = (await db.exec(select(Order.id).where(Order.customer_id == cid))).all()
    customer.name, customer.email = ERASED, f"erased-{cid}@erased.invalid"
    customer.phone, customer.push_token, customer.channels = ERASED, None, ["email"]
    db.add(customer)
    await db.execute(
        update(CustomerAddress)
        .where(col(CustomerAddress.customer_id) == cid)
        .values(city=ERASED, line1=ERASED, line2=None, postal_code=ERASED)
    )
    await db.execute(
        update(Notification)
        .where(col(Notification.order_id).in_(order_ids))
        .values(recipient_masked=ERASED)
    )
    await db.execute(
        update(Feedback).where(col(Feedback.order_id).in_(order_ids)).values(comment=None)
    )
    await db.execute(update(Order).where(col(Order.id).in_(order_ids)).values(customer_note=None))
    await db.execute(delete(Document).where(col(Document.order_id).in_(order_ids)))
    await audit(db, caller, "customer.erase", str(cid), orders=len(order_ids))
    await db.commit()
    return {"customer_id": str(cid), "orders": [str(o) for o in order_ids], "erased": True}
