"""Staff sign-in and sign-out: a session token for the API (the console keeps it in a cookie)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from schema.api.admin import SessionIn, SessionOut
from starter.api.deps import Anyone, Session, SignInGuard, client_ip
from starter.api.errors import responses
from starter.services.access import close_staff_session, open_staff_session

router = APIRouter(tags=["auth"])


@router.post(
    "/v1/sessions",
    response_model=SessionOut,
    responses=responses(401, 422, 429),
    summary="Sign in: a session token for a staff account",
    description="Failed sign-ins are counted per account and per client address; past the "
    "limit the answer is 429 with Retry-After until the window ends.",
)
async def sign_in(
    body: SessionIn, request: Request, db: Session, limits: SignInGuard
) -> SessionOut:
    token = await open_staff_session(
        db, limits=limits, username=body.username, password=body.password, ip=client_ip(request)
    )
    return SessionOut(token=token)


@router.delete(
    "/v1/sessions/current",
    status_code=204,
    response_class=Response,
    responses=responses(401, 409),
    summary="Sign out: the session token stops working now",
)
async def sign_out(db: Session, caller: Anyone) -> Response:
    if not await close_staff_session(db, caller=caller):
        raise HTTPException(
            409, "this credential is an API key, not a session; an admin revokes keys"
        )
    return Response(status_code=204)
