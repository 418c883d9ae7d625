"""Who is calling, what their role allows, and the audit log of what they did.

Callers present a token: an API key (services, scripts) or a staff session token (people,
from signing in). Only hashes are stored. The API turns an unknown caller into 401 and a
role that may not into 403 (starter/api/deps.py); the console into its sign-in page.

Passwords are hashed with argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane), in a
thread so that the event loop keeps serving; hashes of older parameters (and the scrypt
N=2^14 hashes from before) still verify and are replaced at the next sign-in. Sign-in does
the same work for an unknown username as for a known one, and failed attempts are counted
per account and per client address: past the limit, 429 until the window ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem
from limits.aio.strategies import RateLimiter
from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.fields import Role
from schema.tables import ApiKey, AuditEntry, StaffAccount, StaffSession, WebhookSubscription

__all__ = ["GRANTS", "Permission", "Principal", "Role", "audit"]


class Permission(StrEnum):
    ORDERS_CREATE = "orders.create"
    ORDERS_READ = "orders.read"
    ORDERS_SEARCH = "orders.search"
    ORDERS_ACT = "orders.act"
    ORDERS_NOTE = "orders.note"
    PERSONAL_DATA = "personal_data.read"
    REPORTS_READ = "reports.read"
    EVENTS_SUBSCRIBE = "events.subscribe"  # order events to the shop's backend
    ADMINISTER = "administer"


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.ORDERS_CREATE: frozenset({Role.SERVICE, Role.ADMIN}),
    Permission.ORDERS_READ: frozenset({Role.SERVICE, Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_SEARCH: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.ORDERS_ACT: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.ORDERS_NOTE: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.PERSONAL_DATA: frozenset({Role.OPERATOR, Role.ADMIN}),
    Permission.REPORTS_READ: frozenset({Role.OPERATOR, Role.SUPPORT, Role.ADMIN}),
    Permission.EVENTS_SUBSCRIBE: frozenset({Role.SERVICE, Role.ADMIN}),
    Permission.ADMINISTER: frozenset({Role.ADMIN}),
}

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Principal:
    actor: str  # "key:<name>" or "staff:<username>"
    role: Role
    ip: str | None
    key_id: uuid.UUID | None = None  # the API key's id: a service sees the orders it created
    session: str | None = None  # the staff session's token hash: signing out revokes it

    def may(self, permission: Permission) -> bool:
        return self.role in GRANTS[permission]

    @classmethod
    def customer(cls, ip: str | None) -> Principal:
        """The customer acting through a signed link (no account): audited as `customer`."""
        return cls("customer", Role.SERVICE, ip)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_api_key(
    session: AsyncSession, *, name: str, role: Role, caller: Principal | None = None
) -> str:
    """Create a key (audited when an admin asks); the only time its clear text exists is
    this return value."""
    key = f"of_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, role=role.value, key_hash=_digest(key), prefix=key[:10])
    session.add(row)
    if caller is not None:
        await audit(session, caller, "key.issue", str(row.id), name=name, role=role.value)
    await session.commit()
    return key


# OWASP's Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
PASSWORDS = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def _scrypt_matches(password: str, stored: str) -> bool:
    """The hashes stored before argon2id: `scrypt$<salt>$<digest>`, N=2^14, r=8, p=1."""
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return secrets.compare_digest(candidate.hex(), digest)


def password_check(password: str, stored: str) -> tuple[bool, str | None]:
    """Whether `password` matches `stored`, and the hash to store instead when it is outdated."""
    if stored.startswith("scrypt$"):
        matches = _scrypt_matches(password, stored)
        return matches, hash_password(password) if matches else None
    try:
        PASSWORDS.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, hash_password(password) if PASSWORDS.check_needs_rehash(stored) else None


# Checked against when the username is unknown: the same work as for a real account.
_NOBODYS_HASH = hash_password(secrets.token_urlsafe(16))


class WrongCredentials(Exception):  # 401
    def __init__(self) -> None:
        super().__init__("wrong username or password")


class SignInLocked(Exception):  # 429
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins: try again in {retry_after} s (or ask an admin)"
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInLimits:
    """Failed sign-ins allowed per account and per client address in a window; the counters
    live where `limiter` keeps them (Postgres: shared by every API process)."""

    limiter: RateLimiter
    per_account: RateLimitItem
    per_ip: RateLimitItem

    def _counted(self, username: str, ip: str | None) -> list[tuple[RateLimitItem, str]]:
        return [
            (self.per_account, f"account:{username.lower()}"),
            (self.per_ip, f"ip:{ip or 'unknown'}"),
        ]

    async def refuse_if_locked(self, username: str, ip: str | None) -> None:
        for item, who in self._counted(username, ip):
            if not await self.limiter.test(item, "sign-in", who):
                stats = await self.limiter.get_window_stats(item, "sign-in", who)
                raise SignInLocked(max(1, int(stats.reset_time - time.time()) + 1))

    async def failed(self, username: str, ip: str | None) -> None:
        for item, who in self._counted(username, ip):
            await self.limiter.hit(item, "sign-in", who)

    async def succeeded(self, username: str) -> None:
        await self.limiter.clear(self.per_account, "sign-in", f"account:{username.lower()}")


async def open_staff_session(
    session: AsyncSession, *, limits: SignInLimits, username: str, password: str, ip: str | None
) -> str:
    """A new session token; WrongCredentials (401) or SignInLocked (429) otherwise. Every
    attempt is audited (`session.open`, or `session.refused` with why), with the client's
    address."""
    account = (
        await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    ).first()
    try:
        await limits.refuse_if_locked(username, ip)
    except SignInLocked:
        await _sign_in_audited(session, account, username, ip, refused="locked")
        raise
    stored = account.password_hash if account is not None else _NOBODYS_HASH
    matches, rehashed = await asyncio.to_thread(password_check, password, stored)
    if account is None or account.disabled_at is not None or not matches:
        await limits.failed(username, ip)
        why = "unknown" if account is None else "disabled" if account.disabled_at else "password"
        await _sign_in_audited(session, account, username, ip, refused=why)
        raise WrongCredentials
    await limits.succeeded(username)
    await _sign_in_audited(session, account, username, ip)
    if rehashed is not None:
        account.password_hash = rehashed
        session.add(account)
    token = f"ofs_{secrets.token_urlsafe(32)}"
    expires = datetime.now(UTC) + SESSION_LIFETIME
    session.add(StaffSession(token_hash=_digest(token), account_id=account.id, expires_at=expires))
    await session.commit()
    return token


async def _sign_in_audited(
    session: AsyncSession,
    account: StaffAccount | None,
    username: str,
    ip: str | None,
    refused: str | None = None,
) -> None:
    """One audit row per sign-in: the account's (or, for a name no account has, `unknown`),
    committed with the session it opens, or at once when refused."""
    role = account.role if account is not None else ""
    session.add(
        AuditEntry(
            actor=f"staff:{username}" if account is not None else "unknown",
            role=role,
            action="session.refused" if refused else "session.open",
            target=username[:64],
            ip=ip,
            detail={"why": refused} if refused else {},
        )
    )
    if refused:
        await session.commit()


async def close_staff_session(session: AsyncSession, *, caller: Principal) -> bool:
    """Sign out: the caller's session stops working now. False when the caller used an API key."""
    if caller.session is None:
        return False
    await session.execute(
        delete(StaffSession).where(col(StaffSession.token_hash) == caller.session)
    )
    await audit(session, caller, "session.close", caller.actor.removeprefix("staff:"))
    await session.commit()
    return True


