"""What the ESP reported of a customer's e-mail address, as the choice of channels reads it
(its events are recorded by starter/services/email_events.py, a row of `email_suppressions`
per customer identity):

- a hard bounce: no e-mail goes there any more; the customer's phone takes e-mail's place
  (Viber with the SMS as its fallback through TurboSMS, else the SMS);
- a spam complaint: the messages that ask rather than tell (the feedback request and its
  reminder) no longer go by e-mail; every other message still does.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from schema.contracts import MessageKind
from schema.tables import EmailSuppression

MARKETING_KINDS = frozenset({MessageKind.FEEDBACK_REQUEST, MessageKind.FEEDBACK_REMINDER})
PHONE_CHANNELS = ("viber", "sms")  # in this order; a channel the worker lacks is passed over


class EmailRefusal(StrEnum):
    """Why a message does not go to the customer's e-mail (the outbox row's `last_error`)."""

    BOUNCED = "the address bounced for good (the ESP's report): no e-mail goes there"
    COMPLAINED = "the recipient reported an e-mail as spam: no feedback request by e-mail"


async def email_refusal(
    session: AsyncSession, customer_id: uuid.UUID, kind: MessageKind
) -> EmailRefusal | None:
    suppression = await session.get(EmailSuppression, customer_id)
    if suppression is None:
        return None
    if suppression.bounced_at is not None:
        return EmailRefusal.BOUNCED
    if suppression.complained_at is not None and kind in MARKETING_KINDS:
        return EmailRefusal.COMPLAINED
    return None


def channels_for(preferred: list[str], refusal: EmailRefusal | None) -> list[str]:
    """The customer's channels in their order, without e-mail when it is refused (the phone
    in its place after a hard bounce)."""
    if refusal is None:
        return preferred
    others = [channel for channel in preferred if channel != "email"]
    return [*others, *PHONE_CHANNELS] if refusal == EmailRefusal.BOUNCED else others
