"""The links a customer gets in messages: signed, single-purpose, expiring.

A link carries an id (an order's; for the "my orders" list, the customer identity's — never
an e-mail) and the moment it was issued, signed with HMAC-SHA256 under a salt per purpose (a
feedback link cannot open a stock choice) and checked in constant time (itsdangerous). The
id alone opens and decides nothing. Rotation: links are signed with the current secret and
still accepted under the previous ones until they expire.

The status page's link (`STATUS`) is the order's key for its customer: it opens the page and
everything the customer may do there (pay, choose about missing items, cancel, answer the
feedback request). The feedback and stock-choice links open only their own page.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode


class LinkPurpose(StrEnum):
    STATUS = "status"  # the order's status page, and what the customer may do there
    FEEDBACK = "feedback"  # the answer to the feedback request
    STOCK_CHOICE = "stock_choice"  # the choice about missing items
    ORDER_LIST = "order_list"  # every order of one e-mail ("my orders"); short-lived


class BadLink(Exception):
    """The link is not one we issued for this purpose (tampered, or for something else)."""


class ExpiredLink(BadLink):
    """The link was ours, but it is too old."""


def _encode(subject: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(subject.bytes).rstrip(b"=").decode()


def _canonical(signature: str) -> None:
    """The signature exactly as we write it: base64's last character carries bits that
    decoding ignores, so without this a link with that character changed would still open."""
    if base64_encode(base64_decode(signature)).decode() != signature:
        raise BadSignature("the signature is not in its canonical form")


def _decode(value: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


class CustomerLinks:
    def __init__(
        self,
        secret: str,
        previous: list[str],
        lifetime: timedelta,
        lifetimes: Mapping[LinkPurpose, timedelta] | None = None,
    ) -> None:
        self._keys = [*previous, secret]  # itsdangerous signs with the last, accepts all
        self._lifetime = lifetime
        self._lifetimes = dict(lifetimes or {})  # purposes that live shorter than `lifetime`

    def _signer(self, purpose: LinkPurpose) -> TimestampSigner:
        return TimestampSigner(
            self._keys, salt=f"orderflow.link.{purpose.value}", digest_method=hashlib.sha256
        )

    def token(self, purpose: LinkPurpose, subject: uuid.UUID) -> str:
        """A link's token: `subject` is the order's id (the customer's for ORDER_LIST)."""
        return self._signer(purpose).sign(_encode(subject)).decode()

    def order_of(self, purpose: LinkPurpose | Iterable[LinkPurpose], token: str) -> uuid.UUID:
        """The order a link opens, signed for `purpose` (or any of several); raises
        ExpiredLink or BadLink."""
        purposes = [purpose] if isinstance(purpose, LinkPurpose) else list(purpose)
        expired: ExpiredLink | None = None
        for each in purposes:
            try:
                return self._opened(each, token)
            except ExpiredLink as exc:
                expired = exc
            except BadLink:
                continue
        raise expired or BadLink("this link is not valid")

    def customer_of(self, token: str) -> uuid.UUID:
        """The customer identity a "my orders" link opens; raises ExpiredLink or BadLink."""
        return self._opened(LinkPurpose.ORDER_LIST, token)

    def _opened(self, purpose: LinkPurpose, token: str) -> uuid.UUID:
        lifetime = self._lifetimes.get(purpose, self._lifetime)
        try:
            value = self._signer(purpose).unsign(token, max_age=int(lifetime.total_seconds()))
            _canonical(token.rpartition(".")[2])
            return _decode(value.decode())
        except SignatureExpired as exc:
            raise ExpiredLink("this link has expired") from exc
        except (BadSignature, ValueError, UnicodeError) as exc:
            raise BadLink("this link is not valid") from exc
