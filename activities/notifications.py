"""Customer notifications: rendered per locale, sent once per idempotency key.

The outbox row is written (and locked) before the provider is called; a retried
activity finds it `sent` and sends nothing. The SMTP Message-ID derives from the
key, so even a crash between the send and the commit is visible as one message id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path

import aiosmtplib
import structlog
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio import activity

from activities.messages import CANCEL_REASONS, CUSTOMER, MANAGER, SUPPORT_FOOTER, WAITING_FOR
from activities.orders import load_order
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


class EmailRenderer:
    """One template per kind and locale, with blocks `subject`, `text` and `html`."""

    def __init__(self) -> None:
        loader = FileSystemLoader(TEMPLATES)
        self._plain = Environment(loader=loader, undefined=StrictUndefined, trim_blocks=True)
        self._html = self._plain.overlay(autoescape=True)  # names and SKUs are escaped in HTML only

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


class NotificationActivities:
    def __init__(self, engine: AsyncEngine, mailer: Mailer, settings: Settings) -> None:
        self._engine = engine
        self._mailer = mailer
        self._settings = settings
        self._renderer = EmailRenderer()

    @activity.defn
    async def send_confirmation(self, input: SendConfirmationInput) -> NotificationResult:
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            customer = await session.get(Customer, order.customer_id)
            lines = (
                await session.exec(
                    select(OrderLine).where(OrderLine.order_id == order.id).order_by("position")
                )
            ).all()
        assert customer is not None  # FK
        locale = _locale(customer.locale)
        email = self._renderer.render(
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
                "total": _money(order.total, order.currency, locale),
                "delivery": DELIVERY_LABELS[locale][order.delivery_method],
                "expected_date": format_date(
                    input.expected_date, "long", locale=BABEL_LOCALES[locale]
                ),
                "support_email": self._settings.support_email,
                "support_phone": self._settings.support_phone,
            },
        )
        key = f"{input.order_id}:{MessageKind.CONFIRMATION.value}:email"
        return await self._deliver_once(
            order.id, key, MessageKind.CONFIRMATION, customer.name, customer.email, email
        )

    @activity.defn
    async def notify(self, input: NotifyInput) -> NotificationResult:
        """Any message of the catalog (activities/messages.py), to the customer or the managers."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            customer = await session.get(Customer, order.customer_id)
        assert customer is not None
        to_managers = input.kind in MANAGER
        locale = "en" if to_managers else _locale(customer.locale)
        values = self._values(order, customer, locale, input.params)
        if to_managers:
            subject, body = MANAGER[input.kind]
        else:
            subject, body = CUSTOMER[input.kind][locale]
        text = body.format_map(values) + "\n\n" + SUPPORT_FOOTER[locale].format_map(values)
        email = RenderedEmail(
            subject=subject.format_map(values),
            text=text + "\n",
            html=self._renderer.render_html_message(text),
        )
        key = f"{input.order_id}:{input.key}:email"
        if to_managers:
            return await self._deliver_once(
                order.id, key, input.kind, "orderflow managers", self._settings.manager_email, email
            )
        return await self._deliver_once(
            order.id, key, input.kind, customer.name, customer.email, email
        )

    def _values(
        self, order: Order, customer: Customer, locale: str, params: dict[str, str]
    ) -> _Values:
        values = _Values(params)
        values.update(
            name=customer.name,
            number=order.number,
            support=f"{self._settings.support_email}, {self._settings.support_phone}",
            masked_email=mask_email(customer.email),
            masked_phone=mask_phone(customer.phone),
            feedback_url=f"{self._settings.public_url}/v1/orders/{order.id}/feedback",
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

    async def _deliver_once(
        self,
        order_id: uuid.UUID,
        key: str,
        kind: MessageKind,
        to_name: str,
        to_email: str,
        email: RenderedEmail,
    ) -> NotificationResult:
        """Outbox first, row locked, provider called only if not sent before: exactly once per key."""
        async with open_session(self._engine) as session:
            await session.execute(
                insert(Notification)
                .values(
                    order_id=order_id,
                    idempotency_key=key,
                    kind=kind.value,
                    channel="email",
                    recipient_masked=mask_email(to_email),
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
                return NotificationResult(key, "email", outbox.provider_message_id or "", True)
            message_id = f"<{key.replace(':', '.')}@orderflow>"
            outbox.attempts += 1
            try:
                await self._mailer.send(
                    to=formataddr((to_name, to_email)), email=email, message_id=message_id
                )
            except (aiosmtplib.SMTPException, OSError) as exc:
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
        log.info("notification sent", key=key, kind=kind.value, to=mask_email(to_email))
        return NotificationResult(key, "email", message_id, False)


class _Values(dict[str, str]):
    """Placeholders a message does not get stay visible instead of failing the send."""

    def __missing__(self, key: str) -> str:
        return ""


def _locale(locale: str) -> str:
    return locale if locale in BABEL_LOCALES else "en"
