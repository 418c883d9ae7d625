"""An SMTP sink on loopback that stores every message it accepts in a Maildir."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def open_maildir(path: Path) -> mailbox.Maildir:
    for sub in ("new", "cur", "tmp"):  # Maildir(create=True) skips an existing empty folder
        (path / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


class _MaildirHandler:
    def __init__(self, maildir: Path) -> None:
        self.maildir = open_maildir(maildir)
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.maildir.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class MailSink:
    """`with MailSink(dir, port):` accepts mail on 127.0.0.1:port into dir/{new,cur,tmp}."""

    def __init__(self, maildir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.maildir = maildir
        self.port = port
        self._handler = _MaildirHandler(maildir)
        self._controller = Controller(self._handler, hostname=host, port=port)

    def refuse(self, address: str) -> None:
        """From now on answer 550 to `address`, as a server refuses an unknown mailbox."""
        self._handler.refused.add(address.lower())

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """Every message in the Maildir, parsed (oldest first)."""
    box = open_maildir(maildir)
    return [
        message_from_bytes(box.get_bytes(key), policy=policy.default)  # type: ignore[misc]
        for key in sorted(box.keys())
    ]
