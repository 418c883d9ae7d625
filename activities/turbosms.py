"""TurboSMS (https://turbosms.ua/en/api.html, ORDERFLOW_SMS_PROVIDER=turbosms): an SMS, or a
Viber message with the SMS as TurboSMS's own fallback, one request each; and what became of
each message, asked of message/status.json by the worker every so often.

TurboSMS answers every well-formed request with HTTP 200 and a `response_code`:

- 800-803: accepted (queued or sent; 802/803 partly: the recipient's own entry says);
  507 FAILED_DUPLICATE_REQUEST: this `sequence_id` was sent before, and its first answer
  comes back. Our outbox key's hash is the `sequence_id`, so a retried activity sends once.
- 404 (stop list for SMS, ignore list for Viber), 305 (a number it cannot place), 406 (a
  country the account may not send to): this channel cannot reach this recipient, and no
  retry changes that; the customer's next channel is tried.
- 500-504, 999: TurboSMS failed on its side; the activity retries.
- anything else (a wrong token 105/301, no credit 203, a sender not registered 400/401, a
  request it refuses): no retry heals it. The step fails for good, an incident asks an
  operator to fix the account, and to retry or skip the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn

import httpx
import structlog
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError

from activities.messages import RenderedMessage, fit_sms
from activities.notifications import Channel, Undeliverable
from activities.providers import Provider, SharedRate
from schema.database import open_session
from schema.pii import mask_phone
from schema.tables import DELIVERY_FINAL, Notification, OrderContact
from schema.vocabulary import ErrorType
from settings import Settings

log = structlog.get_logger(__name__)

ACCEPTED = frozenset({800, 801, 802, 803})
DUPLICATE = 507  # the first answer to this sequence_id, again
UNREACHABLE = frozenset({404, 305, 406})
TRANSIENT = frozenset({500, 501, 503, 504, 999})
STATUS_BATCH = 100  # message_ids asked at once


def sequence_id(key: str) -> str:
    """The request's `sequence_id`: our outbox key's hash (TurboSMS keeps it short)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def recipient_of(phone: str) -> str:
    """TurboSMS's form of a number: E.164 without the plus."""
    return phone.removeprefix("+")


def _word(value: Any) -> str:
    """A status word as TurboSMS sends it, kept to one short line."""
    return " ".join(str(value).split())[:64]


def _refused(code: Any, status: Any) -> NoReturn:
    what = f"TurboSMS answered {_word(code)} {_word(status)}"
    if code in UNREACHABLE:
        raise Undeliverable(what)
    if code in TRANSIENT:
        raise ApplicationError(what, type=ErrorType.PROVIDER_UNAVAILABLE)
    raise ApplicationError(what, type=ErrorType.PROVIDER_REJECTED, non_retryable=True)


def accepted_message_id(answer: dict[str, Any], recipient: str) -> str:
    """The message_id a send.json answer gives `recipient`; otherwise the refusal, named:
    Undeliverable (the next channel), a retryable ProviderUnavailable, or a non-retryable
    ProviderRejected."""
    if not isinstance(answer, dict):
        raise ApplicationError(
            "TurboSMS answered no JSON object", type=ErrorType.PROVIDER_UNAVAILABLE
        )
    code = answer.get("response_code")
    results = answer.get("response_result")
    if code not in ACCEPTED and not (code == DUPLICATE and results):
        _refused(code, answer.get("response_status"))
    for item in results if isinstance(results, list) else []:
        if isinstance(item, dict) and str(item.get("phone")) == recipient:
            if item.get("response_code") == 0 and item.get("message_id"):
                return str(item["message_id"])
            _refused(item.get("response_code"), item.get("response_status"))
    raise ApplicationError(
        f"TurboSMS answered {_word(code)} without a message for the recipient",
        type=ErrorType.PROVIDER_REJECTED,
        non_retryable=True,
    )


@dataclass(frozen=True)
class Delivery:
    """What TurboSMS says became of one message."""

    status: str  # lower-cased: queued, accepted, sent, delivered, read, undelivered, ...
    via: str | None  # "viber" or "sms": how it reached (or is to reach) the phone


def deliveries(answer: dict[str, Any]) -> dict[str, Delivery]:
    """A status.json answer, by message_id."""
    if answer.get("response_code") != 0:
        _refused(answer.get("response_code"), answer.get("response_status"))
    found = {}
    results = answer.get("response_result")
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, dict) or not item.get("message_id"):
            continue
        if item.get("response_code") == 0 and item.get("status"):
            via = item.get("type") if item.get("type") in ("viber", "sms") else None
            status = _word(item["status"]).lower()[:16]  # the outbox keeps 16 characters
            found[str(item["message_id"])] = Delivery(status, via)
        elif item.get("response_code") == 414:  # NOT_ALLOWED_MESSAGE_ID: not ours to know
            found[str(item["message_id"])] = Delivery("unknown", None)
    return found


