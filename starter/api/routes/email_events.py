"""The ESP's event webhook: Mailgun's signed events about our e-mails (hard bounces,
complaints, deliveries), checked and recorded by starter/services/email_events.py.

Heard only when the shop sends through Mailgun (ORDERFLOW_EMAIL_PROVIDER=mailgun), else 404.
Mailgun takes 200 as done and 406 as refused for good; it sends anything else again for 8
hours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from schema.api.email_events import EmailEventAck, MailgunEvent
from schema.api.orders import ErrorBody
from settings import get_settings
from starter.api.deps import AppSettings, Session
from starter.api.errors import responses
from starter.api.limits import limiter
from starter.services.email_events import receive_mailgun_event

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    **responses(401, 404, 422, 429),
    406: {
        "model": ErrorBody,
        "description": "Signed, but about no e-mail of ours, or not about the address it went "
        "to: refused, and Mailgun does not send it again",
    },
}


@router.post(
    "/mailgun",
    response_model=EmailEventAck,
    responses=_ANSWERS,
    summary="Mailgun's events about our e-mails: a hard bounce moves the customer's next "
    "messages to the phone, a complaint stops the feedback request by e-mail",
)
@limiter.limit(lambda: get_settings().webhook_rate_limit)
async def mailgun(
    request: Request, event: MailgunEvent, db: Session, settings: AppSettings
) -> EmailEventAck:
    """`signature` {timestamp, token, signature}: HMAC-SHA256 of timestamp + token with
    ORDERFLOW_MAILGUN_WEBHOOK_SIGNING_KEY, at most 9 hours old (Mailgun retries for 8), its token
    never seen before (a replay is answered `duplicate` and changes nothing); `event-data`:
    the event, matched to our e-mail by `message.headers.message-id`."""
    if settings.email_provider != "mailgun":
        raise HTTPException(404, "this shop hears no events from Mailgun")
    outcome = await receive_mailgun_event(db, settings=settings, event=event)
    return EmailEventAck(outcome=outcome)
