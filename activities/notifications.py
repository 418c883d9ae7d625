"""Notifications: rendered per locale, sent once per idempotency key, on the customer's channels.

Channels: e-mail over SMTP, SMS through an HTTP gateway, push/messenger through an HTTP
webhook. The customer's preferences order them; a channel that fails permanently (a
refused recipient, an expired push token) falls back to the next, and e-mail is the last
resort. Transient failures raise, and the activity's retry policy tries again.

Exactly once per key and channel: the outbox row is written (and locked) before the
provider is called, the provider gets the key, and a retried activity that finds the row
`sent` sends nothing. SMTP has no idempotency key: its Message-ID derives from ours, so
even a crash between the send and the commit shows as one message id.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any

import aiosmtplib
import structlog
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messages import CANCEL_REASONS, CUSTOMER, MANAGER, SUPPORT_FOOTER, WAITING_FOR
from activities.orders import load_order
from activities.providers import Provider
from schema.contracts import MessageKind, NotificationResult, NotifyInput, SendConfirmationInput
from schema.database import open_session
from schema.pii import mask_email, mask_phone
from schema.tables import Customer, Notification, Order, OrderLine
from settings import Settings

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
BABEL_LOCALES = {"uk": "uk_UA", "ru": "ru_RU", "en": "en_GB"}
DELIVERY_LABELS = {
    "uk": {"courier": "кур'єр", "post": "пошта", "pickup": "самовивіз"},
    "ru": {"courier": "курьер", "post": "почта", "pickup": "самовывоз"},
    "en": {"courier": "courier", "post": "post", "pickup": "pickup"},
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class Undeliverable(Exception):
    """This channel cannot reach this recipient (permanently): fall back to the next one."""


GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_segments(text: str) -> int:
    """How many SMS parts `text` takes: GSM-7 fits 160 (153 per part), UCS-2 (Cyrillic) 70 (67)."""
    single, part = (160, 153) if set(text) <= GSM7 else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // part)


def fit_sms(text: str, max_segments: int = 3) -> str:
    """Shorten to at most `max_segments` parts, ending with an ellipsis when cut."""
    if sms_segments(text) <= max_segments:
        return text
    part = 153 if set(text) <= GSM7 else 67
    return text[: part * max_segments - 1].rstrip() + "…"


class EmailRenderer:
    """One template per kind and locale, with blocks `subject`, `text` and `html`."""

    def __init__(self) -> None:
        loader = FileSystemLoader(TEMPLATES)
        self._plain = Environment(loader=loader, undefined=StrictUndefined, trim_blocks=True)
        self._html = self._plain.overlay(autoescape=True)  # names and SKUs are escaped in HTML only
        self._text = Environment(
            keep_trailing_newline=False
        )  # lenient: catalog params are optional

    def render(self, kind: MessageKind, locale: str, context: dict[str, object]) -> RenderedEmail:
        name = f"{kind.value}.{locale}.j2"
        plain, html = self._plain.get_template(name), self._html.get_template(name)

        def block(template: Template, block_name: str) -> str:
            return "".join(template.blocks[block_name](template.new_context(context))).strip()

        return RenderedEmail(
            subject=block(plain, "subject"),
            text=block(plain, "text") + "\n",
            html=block(html, "html"),
        )

    def render_text(self, template: str, values: dict[str, str]) -> str:
        """A catalog text (activities/messages.py); a missing parameter renders empty."""
        return self._text.from_string(template).render(values)

    def render_html_message(self, text: str) -> str:
        return self._html.get_template("message.html.j2").render(paragraphs=text.split("\n\n"))


class Mailer:
    """SMTP delivery; the connection is opened per message (the sink or relay may restart)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, *, to: str, email: RenderedEmail, message_id: str) -> str:
        message = EmailMessage()
        message["From"] = self._settings.smtp_sender
        message["To"] = to
        message["Subject"] = email.subject
        message["Message-ID"] = message_id
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=self._settings.smtp_host,
            port=self._settings.smtp_port,
            timeout=self._settings.smtp_timeout_seconds,
        )
        return message_id


def _money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=BABEL_LOCALES[locale])


class Channel:
    """Where a message can go; subclasses know the address and the provider."""

    name = ""

    def address(self, customer: Customer) -> str | None:
        raise NotImplementedError

    def masked(self, address: str) -> str:
        raise NotImplementedError

    async def send(self, *, address: str, to_name: str, email: RenderedEmail, key: str) -> str:
        """Deliver; the provider's message id. Raises Undeliverable, or anything transient."""
        raise NotImplementedError


