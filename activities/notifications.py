"""Notifications: sent once per idempotency key, on the customer's channels.

The texts live in activities/messages/ (one template per kind and locale, a block per
channel); this module reads the order's facts, has them rendered, and delivers.

Channels: e-mail over SMTP, SMS through an HTTP gateway, push/messenger through an HTTP
webhook. The customer's preferences order them; a channel that fails permanently (a
refused recipient, an expired push token) falls back to the next, and e-mail is the last
resort. Transient failures raise, and the activity's retry policy tries again. Addresses
are read from the order's own contacts; a provider's error is stored and logged with every
address in it masked. The order of an erased customer is told nothing: its outbox rows say
`recipient_erased`, and nothing retries.

Exactly once per key and channel: the outbox row is written (and locked) before the
provider is called, the provider gets the key, and a retried activity that finds the row
`sent` sends nothing. SMTP has no idempotency key: its Message-ID derives from ours, so
even a crash between the send and the commit shows as one message id.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import aiosmtplib
import structlog
from jinja2 import TemplateError
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.common import MetricCounter
from temporalio.exceptions import ApplicationError

from activities import feedback, metrics
from activities.messages import (
    LOCALES,
    MANAGER_KINDS,
    Line,
    MessageCatalog,
    OrderMessageFacts,
    RecipientFacts,
    RenderedMessage,
    fit_sms,
)
from activities.orders import load_contact, load_order, timezone_of
from activities.providers import Provider
from activities.suppressions import EmailRefusal, channels_for, email_refusal
from schema.contracts import (
    MessageKind,
    NotificationResult,
    NotifyInput,
    OrderListInput,
    SendConfirmationInput,
)
from schema.database import open_session
from schema.links import CustomerLinks, LinkPurpose
from schema.pii import ERASED, ERASED_DOMAIN, mask_addresses, mask_email, mask_phone
from schema.tables import Customer, Notification, Order, OrderContact, OrderLine, Return
from schema.vocabulary import ErrorType
from settings import Settings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _resends() -> MetricCounter:
    return activity.metric_meter().create_counter(
        "orderflow_notification_resends",
        "Messages sent again after an attempt died mid-send (possible e-mail duplicates)",
    )


def _one_line(name: str) -> str:
    """A name fit for a mail header: a stored name with a newline must not break the message."""
    return _CONTROL.sub(" ", name).strip()


log = structlog.get_logger(__name__)

# Messages link the status page through this path: the page counts such a view as a click
# through a message's link (`status_page_visits.source = "link"`) and shows the plain URL.
FROM_MESSAGE = "m"


def status_link(public_url: str, links: CustomerLinks, order_id: uuid.UUID) -> str:
    """The order's status page as every customer message links it."""
    return f"{public_url}/order/{links.token(LinkPurpose.STATUS, order_id)}/{FROM_MESSAGE}"


class Undeliverable(Exception):
    """This channel cannot reach this recipient (permanently): fall back to the next one."""


class Mailer:
    """SMTP delivery over a few connections kept open between messages (a connection per
    message cost its TCP set-up, greeting and EHLO every time). A connection idle for a while
    is checked with NOOP before its next message (the server may have closed it); one that
    fails is dropped, and the error raised as before: the activity retries."""

    CONNECTIONS = 4  # messages sent at once from one worker
    CHECK_AFTER_IDLE = 5.0  # seconds

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._sending = asyncio.Semaphore(self.CONNECTIONS)
        name, address = parseaddr(settings.smtp_sender)
        self._from = formataddr((name or settings.shop_name, address))
        self._reply_to = settings.smtp_reply_to or settings.support_email
        self._domain = address.rpartition("@")[2]

    def message_id(self, key: str) -> str:
        """The Message-ID of the message sent under `key`, on the sender's domain: the same
        on every attempt, so a resend after a crash shows as the same message."""
        return f"<{key.replace(':', '.')}@{self._domain}>"

    async def send(self, *, to: str, message: RenderedMessage, message_id: str) -> str:
        email = EmailMessage()
        email["From"] = self._from
        email["Reply-To"] = self._reply_to
        email["To"] = to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = message_id
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        async with self._sending:
            smtp = await self._connection()
            try:
                await smtp.send_message(email)
            except BaseException:
                smtp.close()
                raise
            self._idle.append((smtp, time.monotonic()))
        return message_id

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            smtp, since = self._idle.pop()
            if not smtp.is_connected:
                continue
            if time.monotonic() - since < self.CHECK_AFTER_IDLE:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except aiosmtplib.SMTPException:
                smtp.close()
        smtp = aiosmtplib.SMTP(
            hostname=self._settings.smtp_host,
            port=self._settings.smtp_port,
            timeout=self._settings.smtp_timeout_seconds,
            username=self._settings.smtp_username or None,  # logs in when connecting
            password=self._settings.smtp_password or None,
        )
        await smtp.connect()
        return smtp


