"""FastAPI dependencies: long-lived clients live on `app.state`, created in the lifespan."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from runtime import connect_temporal
from schema.contracts import OrderStatus, workflow_id_for
from schema.database import open_session
from settings import Settings

log = structlog.get_logger(__name__)


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

    async def order_status(self, order_id: uuid.UUID) -> OrderStatus | None:
        """The workflow's `status` query; None (logged) when Temporal cannot answer now."""
        try:
            client = await self.client()
            handle = client.get_workflow_handle(workflow_id_for(str(order_id)))
            status: OrderStatus = await handle.query("status", result_type=OrderStatus)
        except (RPCError, RuntimeError) as exc:
            log.warning("live status unavailable", order_id=str(order_id), error=str(exc))
            return None
        return status


def get_temporal_gateway(request: Request) -> Temporal:
    temporal: Temporal = request.app.state.temporal
    return temporal


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
TemporalGateway = Annotated[Temporal, Depends(get_temporal_gateway)]
