"""Mailgun's event webhook as it reaches the shop (devstack/fixtures/mailgun: the shapes):
POST /mailgun/sim/events makes Mailgun report on one of our e-mails — a hard bounce, a soft
one, a complaint or a delivery — signed with the webhook signing key, to orderflow's
/v1/webhooks/mailgun. The e-mail is named by its Message-ID (the SMTP sink's file shows it;
so does `provider_message_id` in the outbox)."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from devstack.fixtures import fixture
from devstack.simulators.state import log, sim_of
from schema.mailgun import signature

mailgun = APIRouter(prefix="/mailgun", tags=["mailgun"])

FIXTURES = {
    "bounce": "failed_permanent",
    "soft_bounce": "failed_temporary",
    "complaint": "complained",
    "delivery": "delivered",
}


class Report(BaseModel):
    kind: Literal["bounce", "soft_bounce", "complaint", "delivery"]
    message_id: str = Field(min_length=3, description="The e-mail's Message-ID (<...@...>)")
    recipient: str = Field(min_length=3, description="The address it was sent to")


def mailgun_event(key: str, report: Report) -> dict[str, Any]:
    """The fixture's event about this e-mail, signed now with a fresh token."""
    body: dict[str, Any] = fixture("mailgun", FIXTURES[report.kind])["body"]
    data = body["event-data"]
    now = time.time()
    data["id"], data["timestamp"] = uuid.uuid4().hex[:22], now
    data["recipient"] = report.recipient
    data["recipient-domain"] = report.recipient.rpartition("@")[2]
    headers = data["message"]["headers"]
    headers["to"], headers["message-id"] = report.recipient, report.message_id.strip("<>")
    timestamp, token = str(int(now)), secrets.token_hex(25)
    body["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": signature(key, timestamp, token),
    }
    return body


@mailgun.post("/sim/events")
async def report(request: Request, report: Report) -> dict[str, Any]:
    """Mailgun reports on an e-mail to orderflow; what it sent, and orderflow's answer."""
    sim = sim_of(request)
    body = mailgun_event(sim.settings.mailgun_webhook_signing_key, report)
    response = await sim.http.post(f"{sim.settings.public_url}/v1/webhooks/mailgun", json=body)
    log.info("mailgun event", kind=report.kind, status=response.status_code)
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    return {"status": response.status_code, "answer": answer, "sent": body}
