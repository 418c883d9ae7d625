"""The ESP's events about our e-mails (Mailgun, ORDERFLOW_EMAIL_PROVIDER=mailgun), believed
only when checked, each taken once:

1. the signature: HMAC-SHA256 of its timestamp and token with the webhook signing key, no
   older than 9 hours, the length of Mailgun's retries (else 401, nothing recorded);
2. the token: kept in `email_events`, so the same event again (or its signature on other
   data) changes nothing;
3. the message: one we sent by e-mail, found by the Message-ID we gave it (Mailgun echoes
   it), and the event's recipient the address it went to; else 406, which Mailgun does not
   send again.

Then a hard bounce (`failed` with `severity: permanent`) marks the customer's address
undeliverable and a complaint marks it "no marketing" (`email_suppressions`, read by the
choice of channels: activities/suppressions.py); either, and a delivery, is written on the
message's outbox row (`delivery_status`). A manager's e-mail is only written on its row."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.api.email_events import MailgunEvent, MailgunEventData, Outcome
from schema.mailgun import verify
from schema.tables import EmailEvent, EmailSuppression, Notification, Order, OrderContact
from settings import Settings

log = structlog.get_logger(__name__)


class EmailEventRefused(Exception):
    """A signed event about no e-mail of ours, or not about the address it went to (406)."""


def what_changes(data: MailgunEventData) -> str | None:
    """What the event says of the message: bounced, complained, delivered; None: nothing
    (a temporary failure Mailgun retries by itself, an opening, a click, ...)."""
    if data.event == "failed" and data.severity == "permanent":
        return "bounced"
    if data.event in ("complained", "delivered"):
        return data.event
    return None


async def receive_mailgun_event(
    session: AsyncSession, *, settings: Settings, event: MailgunEvent
) -> Outcome:
    """Verify, record once and act on one event: "recorded", "ignored" or "duplicate".
    Raises BadSignature (401) or EmailEventRefused (406)."""
    signed, data = event.signature, event.event_data
    verify(
        settings.mailgun_webhook_signing_key, str(signed.timestamp), signed.token, signed.signature
    )
    taken = await session.execute(
        insert(EmailEvent)
        .values(provider="mailgun", token=signed.token, event=data.event)
        .on_conflict_do_nothing(index_elements=["provider", "token"])
        .returning(col(EmailEvent.id))
    )
    event_id = taken.scalar_one_or_none()
    if event_id is None:
        await session.rollback()
        return "duplicate"
    message_id = f"<{data.message.headers.message_id.strip().strip('<>')}>"
    message = (
        await session.exec(
            select(Notification).where(
                Notification.provider_message_id == message_id, Notification.channel == "email"
            )
        )
    ).first()
    if message is None:
        await session.commit()  # the token is spent all the same
        raise EmailEventRefused(f"no e-mail of ours has the Message-ID {message_id}")
    managers = message.kind.startswith("manager_")
    if managers:
        address: str | None = settings.manager_email
    else:
        contact = await session.get(OrderContact, message.order_id)
        address = contact.email if contact is not None else None
    if address is None or address.lower() != data.recipient.strip().lower():
        await session.commit()
        raise EmailEventRefused(
            "the event's recipient is not the address that e-mail went to (or it was erased)"
        )
    await session.execute(
        update(EmailEvent).where(col(EmailEvent.id) == event_id).values(notification_id=message.id)
    )
    change = what_changes(data)
    if change is None:
        await session.commit()
        return "ignored"
    if change != "delivered" or message.delivery_status is None:  # never undoes a bounce
        message.delivery_status = change
        session.add(message)
    if change != "delivered" and not managers:
        order = await session.get(Order, message.order_id)
        assert order is not None  # a notification's order (foreign key)
        column = "bounced_at" if change == "bounced" else "complained_at"
        now = datetime.now(UTC)
        marked = insert(EmailSuppression).values(customer_id=order.customer_id, **{column: now})
        await session.execute(
            marked.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={column: func.coalesce(getattr(EmailSuppression, column), now)},
            )
        )
    await session.commit()
    log.info(
        "email event recorded",
        reported=change,
        kind=message.kind,
        order_id=str(message.order_id),
    )
    return "recorded"
