"""Intake connectors (admins): the shop platforms orders arrive from. Credentials are
write-only: an answer says which are set and how they are kept, never their values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from schema.api.connectors import ConnectorIn, ConnectorOut, ConnectorPatch
from starter.api.deps import Admin, AppSettings, Session
from starter.api.errors import responses
from starter.services import connectors
from starter.services.connectors import find_connector, view

router = APIRouter(prefix="/v1/admin/connectors", tags=["intake"])
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


@router.post(
    "",
    status_code=201,
    response_model=ConnectorOut,
    responses=responses(409, 422),
    summary="Add an intake connector (409: the name is taken)",
)
async def create(
    body: ConnectorIn, db: Session, caller: Admin, settings: AppSettings
) -> ConnectorOut:
    return await connectors.create_connector(db, caller=caller, body=body, settings=settings)


@router.get("", response_model=list[ConnectorOut], summary="Every intake connector")
async def list_all(db: Session, caller: Admin) -> list[ConnectorOut]:
    return await connectors.list_connectors(db)


@router.get(
    "/{name}", response_model=ConnectorOut, responses=responses(404), summary="One connector"
)
async def get_one(name: Name, db: Session, caller: Admin) -> ConnectorOut:
    return view(await find_connector(db, name=name))


@router.patch(
    "/{name}",
    response_model=ConnectorOut,
    responses=responses(404, 422),
    summary="Change the settings, replace credentials, enable or disable",
)
async def update(
    name: Name, body: ConnectorPatch, db: Session, caller: Admin, settings: AppSettings
) -> ConnectorOut:
    return await connectors.update_connector(
        db, caller=caller, name=name, body=body, settings=settings
    )


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    responses=responses(404, 409),
    summary="Delete a connector with its deliveries and intake failures (409 once orders "
    "came through it: disable it instead)",
)
async def delete(name: Name, db: Session, caller: Admin) -> Response:
    await connectors.delete_connector(db, caller=caller, name=name)
    return Response(status_code=204)