class TurboSms:
    """TurboSMS's HTTP API, with the shop's token and sender names."""

    @classmethod
    def of(
        cls, settings: Settings, http: httpx.AsyncClient, rate: SharedRate | None = None
    ) -> TurboSms:
        auth = {"Authorization": f"Bearer {settings.turbosms_token}"}
        return cls(Provider("turbosms", http, settings.turbosms_url, rate, auth), settings)

    def __init__(self, api: Provider, settings: Settings) -> None:
        self._api = api
        self._sms_sender = settings.sms_sender
        self._viber_sender = settings.viber_sender
        self._viber_ttl = settings.turbosms_viber_ttl

    async def send(self, *, phone: str, text: str, viber: bool, key: str) -> str:
        """One message to one phone, Viber first when `viber`; its message_id."""
        recipient = recipient_of(phone)
        body: dict[str, Any] = {
            "recipients": [recipient],
            "sequence_id": sequence_id(key),
            "sms": {"sender": self._sms_sender, "text": fit_sms(text)},
        }
        if viber:  # up to 1000 characters: the whole text, never shortened
            body["viber"] = {"sender": self._viber_sender, "text": text, "ttl": self._viber_ttl}
        answer = await self._api.call("POST", "/message/send.json", json=body)
        return accepted_message_id(answer, recipient)

    async def deliveries(self, message_ids: list[str]) -> dict[str, Delivery]:
        answer = await self._api.call(
            "POST", "/message/status.json", json={"messages": message_ids}
        )
        return deliveries(answer)


class TurboSmsChannel(Channel):
    """ "sms": the SMS alone. "viber": Viber first, the SMS as TurboSMS's fallback, in one
    request (both texts are the message's `sms` block)."""

    reports_delivery = True

    def __init__(self, name: Literal["sms", "viber"], turbosms: TurboSms) -> None:
        self.name = name
        self._turbosms = turbosms

    def address(self, contact: OrderContact) -> str | None:
        return contact.phone

    def masked(self, address: str) -> str:
        return mask_phone(address)

    async def send(self, *, address: str, to_name: str, message: RenderedMessage, key: str) -> str:
        return await self._turbosms.send(
            phone=address, text=message.sms, viber=self.name == "viber", key=key
        )


class TurboSmsDeliveries:
    """Every worker process asks TurboSMS, every `turbosms_status_poll_seconds`, what became
    of the messages it accepted within `turbosms_status_window` whose fate is still open,
    and writes it to their outbox rows (`delivery_status`, `delivered_via`: "sms" when Viber
    did not reach the phone and TurboSMS sent the SMS). Rows are claimed with SKIP LOCKED, so
    several workers share the asking. A loop beside the worker, like the shop's events: the
    order's workflow waits for none of it, and its state is the outbox row's."""

    def __init__(self, engine: AsyncEngine, turbosms: TurboSms, settings: Settings) -> None:
        self._engine = engine
        self._turbosms = turbosms
        self._every = timedelta(seconds=settings.turbosms_status_poll_seconds)
        self._window = settings.turbosms_status_window

    async def run(self, stop: asyncio.Event) -> None:
        """Ask until `stop` is set; a failed round (TurboSMS or the database away) is waited
        out, never fatal to the worker."""
        while not stop.is_set():
            try:
                asked = await self.ask_once()
            except Exception as exc:
                log.warning("delivery statuses not asked", error=f"{type(exc).__name__}: {exc}")
                asked = 0
            if asked < STATUS_BATCH:  # a full batch: more are due, ask again at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._every.total_seconds())

    async def ask_once(self) -> int:
        """One round: claim a batch of due rows, ask, record; how many were asked."""
        now = datetime.now(UTC)
        async with open_session(self._engine) as session:
            rows = (
                await session.exec(
                    select(Notification)
                    .where(
                        col(Notification.channel).in_(("sms", "viber")),
                        col(Notification.delivery_status).is_not(None),
                        col(Notification.delivery_status).not_in(DELIVERY_FINAL),
                        col(Notification.sent_at) > now - self._window,
                        or_(
                            col(Notification.delivery_checked_at).is_(None),
                            col(Notification.delivery_checked_at) < now - self._every,
                        ),
                    )
                    .order_by(col(Notification.delivery_checked_at).nulls_first())
                    .limit(STATUS_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            asked = {row.provider_message_id: row.id for row in rows if row.provider_message_id}
            for row in rows:
                row.delivery_checked_at = now
                session.add(row)
            await session.commit()
        if not asked:
            return 0
        found = await self._turbosms.deliveries(list(asked))
        async with open_session(self._engine) as session:
            for message_id, delivery in found.items():
                if message_id in asked:
                    await session.execute(
                        update(Notification)
                        .where(col(Notification.id) == asked[message_id])
                        .values(delivery_status=delivery.status, delivered_via=delivery.via)
                    )
            await session.commit()
        log.info("delivery statuses asked", asked=len(asked), answered=len(found))
        return len(rows)
