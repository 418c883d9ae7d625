"""FastAPI dependencies: long-lived clients live on `app.state`, created in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from runtime import connect_temporal
from schema.database import open_session
from settings import Settings


class Temporal:
    """The API's Temporal client, connected lazily: the API starts, and says so, while Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                self._client = await connect_temporal(self._settings)
            return self._client


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with open_session(request.app.state.engine) as session:
        yield session


async def get_temporal(request: Request) -> Client:
    try:
        client: Client = await request.app.state.temporal.client()
    except RuntimeError as exc:
        address = request.app.state.settings.temporal_address
        raise HTTPException(503, f"Temporal is unreachable at {address}: {exc}") from exc
    return client


AppSettings = Annotated[Settings, Depends(get_app_settings)]
Session = Annotated[AsyncSession, Depends(get_session)]
TemporalClient = Annotated[Client, Depends(get_temporal)]