class EmailChannel(Channel):
    name = "email"

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    def address(self, customer: Customer) -> str | None:
        return customer.email

    def masked(self, address: str) -> str:
        return mask_email(address)

    async def send(self, *, address: str, to_name: str, email: RenderedEmail, key: str) -> str:
        message_id = f"<{key.replace(':', '.')}@orderflow>"
        try:
            return await self._mailer.send(
                to=formataddr((to_name, address)), email=email, message_id=message_id
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise Undeliverable(f"recipient refused: {exc}") from exc


class SmsChannel(Channel):
    name = "sms"

    def __init__(self, gateway: Provider, sender: str) -> None:
        self._gateway = gateway
        self._sender = sender

    def address(self, customer: Customer) -> str | None:
        return customer.phone

    def masked(self, address: str) -> str:
        return mask_phone(address)

    async def send(self, *, address: str, to_name: str, email: RenderedEmail, key: str) -> str:
        text = fit_sms(email.text.split("\n\n")[0].strip())
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

    def address(self, customer: Customer) -> str | None:
        return customer.push_token

    def masked(self, address: str) -> str:
        return f"{address[:4]}***"

    async def send(self, *, address: str, to_name: str, email: RenderedEmail, key: str) -> str:
        body = email.text.split("\n\n")[0].strip()
        answer = await _rejected_is_undeliverable(
            self._gateway.call(
                "POST",
                "/v1/messages",
                json={"token": address, "title": email.subject, "body": body},
                idempotency_key=key,
            )
        )
        return str(answer["message_id"])


async def _rejected_is_undeliverable(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await call
    except ApplicationError as exc:
        if exc.type == "ProviderRejected":
            raise Undeliverable(str(exc)) from exc
        raise


class NotificationActivities:
    def __init__(self, engine: AsyncEngine, channels: list[Channel], settings: Settings) -> None:
        self._engine = engine
        self._channels = {channel.name: channel for channel in channels}
        self._settings = settings
        self._renderer = EmailRenderer()

    @activity.defn
    async def send_confirmation(self, input: SendConfirmationInput) -> NotificationResult:
        """The order confirmation (seed 000: within minutes): the rich template by e-mail."""
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
        """Any message of the catalog (activities/messages.py), to the customer or the managers."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            customer = await session.get(Customer, order.customer_id)
            lines = (
                await session.exec(
                    select(OrderLine).where(OrderLine.order_id == order.id).order_by("position")
                )
            ).all()
        assert customer is not None  # FK
        if input.kind in MANAGER:
            email = self._render(
                input.kind, "en", self._values(order, customer, "en", input.params)
            )
            return await self._first_delivered(
                order.id,
                input,
                [(self._channels["email"], self._settings.manager_email)],
                "orderflow managers",
                email,
            )
        locale = _locale(customer.locale)
        values = self._values(order, customer, locale, input.params)
        if input.kind == MessageKind.CONFIRMATION:
            email = self._confirmation(order, customer, list(lines), locale, values)
        else:
            email = self._render(input.kind, locale, values)
        preferred = [*customer.channels, "email"]  # e-mail is the last resort
        routes = []
        for name in dict.fromkeys(preferred):
            channel = self._channels.get(name)
            address = channel.address(customer) if channel else None
            if channel is not None and address:
                routes.append((channel, address))
        return await self._first_delivered(order.id, input, routes, customer.name, email)

    def _render(self, kind: MessageKind, locale: str, values: dict[str, str]) -> RenderedEmail:
        if kind in MANAGER:
            subject, body = MANAGER[kind]
        else:
            subject, body = CUSTOMER[kind][locale]
        render = self._renderer.render_text
        text = render(body, values) + "\n\n" + render(SUPPORT_FOOTER[locale], values)
        return RenderedEmail(
            subject=render(subject, values),
            text=text + "\n",
            html=self._renderer.render_html_message(text),
        )

    def _confirmation(
        self,
        order: Order,
        customer: Customer,
        lines: list[OrderLine],
        locale: str,
        values: dict[str, str],
    ) -> RenderedEmail:
        rich = self._renderer.render(
            MessageKind.CONFIRMATION,
            locale,
            {
                "name": customer.name,
                "number": order.number,
                "lines": [
                    {
                        "sku": line.sku,
                        "name": line.name,
                        "quantity": line.quantity,
                        "unit_price": _money(line.unit_price, order.currency, locale),
                        "amount": _money(line.unit_price * line.quantity, order.currency, locale),
                    }
                    for line in lines
                ],
                "total": values["total"],
                "delivery": DELIVERY_LABELS[locale][order.delivery_method],
                "expected_date": values["expected_date"],
                "support_email": self._settings.support_email,
                "support_phone": self._settings.support_phone,
            },
        )
        # SMS and push carry the short text of the catalog as their first paragraph.
        short = self._renderer.render_text(CUSTOMER[MessageKind.CONFIRMATION][locale][1], values)
        return RenderedEmail(subject=rich.subject, text=f"{short}\n\n{rich.text}", html=rich.html)

    def _values(
        self, order: Order, customer: Customer, locale: str, params: dict[str, str]
    ) -> dict[str, str]:
        values = dict(params)
        values.update(
            name=customer.name,
            number=order.number,
            total=_money(order.total, order.currency, locale),
            support=f"{self._settings.support_email}, {self._settings.support_phone}",
            masked_email=mask_email(customer.email),
            masked_phone=mask_phone(customer.phone),
            feedback_url=f"{self._settings.public_url}/v1/orders/{order.id}/feedback",
            choice_url=f"{self._settings.public_url}/v1/orders/{order.id}/stock-choice",
        )
        for field in ("amount", "refund"):
            if params.get(field):
                values[field] = _money(Decimal(params[field]), order.currency, locale)
        for field in ("expected_date", "new_date"):
            if params.get(field):
                values[field] = format_date(
                    date.fromisoformat(params[field]), "long", locale=BABEL_LOCALES[locale]
                )
        if "waiting_for" in params:
            values["waiting_for"] = WAITING_FOR[locale].get(
                params["waiting_for"], params["waiting_for"]
            )
        if "reason" in params and params["reason"] in CANCEL_REASONS[locale]:
            values["reason"] = CANCEL_REASONS[locale][params["reason"]]
        return values

    async def _first_delivered(
        self,
        order_id: uuid.UUID,
        input: NotifyInput,
        routes: list[tuple[Channel, str]],
        to_name: str,
        email: RenderedEmail,
    ) -> NotificationResult:
        for channel, address in routes:
            key = f"{input.order_id}:{input.key}:{channel.name}"
            result = await self._deliver_once(
                order_id, key, input.kind, channel, address, to_name, email
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
        email: RenderedEmail,
    ) -> NotificationResult | None:
        """Outbox first, row locked, provider called only if not sent before. None: undeliverable here."""
        async with open_session(self._engine) as session:
            await session.execute(
                insert(Notification)
                .values(
                    order_id=order_id,
                    idempotency_key=key,
                    kind=kind.value,
                    channel=channel.name,
                    recipient_masked=channel.masked(address),
                    status="pending",
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            # The row lock keeps a late, timed-out attempt from sending beside its retry.
            outbox = (
                await session.exec(
                    select(Notification)
                    .where(Notification.idempotency_key == key)
                    .with_for_update()
                )
            ).one()
            if outbox.status == "sent":
                await session.commit()
                log.info("notification already sent", key=key)
                return NotificationResult(key, channel.name, outbox.provider_message_id or "", True)
            if outbox.status == "undeliverable":
                await session.commit()
                return None
            outbox.attempts += 1
            try:
                message_id = await channel.send(
                    address=address, to_name=to_name, email=email, key=key
                )
            except Undeliverable as exc:
                outbox.status, outbox.last_error = "undeliverable", str(exc)[:500]
                session.add(outbox)
                await session.commit()
                log.warning(
                    "channel cannot deliver, falling back",
                    key=key,
                    channel=channel.name,
                    error=str(exc),
                )
                return None
            except (aiosmtplib.SMTPException, OSError, ApplicationError) as exc:
                outbox.last_error = f"{type(exc).__name__}: {exc}"[:500]
                session.add(outbox)
                await session.commit()
                log.warning("notification failed, will retry", key=key, error=outbox.last_error)
                raise
            outbox.status = "sent"
            outbox.provider_message_id = message_id
            outbox.sent_at = datetime.now(UTC)
            outbox.last_error = None
            session.add(outbox)
            await session.commit()
        log.info(
            "notification sent",
            key=key,
            kind=kind.value,
            channel=channel.name,
            to=channel.masked(address),
        )
        return NotificationResult(key, channel.name, message_id, False)


def _locale(locale: str) -> str:
    return locale if locale in BABEL_LOCALES else "en"
