"""Administration (admins only): API keys, staff accounts and their sessions, the audit log,
erasure."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from schema.api.admin import (
    AccountCreated,
    AccountIn,
    AccountOut,
    AuditOut,
    ErasureIn,
    ErasureOut,
    KeyIn,
    KeyIssued,
    KeyOut,
    KeyRevoked,
    SessionsRevoked,
)
from schema.api.fields import OneLine, Role
from starter.api.deps import Admin, Session
from starter.api.errors import responses
from starter.services import access
from starter.services.access import Principal, issue_api_key
from starter.services.erasure import erase_customer

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Username = Annotated[OneLine, Path(max_length=64)]


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyIssued,
    responses=responses(422),
    summary="Issue an API key (shown once)",
)
async def create_key(body: KeyIn, db: Session, caller: Admin) -> KeyIssued:
    key = await issue_api_key(db, name=body.name, role=body.role, caller=caller)
    return KeyIssued(name=body.name, role=body.role, key=key)


@router.get("/keys", response_model=list[KeyOut], summary="API keys (prefixes only)")
async def list_keys(db: Session, caller: Admin) -> list[KeyOut]:
    return [
        KeyOut(
            id=k.id,
            name=k.name,
            role=Role(k.role),
            prefix=k.prefix,
            revoked=k.revoked_at is not None,
        )
        for k in await access.list_keys(db)
    ]


@router.delete(
    "/keys/{key_id}",
    response_model=KeyRevoked,
    responses=responses(404, 409, 422),
    summary="Revoke an API key (not the one calling)",
)
async def revoke_key(key_id: uuid.UUID, db: Session, caller: Admin) -> KeyRevoked:
    if not await access.revoke_key(db, caller=caller, key_id=key_id):
        raise HTTPException(404, f"no key {key_id}")
    return KeyRevoked(id=key_id, revoked=True)


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountCreated,
    responses=responses(409, 422),
    summary="Create a staff account",
)
async def create_account(body: AccountIn, db: Session, caller: Admin) -> AccountCreated:
    await access.create_account(
        db, caller=caller, username=body.username, password=body.password, role=body.role
    )
    return AccountCreated(username=body.username, role=body.role)


@router.get("/accounts", response_model=list[AccountOut], summary="Staff accounts")
async def list_accounts(db: Session, caller: Admin) -> list[AccountOut]:
    return [
        AccountOut.model_validate(a, from_attributes=True) for a in await access.list_accounts(db)
    ]


@router.post(
    "/accounts/{username}/disable",
    response_model=AccountOut,
    responses=responses(404, 409, 422),
    summary="Disable an account (not one's own): it cannot sign in, and its sessions end now",
)
async def disable_account(username: Username, db: Session, caller: Admin) -> AccountOut:
    return await _set_disabled(db, caller, username, disabled=True)


@router.post(
    "/accounts/{username}/enable",
    response_model=AccountOut,
    responses=responses(404, 422),
    summary="Enable a disabled account",
)
async def enable_account(username: Username, db: Session, caller: Admin) -> AccountOut:
    return await _set_disabled(db, caller, username, disabled=False)


async def _set_disabled(
    db: Session, caller: Principal, username: str, *, disabled: bool
) -> AccountOut:
    await access.set_account_disabled(db, caller=caller, username=username, disabled=disabled)
    [account] = [a for a in await access.list_accounts(db) if a.username == username]
    return AccountOut.model_validate(account, from_attributes=True)


@router.delete(
    "/accounts/{username}/sessions",
    response_model=SessionsRevoked,
    responses=responses(404, 422),
    summary="End every session of an account now (it may sign in again)",
)
async def revoke_sessions(username: Username, db: Session, caller: Admin) -> SessionsRevoked:
    ended = await access.revoke_sessions(db, caller=caller, username=username)
    return SessionsRevoked(username=username, sessions=ended)


@router.get(
    "/audit",
    response_model=list[AuditOut],
    responses=responses(422),
    summary="The audit log, newest first",
)
async def audit_log(
    db: Session,
    caller: Admin,
    target: Annotated[OneLine | None, Query(max_length=64)] = None,
    actor: Annotated[OneLine | None, Query(max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    rows = await access.audit_entries(db, target=target, actor=actor, limit=limit)
    return [AuditOut.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/erasures",
    response_model=ErasureOut,
    responses=responses(404, 422),
    summary="Erase a customer's personal data (GDPR art. 17, 152-FZ)",
)
async def erase(body: ErasureIn, db: Session, caller: Admin) -> ErasureOut:
    """Orders keep their history with the customer anonymized; workflows hold no personal data
    (architecture rule 1), so nothing in Temporal changes. Documents holding the address go."""
    return ErasureOut.model_validate(await erase_customer(db, caller=caller, email=body.email))
