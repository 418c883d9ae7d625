"""FastAPI dependencies: the caller, the database session, the orders' workflows, settings.
Long-lived clients live on `app.state`, created in the app's lifespan. Dependencies that do
no I/O are `async def` all the same: FastAPI runs a plain `def` in a thread pool, a thread
hop on every request for a lookup on `app.state`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.database import open_session
from schema.links import CustomerLinks, LinkPurpose
from settings import Settings
from starter.services.access import GRANTS, Permission, Principal, SignInLimits, principal_for
from starter.services.status_page import OrderListLimits
from starter.services.temporal import OrderWorkflows


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_links(request: Request) -> CustomerLinks:
    links: CustomerLinks = request.app.state.links
    return links


async def get_workflows(request: Request) -> OrderWorkflows:
    workflows: OrderWorkflows = request.app.state.workflows
    return workflows


async def get_order_list_limits(request: Request) -> OrderListLimits:
    limits: OrderListLimits = request.app.state.order_list_limits
    return limits


async def get_sign_in_limits(request: Request) -> SignInLimits:
    limits: SignInLimits = request.app.state.sign_in_limits
    return limits


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with open_session(request.app.state.engine) as session:
        yield session


AppSettings = Annotated[Settings, Depends(get_settings)]
Session = Annotated[AsyncSession, Depends(get_session)]
Workflows = Annotated[OrderWorkflows, Depends(get_workflows)]
Links = Annotated[CustomerLinks, Depends(get_links)]


def linked_order(*purposes: LinkPurpose) -> Any:
    """A dependency: the order a customer's `{token}` opens for one of `purposes` (BadLink:
    404, ExpiredLink: 410, whatever the token's shape)."""

    async def order_of(token: Annotated[str, Path(max_length=200)], links: Links) -> uuid.UUID:
        return links.order_of(purposes, token)

    return Depends(order_of)


SignInGuard = Annotated[SignInLimits, Depends(get_sign_in_limits)]
OrderListGuard = Annotated[OrderListLimits, Depends(get_order_list_limits)]

BEARER = HTTPBearer(
    auto_error=False, description="An API key, or a staff session token from POST /v1/sessions"
)


def same_origin(request: Request) -> bool:
    """Whether a browser's form POST comes from our own pages: its Origin, else (a browser
    that sends none) its Referer's origin, is the public URL's or the one this request was
    sent to. Neither header, or `Origin: null`: refused. One rule for the console's forms and
    the customer's (a browser sends Origin on every POST; our pages send a same-origin
    Referer besides)."""
    sent_from = request.headers.get("origin")
    if sent_from is None:
        sent_from = _origin(request.headers.get("referer", ""))
    ours = {_origin(request.app.state.settings.public_url), _origin(str(request.base_url))}
    return sent_from in ours


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
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

    # The permission is named as the bearer requirement's role in the OpenAPI (3.1 allows it).
    async def check(
        principal: Principal = Security(authenticate, scopes=[permission.value]),
    ) -> Principal:
        if not principal.may(permission):
            allowed = " or ".join(sorted(role.value for role in GRANTS[permission]))
            raise HTTPException(
                403, f"role {principal.role.value} may not {permission.value} (needs {allowed})"
            )
        return principal

    return Depends(check)


# The callers each route admits, by what they may do.
Anyone = Annotated[Principal, Depends(authenticate)]
Creator = Annotated[Principal, require(Permission.ORDERS_CREATE)]
Reader = Annotated[Principal, require(Permission.ORDERS_READ)]
Searcher = Annotated[Principal, require(Permission.ORDERS_SEARCH)]
Operator = Annotated[Principal, require(Permission.ORDERS_ACT)]
NoteTaker = Annotated[Principal, require(Permission.ORDERS_NOTE)]
PersonalData = Annotated[Principal, require(Permission.PERSONAL_DATA)]
ReportReader = Annotated[Principal, require(Permission.REPORTS_READ)]
Subscriber = Annotated[Principal, require(Permission.EVENTS_SUBSCRIBE)]
Admin = Annotated[Principal, require(Permission.ADMINISTER)]
