"""Who is calling, what their role allows, and the audit log of what they did.

Callers present a token: an API key (services, scripts) or a staff session token (people,
from signing in). Only hashes are stored. The API turns an unknown caller into 401 and a
role that may not into 403 (starter/api/deps.py); the console into its sign-in page.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api import Role
from schema.tables import ApiKey, AuditEntry, StaffAccount, StaffSession

__all__ = ["GRANTS", "Permission", "Principal", "Role", "audit"]


class Permission(StrEnum):
    ORDERS_CREATE = "orders.create"
    ORDERS_READ = "orders.read"
    ORDERS_SEARCH = "orders.search"
    ORDERS_ACT = "orders.act"
    ORDERS_NOTE = "orders.note"
    PERSONAL_DATA = "personal_data.read"
    REPORTS_READ = "reports.read"
    ADMINISTER = "administer"


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.ORDERS_CREATE: frozenset({Role.SERVICE, Role.ADMIN}),
    Permission.ORDERS_READ: frozenset({Role.SERVICE, Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_SEARCH: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_ACT: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.ORDERS_NOTE: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.PERSONAL_DATA: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.REPORTS_READ: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
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


class UsernameTaken(Exception):
    pass


async def create_account(
    session: AsyncSession, *, caller: Principal, username: str, password: str, role: Role
) -> None:
    taken = await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    if taken.first() is not None:
        raise UsernameTaken(f"username {username} is taken")
    session.add(
        StaffAccount(username=username, password_hash=hash_password(password), role=role.value)
    )
    await audit(session, caller, "account.create", username, role=role.value)
    await session.commit()


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all())


async def revoke_key(session: AsyncSession, *, caller: Principal, key_id: uuid.UUID) -> bool:
    """False when there is no such key."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        return False
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    session.add(key)
    await audit(session, caller, "key.revoke", str(key_id))
    await session.commit()
    return True


async def audit_entries(
    session: AsyncSession, *, target: str | None, actor: str | None, limit: int
) -> list[AuditEntry]:
    """The audit log, newest first."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if target:
        query = query.where(AuditEntry.target == target)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    return list((await session.exec(query)).all())
