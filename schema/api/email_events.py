"""The ESP's event webhook as it reaches us: Mailgun's body (`signature` and `event-data`,
documentation.mailgun.com: Webhook Payloads, Securing Webhooks), and our answer. Only the
fields orderflow reads are described; Mailgun sends many more, and adds new ones."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MailgunSignature(_Open):
    timestamp: int = Field(ge=0, le=10**11, description="Unix seconds (Mailgun sends it as text)")
    token: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9]+$",
        description="Random, 50 characters: used once (a replay of it changes nothing)",
    )
    signature: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="Hex HMAC-SHA256 of timestamp and token (joined with nothing between), "
        "keyed with the webhook signing key",
    )


class MailgunHeaders(_Open):
    message_id: str = Field(
        alias="message-id",
        min_length=1,
        max_length=254,
        description="The Message-ID orderflow gave the e-mail (without angle brackets)",
    )


class MailgunMessage(_Open):
    headers: MailgunHeaders


class MailgunEventData(_Open):
    event: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_-]+$",
        description="`failed` with `severity: permanent` (a hard bounce) and `complained` "
        "change what orderflow sends to the address; `delivered` is recorded on the message; "
        "every other event is taken and changes nothing",
    )
    severity: str | None = Field(default=None, max_length=32)
    recipient: str = Field(min_length=3, max_length=320)
    message: MailgunMessage


class MailgunEvent(_Open):
    """One event of Mailgun's webhook."""

    signature: MailgunSignature
    event_data: MailgunEventData = Field(alias="event-data")


Outcome = Literal["recorded", "ignored", "duplicate"]


class EmailEventAck(BaseModel):
    outcome: Outcome = Field(
        description="recorded: it changed what orderflow knows of the message or the "
        "address; ignored: taken, nothing to change (a temporary failure, an opening, ...); "
        "duplicate: this token came before, nothing changes"
    )
