"""Administration (admins only): API keys, staff accounts, the audit log, erasure."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from schema.api import AccountIn, ErasureIn, KeyIn, OneLine
from starter.api.deps import Admin, Session
from starter.api.errors import responses
from starter.services import access
from starter.services.access import audit, issue_api_key
from starter.services.erasure import erase_customer

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/keys", status_code=201, responses=responses(422), summary="Issue an API key (shown once)"
)
async def create_key(body: KeyIn, db: Session, caller: Admin) -> dict[str, str]:
    key = await issue_api_key(db, name=body.name, role=body.role)
    await audit(db, caller, "key.issue", body.name, role=body.role.value)
    await db.commit()
    return {"name": body.name, "role": body.role.value, "key": key}


@router.get("/keys", summary="API keys (prefixes only)")
async def list_keys(db: Session, caller: Admin) -> list[dict[str, Any]]:
    return [
        {
            "id": str(k.id),
            "name": k.name,
            "role": k.role,
            "prefix": k.prefix,
            "revoked": k.revoked_at is not None,
        }
        for k in await access.list_keys(db)
    ]


@router.delete("/keys/{key_id}", responses=responses(404), summary="Revoke an API key")
async def revoke_key(key_id: uuid.UUID, db: Session, caller: Admin) -> dict[str, Any]:
    if not await access.revoke_key(db, caller=caller, key_id=key_id):
        raise HTTPException(404, f"no key {key_id}")
    return {"id": str(key_id), "revoked": True}


@router.post(
    "/accounts", status_code=201, responses=responses(409, 422), summary="Create a staff account"
)
async def create_account(body: AccountIn, db: Session, caller: Admin) -> dict[str, str]:
    await access.create_account(
        db, caller=caller, username=body.username, password=body.password, role=body.role
    )
    return {"username": body.username, "role": body.role.value}


@router.get("/audit", responses=responses(422), summary="The audit log, newest first")
async def audit_log(
    db: Session,
    caller: Admin,
    target: Annotated[OneLine | None, Query(max_length=64)] = None,
    actor: Annotated[OneLine | None, Query(max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    rows = await access.audit_entries(db, target=target, actor=actor, limit=limit)
    return [row.model_dump(mode="json") for row in rows]


@router.post(
    "/erasures",
    responses=responses(404, 422),
    summary="Erase a customer's personal data (GDPR art. 17, 152-FZ)",
)
async def erase(body: ErasureIn, db: Session, caller: Admin) -> dict[str, Any]:
    """Orders keep their history with the customer anonymized; workflows hold no personal data
    (architecture rule 1), so nothing in Temporal changes. Documents holding the address go."""
    return await erase_customer(db, caller=caller, email=body.email)
