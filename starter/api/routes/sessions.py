"""Staff sign-in: a session token for the API (the console keeps it in a cookie)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from schema.api import SessionIn
from starter.api.deps import Session
from starter.api.errors import responses
from starter.services.access import open_staff_session

router = APIRouter(tags=["auth"])


@router.post(
    "/v1/sessions",
    responses=responses(401, 422),
    summary="Sign in: a session token for a staff account",
)
async def sign_in(body: SessionIn, db: Session) -> dict[str, str]:
    token = await open_staff_session(db, username=body.username, password=body.password)
    if token is None:
        raise HTTPException(401, "wrong username or password")
    return {"token": token, "token_type": "bearer"}