async def principal_for(session: AsyncSession, token: str, ip: str | None) -> Principal | None:
    digest = _digest(token)
    key = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if key is not None:
        if key.revoked_at is not None:
            return None
        return Principal(f"key:{key.name}", Role(key.role), ip, key_id=key.id)
    staff = await session.get(StaffSession, digest)
    if staff is None or staff.expires_at < datetime.now(UTC):
        return None
    account = await session.get(StaffAccount, staff.account_id)
    if account is None or account.disabled_at is not None:
        return None
    return Principal(f"staff:{account.username}", Role(account.role), ip, session=digest)


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


class UsernameTaken(Exception):  # 409
    pass


class LockingOneselfOut(Exception):  # 409
    """An admin may not revoke the key it calls with, nor disable its own account: another
    admin does that, so that no one locks the last door by mistake."""


class AccountNotFound(Exception):  # 404
    def __init__(self, username: str) -> None:
        super().__init__(f"no staff account {username}")


async def create_account(
    session: AsyncSession, *, caller: Principal, username: str, password: str, role: Role
) -> None:
    taken = await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    if taken.first() is not None:
        raise UsernameTaken(f"username {username} is taken")
    password_hash = await asyncio.to_thread(hash_password, password)
    session.add(StaffAccount(username=username, password_hash=password_hash, role=role.value))
    await audit(session, caller, "account.create", username, role=role.value)
    await session.commit()


