"""FastAPI dependencies: the caller, the database session, the orders' workflows, settings.
Long-lived clients live on `app.state`, created in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.database import open_session
from settings import Settings
from starter.services.access import GRANTS, Permission, Principal, principal_for
from starter.services.temporal import OrderWorkflows


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_workflows(request: Request) -> OrderWorkflows:
    workflows: OrderWorkflows = request.app.state.workflows
    return workflows


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with open_session(request.app.state.engine) as session:
        yield session


AppSettings = Annotated[Settings, Depends(get_settings)]
Session = Annotated[AsyncSession, Depends(get_session)]
Workflows = Annotated[OrderWorkflows, Depends(get_workflows)]

BEARER = HTTPBearer(
    auto_error=False, description="An API key, or a staff session token from POST /v1/sessions"
)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


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
        principal = await principal_for(session, token.strip(), client_ip(request))
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


# The callers each route admits, by what they may do.
Creator = Annotated[Principal, require(Permission.ORDERS_CREATE)]
Reader = Annotated[Principal, require(Permission.ORDERS_READ)]
Searcher = Annotated[Principal, require(Permission.ORDERS_SEARCH)]
Operator = Annotated[Principal, require(Permission.ORDERS_ACT)]
NoteTaker = Annotated[Principal, require(Permission.ORDERS_NOTE)]
PersonalData = Annotated[Principal, require(Permission.PERSONAL_DATA)]
ReportReader = Annotated[Principal, require(Permission.REPORTS_READ)]
Admin = Annotated[Principal, require(Permission.ADMINISTER)]
