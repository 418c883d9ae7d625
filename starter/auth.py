"""Who is calling, what their role allows, and the audit log of what they did.

Callers send `Authorization: Bearer <token>`: an API key (services, scripts) or a staff
session token (people, from `POST /v1/sessions`). Only hashes are stored. 401 means the
caller is unknown; 403 means the role does not allow the action — both say why.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.database import open_session
from schema.tables import ApiKey, AuditEntry, StaffAccount, StaffSession


class Role(StrEnum):
    SERVICE = "service"  # creates orders, reads its own (personal data masked)
    OPERATOR = "operator"  # confirms, rejects, edits, delays, cancels; sees personal data
    SUPPORT = "support"  # finds and reads orders, personal data masked; notes
    ADMIN = "admin"  # everything, plus keys, accounts, erasure and the audit log


class Permission(StrEnum):
    ORDERS_CREATE = "orders.create"
    ORDERS_READ = "orders.read"
    ORDERS_SEARCH = "orders.search"
    ORDERS_ACT = "orders.act"
    ORDERS_NOTE = "orders.note"
    PERSONAL_DATA = "personal_data.read"
    ADMINISTER = "administer"


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.ORDERS_CREATE: frozenset({Role.SERVICE, Role.ADMIN}),
    Permission.ORDERS_READ: frozenset({Role.SERVICE, Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_SEARCH: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_ACT: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.ORDERS_NOTE: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.PERSONAL_DATA: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.ADMINISTER: frozenset({Role.ADMIN}),
}

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Principal:
    actor: str  # "key:<name>" or "staff:<username>"
    role: Role
    ip: str | None

    def may(self, permission: Permission) -> bool:
        return self.role in GRANTS[permission]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_api_key(session: AsyncSession, *, name: str, role: Role) -> str:
    """Create a key; the only time its clear text exists is this return value."""
    key = f"of_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(name=name, role=role.value, key_hash=_digest(key), prefix=key[:10]))
    await session.commit()
    return key


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return secrets.compare_digest(candidate.hex(), digest)


async def open_staff_session(session: AsyncSession, *, username: str, password: str) -> str | None:
    account = (
        await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    ).first()
    if (
        account is None
        or account.disabled_at is not None
        or not password_matches(password, account.password_hash)
    ):
        return None
    token = f"ofs_{secrets.token_urlsafe(32)}"
    expires = datetime.now(UTC) + SESSION_LIFETIME
    session.add(StaffSession(token_hash=_digest(token), account_id=account.id, expires_at=expires))
    await session.commit()
    return token


async def principal_for(session: AsyncSession, token: str, ip: str | None) -> Principal | None:
    digest = _digest(token)
    key = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if key is not None:
        return (
            None if key.revoked_at is not None else Principal(f"key:{key.name}", Role(key.role), ip)
        )
    staff = await session.get(StaffSession, digest)
    if staff is None or staff.expires_at < datetime.now(UTC):
        return None
    account = await session.get(StaffAccount, staff.account_id)
    if account is None or account.disabled_at is not None:
        return None
    return Principal(f"staff:{account.username}", Role(account.role), ip)


BEARER = HTTPBearer(
    auto_error=False, description="An API key, or a staff session token from POST /v1/sessions"
)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    token = credentials.credentials if credentials else ""
    if not token:
        raise HTTPException(
            401,
            "missing credentials: send 'Authorization: Bearer <API key or session token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with open_session(request.app.state.engine) as session:
        principal = await principal_for(
            session, token.strip(), request.client.host if request.client else None
        )
    if principal is None:
        raise HTTPException(
            401, "unknown, revoked or expired credentials", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(permission: Permission) -> Any:
    """A dependency: the caller, if their role grants `permission`; else 401 or 403 with the reason."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.may(permission):
            allowed = " or ".join(sorted(role.value for role in GRANTS[permission]))
            raise HTTPException(
                403, f"role {principal.role.value} may not {permission.value} (needs {allowed})"
            )
        return principal

    return Depends(check)


async def audit(
    session: AsyncSession, principal: Principal, action: str, target: str, **detail: Any
) -> None:
    """Append one audit row (committed with the caller's transaction)."""
    session.add(
        AuditEntry(
            actor=principal.actor,
            role=principal.role.value,
            action=action,
            target=target,
            ip=principal.ip,
            detail=detail,
        )
    )
