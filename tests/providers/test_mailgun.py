"""Mailgun against its documented shapes (devstack/fixtures/mailgun): each documented event
verifies with its signing key and reads as what it means for us; one character changed, or
too old, and it is refused; the simulator's events, built from the same fixtures, have the
fixtures' shape; and mail goes through a relay that wants a login, as Mailgun's does."""

from __future__ import annotations

from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.messages import RenderedMessage
from activities.notifications import Mailer
from devstack.fixtures import fixture
from devstack.harness import free_port
from devstack.simulators.mailgun import FIXTURES, Report, mailgun_event
from schema.api.email_events import MailgunEvent
from schema.mailgun import verify
from schema.webhooks import BadSignature
from settings import Settings
from starter.services.email_events import what_changes

TOLERANCE = 9 * 3600  # Mailgun retries for 8 hours
MEANS = {
    "failed_permanent": "bounced",
    "failed_temporary": None,
    "complained": "complained",
    "delivered": "delivered",
}


def _verify(body: dict[str, Any], key: str, now: float) -> MailgunEvent:
    event = MailgunEvent.model_validate(body)
    signed = event.signature
    verify(key, str(signed.timestamp), signed.token, signed.signature, TOLERANCE, now)
    return event


@pytest.mark.parametrize("name", sorted(MEANS))
def test_each_documented_event_verifies_and_reads_as_it_means(name: str) -> None:
    documented = fixture("mailgun", name)
    body = documented["body"]
    event = _verify(body, documented["signing_key"], now=int(body["signature"]["timestamp"]))
    assert what_changes(event.event_data) == MEANS[name]
    assert event.event_data.message.headers.message_id.endswith("@orderflow")
    assert event.event_data.recipient == "iryna@example.com"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", "0" * 64),
        ("token", "a" * 50),
        ("timestamp", "1795860001"),
    ],
)
def test_one_changed_value_is_refused(field: str, value: str) -> None:
    documented = fixture("mailgun", "failed_permanent")
    body = documented["body"]
    now = int(body["signature"]["timestamp"])
    body["signature"][field] = value
    with pytest.raises(BadSignature, match="does not match"):
        _verify(body, documented["signing_key"], now=now)


def test_another_key_or_an_old_signature_is_refused() -> None:
    documented = fixture("mailgun", "complained")
    body = documented["body"]
    signed_at = int(body["signature"]["timestamp"])
    with pytest.raises(BadSignature, match="does not match"):
        _verify(body, "another-signing-key", now=signed_at)
    with pytest.raises(BadSignature, match="tolerance"):
        _verify(body, documented["signing_key"], now=signed_at + TOLERANCE + 1)


def _shape(value: Any) -> Any:
    """Keys and types, not values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_the_simulator_sends_the_documented_events_signed_now(kind: str) -> None:
    report = Report(
        kind=kind,  # type: ignore[arg-type]
        message_id="<9a0f.confirmation.1.email@orderflow>",
        recipient="olena@example.com",
    )
    body = mailgun_event("a-signing-key", report)
    documented = fixture("mailgun", FIXTURES[kind])["body"]
    event = _verify(body, "a-signing-key", now=int(body["signature"]["timestamp"]))
    assert _shape(body) == _shape(documented) | {"signature": _shape(documented["signature"])}
    assert event.event_data.message.headers.message_id == "9a0f.confirmation.1.email@orderflow"
    assert event.signature.token != documented["signature"]["token"]


@pytest.mark.stack  # an SMTP relay, served
async def test_mail_goes_through_a_relay_that_wants_a_login() -> None:
    """Mailgun's SMTP relay (smtp.mailgun.org) takes mail only after a login: the Mailer logs
    in with ORDERFLOW_SMTP_USERNAME and _PASSWORD, and a wrong password is refused."""
    received: list[bytes] = []

    class Relay:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.original_content)
            return "250 queued"

    def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"postmaster@mg.shop.example",
            b"relay-password",
        )
        return AuthResult(success=good, handled=False)

    port = free_port()
    relay = Controller(
        Relay(), hostname="127.0.0.1", port=port, authenticator=login, auth_require_tls=False
    )
    relay.start()
    try:
        settings = Settings(
            smtp_port=port,
            smtp_username="postmaster@mg.shop.example",
            smtp_password="relay-password",
        )
        message = RenderedMessage("Замовлення прийнято", "Текст\n", "<p>Текст</p>", "", "", "")
        await Mailer(settings).send(to="iryna@example.com", message=message, message_id="<1@o>")
        assert b"Message-ID: <1@o>" in received[0]
        wrong = settings.model_copy(update={"smtp_password": "not-it"})
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await Mailer(wrong).send(to="iryna@example.com", message=message, message_id="<2@o>")
        assert len(received) == 1
    finally:
        relay.stop()
