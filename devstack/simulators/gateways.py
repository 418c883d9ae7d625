"""SMS and push gateways: they store and list what they accept, and can be told to fail
for a while."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request

from activities.messages import sms_segments
from devstack.simulators.state import (
    once,
    sim_of,
)

# --- SMS and push gateways --------------------------------------------------------------


def _gateway(name: str, address_field: str, refuse: Any) -> APIRouter:
    """A message gateway: stores what it accepts; `/sim/fail` makes it answer 5xx for a while."""
    router = APIRouter(prefix=f"/{name}", tags=[name])

    @router.post("/v1/messages", status_code=201)
    async def send(
        body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
    ) -> dict[str, Any]:
        sim = sim_of(request)
        sim.books.attempts[name] += 1
        sim.books.arrivals[name].append(time.time())
        if sim.books.failing[name] > 0:
            sim.books.failing[name] -= 1
            raise HTTPException(503, f"{name} gateway is overloaded, try later")
        reason = refuse(body.get(address_field, ""))
        if reason:
            raise HTTPException(422 if name == "sms" else 410, reason)

        def make() -> dict[str, Any]:
            message = {
                "message_id": f"{name}_{uuid.uuid4().hex[:12]}",
                **body,
                "key": idempotency_key,
            }
            if name == "sms":
                message["segments"] = sms_segments(body.get("text", ""))
            sim.books.messages[name].append(message)
            return message

        result: dict[str, Any] = once(sim, f"{name}:{idempotency_key}", make)
        return result

    @router.get("/v1/messages")
    async def messages(request: Request) -> list[dict[str, Any]]:
        return sim_of(request).books.messages[name]

    @router.post("/sim/fail")
    async def fail(request: Request, count: int = 3) -> dict[str, Any]:
        """Answer 503 to the next `count` sends, then recover."""
        sim_of(request).books.failing[name] = count
        return {"failing": count}

    @router.get("/sim/attempts")
    async def attempts(request: Request) -> dict[str, Any]:
        """Every request the gateway received: how many, and when (Unix seconds)."""
        sim = sim_of(request)
        return {"attempts": sim.books.attempts[name], "at": sim.books.arrivals[name]}

    return router


sms = _gateway("sms", "to", lambda to: "" if str(to).startswith("+") else "not an E.164 number")
push = _gateway(
    "push", "token", lambda token: "token expired" if str(token).startswith("expired") else ""
)
