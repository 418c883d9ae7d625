"""Meest's tracking (`trackingParcel`, Meest Polska's B2B API) at `/meest/`, built from the
fixture devstack/fixtures/meest/ (the adapter's contract test reads the same). Tracking only,
as orderflow's Meest adapter: parcels are registered and moved by hand (`/meest/sim/…`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request

from devstack.fixtures import answer
from devstack.simulators.state import keep, sim_of

meest = APIRouter(prefix="/meest", tags=["meest"])
KYIV = ZoneInfo("Europe/Kyiv")
SID = "dev-meest-sid"  # the devstack's partner key


@dataclass
class MeestState:
    parcels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by idParcel


MEEST = keep("meest", MeestState)
state_of = MEEST.of


@meest.get("/trackingParcel")
async def tracking_parcel(idParcel: str, sid: str, request: Request) -> list[dict[str, Any]]:
    if sid != SID:
        raise HTTPException(401, "sid is not valid")
    statuses = state_of(sim_of(request)).parcels.get(idParcel)
    if not statuses:
        raise HTTPException(404, "parcel not found")
    return statuses


@meest.post("/sim/parcels/{id_parcel}/statuses")
async def add_status(
    id_parcel: str, body: dict[str, Any], request: Request
) -> list[dict[str, Any]]:
    """A status of a parcel, by hand: `{"statusCode": 14, "eventDescription": "…"}`."""
    code = body.get("statusCode")
    if not isinstance(code, int):
        raise HTTPException(422, "statusCode: a number (Meest's status code)")
    statuses = state_of(sim_of(request)).parcels.setdefault(id_parcel, [])
    shape = answer("meest", "tracking_parcel")[-1]
    statuses.append(
        {
            **shape,
            "idParcel": int(id_parcel) if id_parcel.isdigit() else id_parcel,
            "statusCode": code,
            "actionId": code,
            "eventDescription": str(body.get("eventDescription", "")),
            "eventDate": datetime.now(KYIV).isoformat(timespec="seconds"),
        }
    )
    return statuses