class Channel:
    """Where a message can go; subclasses know the address and the provider."""

    name = ""
    # The provider reports later what became of a message it accepted (TurboSMS): the row is
    # marked `accepted` for the worker to ask about (activities/turbosms.py).
    reports_delivery = False

    def address(self, contact: OrderContact) -> str | None:
        raise NotImplementedError

    def masked(self, address: str) -> str:
        raise NotImplementedError

    def masked_error(self, error: str, address: str) -> str:
        """A provider's error as the outbox and the log keep it: no address in clear."""
        return mask_addresses(error.replace(address, self.masked(address)))[:500]

    async def send(self, *, address: str, to_name: str, message: RenderedMessage, key: str) -> str:
        """Deliver; the provider's message id. Raises Undeliverable, or anything transient."""
        raise NotImplementedError


class EmailChannel(Channel):
    name = "email"

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    def address(self, contact: OrderContact) -> str | None:
        return contact.email

    def masked(self, address: str) -> str:
        return mask_email(address)

    async def send(self, *, address: str, to_name: str, message: RenderedMessage, key: str) -> str:
        message_id = self._mailer.message_id(key)
        try:
            return await self._mailer.send(
                to=formataddr((_one_line(to_name), address)),
                message=message,
                message_id=message_id,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise Undeliverable(f"recipient refused: {exc}") from exc


class SmsChannel(Channel):
    name = "sms"

    def __init__(self, gateway: Provider, sender: str) -> None:
        self._gateway = gateway
        self._sender = sender

    def address(self, contact: OrderContact) -> str | None:
        return contact.phone

    def masked(self, address: str) -> str:
        return mask_phone(address)

    async def send(self, *, address: str, to_name: str, message: RenderedMessage, key: str) -> str:
        text = fit_sms(message.sms)  # the templates keep within 3 parts; this is the backstop
        answer = await _rejected_is_undeliverable(
            self._gateway.call(
                "POST",
                "/v1/messages",
                json={"to": address, "from": self._sender, "text": text},
                idempotency_key=key,
            )
        )
        return str(answer["message_id"])


class PushChannel(Channel):
    name = "push"

    def __init__(self, gateway: Provider) -> None:
        self._gateway = gateway

    def address(self, contact: OrderContact) -> str | None:
        return contact.push_token

    def masked(self, address: str) -> str:
        return f"{address[:4]}***"

    async def send(self, *, address: str, to_name: str, message: RenderedMessage, key: str) -> str:
        answer = await _rejected_is_undeliverable(
            self._gateway.call(
                "POST",
                "/v1/messages",
                json={
                    "token": address,
                    "title": message.push_title,
                    "body": message.push_body,
                    "url": message.link,  # a tap opens the order's status page
                },
                idempotency_key=key,
            )
        )
        return str(answer["message_id"])


async def _with_return_facts(session: AsyncSession, input: NotifyInput) -> dict[str, str]:
    """The message's params, with what the return's row knows beside them: an approved return
    without a label to print (the carrier's branch makes out its waybill) says so."""
    if input.kind != MessageKind.RETURN_APPROVED or "return_id" not in input.params:
        return input.params
    ret = await session.get(Return, uuid.UUID(input.params["return_id"]))
    if ret is None or ret.needs_label:
        return input.params
    return {**input.params, "no_label": "yes"}


async def _rejected_is_undeliverable(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await call
    except ApplicationError as exc:
        if exc.type == ErrorType.PROVIDER_REJECTED:
            raise Undeliverable(str(exc)) from exc
        raise


# A message's outbox row claimed for an attempt, in one statement: written `sending` before
# the provider is called (an attempt that finds it `sending` counts a possible resend), left
# as it is once `sent` or `undeliverable`. `was`: the status the attempt found (PostgreSQL 18's
# RETURNING old), None for a new row.
CLAIM = text("""
INSERT INTO notifications AS n
    (order_id, idempotency_key, kind, channel, recipient_masked, status, attempts, resends)
VALUES (:order_id, :key, :kind, :channel, :recipient, 'sending', 1, 0)
ON CONFLICT (idempotency_key) DO UPDATE SET
    status = CASE WHEN n.status IN ('sent', 'undeliverable') THEN n.status ELSE 'sending' END,
    attempts = n.attempts + CASE WHEN n.status IN ('sent', 'undeliverable') THEN 0 ELSE 1 END,
    resends = n.resends + CASE WHEN n.status = 'sending' THEN 1 ELSE 0 END
RETURNING old.status AS was, new.status, new.provider_message_id
""")


class NotificationActivities:
    def __init__(self, engine: AsyncEngine, channels: list[Channel], settings: Settings) -> None:
        self._engine = engine
        # One statement needs no transaction: no BEGIN and COMMIT round trips around it.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._channels = {channel.name: channel for channel in channels}
        self._settings = settings
        self._links = settings.customer_links()
        self._catalog = MessageCatalog()

    @activity.defn
    async def send_confirmation(self, input: SendConfirmationInput) -> NotificationResult:
        """The order confirmation (seed 000: within minutes), with the order's lines."""
        return await self.notify(
            NotifyInput(
                input.order_id,
                MessageKind.CONFIRMATION,
                MessageKind.CONFIRMATION.value,
                {"expected_date": input.expected_date.isoformat()},
            )
        )

    @activity.defn
    async def notify(self, input: NotifyInput) -> NotificationResult:
        """Any message of activities/messages/, to the customer or the managers."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
            lines = (
                await session.exec(
                    select(OrderLine).where(OrderLine.order_id == order.id).order_by("position")
                )
            ).all()
            # The request (and its reminder) promises a bonus only when one is given.
            bonus = None
            if input.kind in (MessageKind.FEEDBACK_REQUEST, MessageKind.FEEDBACK_REMINDER):
                bonus = await feedback.bonus_of(session, order_id=order.id, settings=self._settings)
                await session.commit()
            refusal = await email_refusal(session, order.customer_id, input.kind)
            params = await _with_return_facts(session, input)
        facts = self._facts(order, contact, list(lines), bonus=bonus is not None)
        if input.kind in MANAGER_KINDS:
            message = self._render(input.kind, "en", params, facts)
            return await self._first_delivered(
                order.id,
                input,
                [(self._channels["email"], self._settings.manager_email)],
                "orderflow managers",
                message,
            )
        if contact.erased:
            return await self._not_sent_to_erased(order.id, input)
        locale = contact.locale if contact.locale in LOCALES else "en"
        message = self._render(input.kind, locale, params, facts)
        # E-mail is the last resort, unless the ESP said the address must not get this.
        preferred = channels_for([*contact.channels, "email"], refusal)
        routes = []
        for name in dict.fromkeys(preferred):
            channel = self._channels.get(name)
            address = channel.address(contact) if channel else None
            if channel is not None and address:
                routes.append((channel, address))
        result = await self._first_delivered(order.id, input, routes, contact.name or "", message)
        if refusal is not None and result.channel == "none" and contact.email:
            await self._not_sent_by_email(order.id, input, mask_email(contact.email), refusal)
        return result

    def _render(
        self,
        kind: MessageKind,
        locale: str,
        params: dict[str, str],
        facts: OrderMessageFacts | RecipientFacts,
    ) -> RenderedMessage:
        """A message that cannot be rendered will not render on a retry either: the step
        fails for good, and an operator decides (no poison loop)."""
        try:
            return self._catalog.render(kind, locale, params, facts)
        except (ValueError, TemplateError) as exc:
            raise ApplicationError(
                f"{kind.value} ({locale}) cannot be rendered: {exc}",
                type=ErrorType.MESSAGE_BROKEN,
                non_retryable=True,
            ) from exc

    async def _not_sent_to_erased(
        self, order_id: uuid.UUID, input: NotifyInput
    ) -> NotificationResult:
        """The customer was erased: there is nobody to send to, now or on a retry. The outbox
        row says so; the order goes on."""
        key = f"{input.order_id}:{input.key}:none"
        async with open_session(self._engine) as session:
            await session.execute(
                insert(Notification)
                .values(
                    order_id=order_id,
                    idempotency_key=key,
                    kind=input.kind.value,
                    channel="none",
                    recipient_masked=ERASED,
                    status="recipient_erased",
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            await session.commit()
        log.info("notification not sent: the customer is erased", kind=input.kind.value)
        return NotificationResult(key, "none", "", False)

    async def _not_sent_by_email(
        self, order_id: uuid.UUID, input: NotifyInput, masked: str, refusal: EmailRefusal
    ) -> None:
        """No channel took a message that e-mail was refused: its e-mail row says why."""
        async with open_session(self._engine) as session:
            await session.execute(
                insert(Notification)
                .values(
                    order_id=order_id,
                    idempotency_key=f"{input.order_id}:{input.key}:email",
                    kind=input.kind.value,
                    channel="email",
                    recipient_masked=masked,
                    status="suppressed",
                    last_error=refusal.value,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            await session.commit()
        log.info("notification not sent by e-mail", kind=input.kind.value, reason=refusal.name)

    @activity.defn
    async def send_order_list(self, input: OrderListInput) -> None:
        """The "my orders" link to the e-mail of one customer identity (asked for on
        POST /v1/customer-links). No outbox row: it is about no one order; a retry after a
        crash mid-send may send it twice (SMTP takes no key), which is harmless."""
        customer_id = uuid.UUID(input.customer_id)
        async with open_session(self._engine) as session:
            customer = await session.get(Customer, customer_id)
            country = (
                await session.exec(
                    select(OrderContact.country)
                    .join(Order, col(Order.id) == col(OrderContact.order_id))
                    .where(Order.customer_id == customer_id)
                    .order_by(col(Order.created_at).desc())
                    .limit(1)
                )
            ).first()
        if customer is None or customer.email.endswith(ERASED_DOMAIN):
            log.info("order list not sent: no such customer, or erased")
            return
        expires_at = datetime.now(UTC) + self._settings.order_list_link_lifetime
        token = self._links.token(LinkPurpose.ORDER_LIST, customer_id)
        locale = input.locale if input.locale in LOCALES else "en"
        message = self._render(
            MessageKind.ORDER_LIST,
            locale,
            {
                "url": f"{self._settings.public_url}/my-orders/{token}",
                "expires_at": expires_at.isoformat(),
            },
            RecipientFacts(
                support=self._support(),
                timezone=timezone_of(country, self._settings.default_timezone),
            ),
        )
        channel = self._channels["email"]
        try:
            await channel.send(
                address=customer.email,
                to_name="",
                message=message,
                key=f"order-list:{input.request_id}",
            )
        except Undeliverable as exc:
            log.warning(
                "order list undeliverable", error=channel.masked_error(str(exc), customer.email)
            )
            metrics.notification(channel.name, managers=False, failure="undeliverable")
            return
        metrics.notification(channel.name, managers=False)
        log.info("order list sent", to=channel.masked(customer.email))

    def _support(self) -> str:
        return f"{self._settings.support_email}, {self._settings.support_phone}"

    def _facts(
        self, order: Order, contact: OrderContact, lines: list[OrderLine], *, bonus: bool
    ) -> OrderMessageFacts:
        links, page = self._links, f"{self._settings.public_url}/order"
        return OrderMessageFacts(
            number=order.number,
            customer_name=contact.name or ERASED,
            currency=order.currency,
            total=order.total,
            delivery_method=order.delivery_method,
            payment_method=order.payment_method,
            lines=tuple(
                Line(line.sku, line.name, line.quantity, line.unit_price) for line in lines
            ),
            timezone=timezone_of(contact.country, self._settings.default_timezone),
            masked_email=mask_email(contact.email) if contact.email else ERASED,
            masked_phone=mask_phone(contact.phone) if contact.phone else ERASED,
            support=self._support(),
            feedback_url=f"{page}/{links.token(LinkPurpose.FEEDBACK, order.id)}/feedback",
            choice_url=f"{page}/{links.token(LinkPurpose.STOCK_CHOICE, order.id)}/stock-choice",
            status_url=status_link(self._settings.public_url, links, order.id),
            bonus=bonus,
            page_url=f"{page}/{links.token(LinkPurpose.STATUS, order.id)}",
            return_days=self._settings.policy_return_window.days,
            price_reason=order.price_reason,
        )

    async def _first_delivered(
        self,
        order_id: uuid.UUID,
        input: NotifyInput,
        routes: list[tuple[Channel, str]],
        to_name: str,
        message: RenderedMessage,
    ) -> NotificationResult:
        for channel, address in routes:
            key = f"{input.order_id}:{input.key}:{channel.name}"
            result = await self._deliver_once(
                order_id, key, input.kind, channel, address, to_name, message
            )
            if result is not None:
                return result
        # Nobody could be reached: the outbox rows say so; the order goes on.
        log.error("notification undeliverable on every channel", kind=input.kind.value)
        return NotificationResult(f"{input.order_id}:{input.key}", "none", "", False)

    async def _deliver_once(
        self,
        order_id: uuid.UUID,
        key: str,
        kind: MessageKind,
        channel: Channel,
        address: str,
        to_name: str,
        message: RenderedMessage,
    ) -> NotificationResult | None:
        """Send one message once per key; None when this channel cannot reach the recipient.

        The outbox row is committed `sending` before the provider is called and `sent` right
        after. SMS and push gateways take the key: a resend after a crash is deduplicated by
        them, so those are delivered exactly once. SMTP takes no key: a crash between the
        server's acceptance and the `sent` commit sends the e-mail again — at least once. The
        attempt that finds the row still `sending` counts that possible duplicate (the row's
        `resends`, and the worker's `orderflow_notification_resends` metric).
        """
        async with self._autocommit.connect() as connection:
            outbox = (
                await connection.execute(
                    CLAIM,
                    {
                        "order_id": order_id,
                        "key": key,
                        "kind": kind.value,
                        "channel": channel.name,
                        "recipient": channel.masked(address),
                    },
                )
            ).one()
        if outbox.status == "sent":
            log.info("notification already sent", key=key)
            return NotificationResult(key, channel.name, outbox.provider_message_id or "", True)
        if outbox.status == "undeliverable":
            return None
        if outbox.was == "sending":  # an attempt died after calling the provider
            _resends().add(1, {"channel": channel.name})
        managers = kind in MANAGER_KINDS
        try:
            message_id = await channel.send(
                address=address, to_name=to_name, message=message, key=key
            )
        except Undeliverable as exc:
            error = channel.masked_error(str(exc), address)
            await self._outbox(key, status="undeliverable", last_error=error)
            metrics.notification(channel.name, managers=managers, failure="undeliverable")
            log.warning(
                "channel cannot deliver, falling back", key=key, channel=channel.name, error=error
            )
            return None
        except (aiosmtplib.SMTPException, OSError, ApplicationError) as exc:
            error = channel.masked_error(f"{type(exc).__name__}: {exc}", address)
            await self._outbox(key, status="pending", last_error=error)  # not sent: no resend
            metrics.notification(channel.name, managers=managers, failure="transient")
            log.warning("notification failed, will retry", key=key, error=error)
            # Raised again masked, under the same type: Temporal keeps a failure's message.
            if isinstance(exc, ApplicationError):
                raise ApplicationError(
                    error, type=exc.type, non_retryable=exc.non_retryable
                ) from None
            raise ApplicationError(error, type=type(exc).__name__) from None
        await self._outbox(
            key,
            status="sent",
            provider_message_id=message_id,
            sent_at=datetime.now(UTC),
            last_error=None,
            delivery_status="accepted" if channel.reports_delivery else None,
        )
        metrics.notification(channel.name, managers=managers)
        log.info(
            "notification sent",
            key=key,
            kind=kind.value,
            channel=channel.name,
            to=channel.masked(address),
        )
        return NotificationResult(key, channel.name, message_id, False)

    async def _outbox(self, key: str, **values: Any) -> None:
        async with self._autocommit.connect() as connection:
            await connection.execute(
                update(Notification)
                .where(col(Notification.idempotency_key) == key)
                .values(**values)
            )