@dataclass(frozen=True)
class AccountView:
    username: str
    role: Role
    disabled: bool
    sessions: int  # open (unexpired) sessions
    created_at: datetime | None


async def list_accounts(session: AsyncSession) -> list[AccountView]:
    open_sessions = (
        select(func.count())
        .where(
            col(StaffSession.account_id) == col(StaffAccount.id),
            col(StaffSession.expires_at) > func.now(),
        )
        .scalar_subquery()
    )
    rows = (
        await session.exec(select(StaffAccount, open_sessions).order_by(col(StaffAccount.username)))
    ).all()
    return [
        AccountView(a.username, Role(a.role), a.disabled_at is not None, count, a.created_at)
        for a, count in rows
    ]


async def _account(session: AsyncSession, username: str) -> StaffAccount:
    account = (
        await session.exec(select(StaffAccount).where(StaffAccount.username == username))
    ).first()
    if account is None:
        raise AccountNotFound(username)
    return account


async def revoke_sessions(session: AsyncSession, *, caller: Principal, username: str) -> int:
    """End every session of the account now; how many there were."""
    account = await _account(session, username)
    ended = len(
        (
            await session.execute(
                delete(StaffSession)
                .where(col(StaffSession.account_id) == account.id)
                .returning(col(StaffSession.token_hash))
            )
        ).all()
    )
    await audit(session, caller, "account.revoke_sessions", username, sessions=ended)
    await session.commit()
    return ended


async def set_account_disabled(
    session: AsyncSession, *, caller: Principal, username: str, disabled: bool
) -> None:
    """Disable (its sessions end at once) or enable an account."""
    account = await _account(session, username)
    if disabled and caller.actor == f"staff:{username}":
        raise LockingOneselfOut("this is your own account; another admin disables it")
    account.disabled_at = (account.disabled_at or datetime.now(UTC)) if disabled else None
    session.add(account)
    if disabled:
        await session.execute(
            delete(StaffSession).where(col(StaffSession.account_id) == account.id)
        )
    await audit(session, caller, "account.disable" if disabled else "account.enable", username)
    await session.commit()


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all())


async def revoke_key(session: AsyncSession, *, caller: Principal, key_id: uuid.UUID) -> bool:
    """False when there is no such key."""
    key = await session.get(ApiKey, key_id)
    if key is None:
        return False
    if key.id == caller.key_id:
        raise LockingOneselfOut("this is the key you are calling with; another admin revokes it")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    session.add(key)
    # Its subscriptions stop with it: no more events (nor pending deliveries) to its receivers.
    await session.execute(
        update(WebhookSubscription)
        .where(col(WebhookSubscription.for_key_id) == key_id)
        .values(active=False)
    )
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
