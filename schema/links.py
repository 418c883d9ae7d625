"""The links a customer gets in messages: signed, single-purpose, expiring.

A link carries the order id and the moment it was issued, signed with HMAC-SHA256 under a
salt per purpose (a feedback link cannot open a stock choice) and checked in constant time
(itsdangerous). The order id alone opens and decides nothing. Rotation: links are signed
with the current secret and still accepted under the previous ones until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner


class LinkPurpose(StrEnum):
    STATUS = "status"  # the order's status page, and what the customer may do there
    FEEDBACK = "feedback"  # the answer to the feedback request
    STOCK_CHOICE = "stock_choice"  # the choice about missing items


class BadLink(Exception):
    """The link is not one we issued for this purpose (tampered, or for something else)."""


class ExpiredLink(BadLink):
    """The link was ours, but it is too old."""


def _encode(order_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(order_id.bytes).rstrip(b"=").decode()


def _decode(value: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


class CustomerLinks:
    def __init__(self, secret: str, previous: list[str], lifetime: timedelta) -> None:
        self._keys = [*previous, secret]  # itsdangerous signs with the last, accepts all
        self._lifetime = lifetime

    def _signer(self, purpose: LinkPurpose) -> TimestampSigner:
        return TimestampSigner(
            self._keys, salt=f"orderflow.link.{purpose.value}", digest_method=hashlib.sha256
        )

    def token(self, purpose: LinkPurpose, order_id: uuid.UUID) -> str:
        return self._signer(purpose).sign(_encode(order_id)).decode()

    def order_of(self, purpose: LinkPurpose, token: str) -> uuid.UUID:
        """The order a link opens; raises ExpiredLink or BadLink."""
        try:
            value = self._signer(purpose).unsign(token, max_age=int(self._lifetime.total_seconds()))
            return _decode(value.decode())
        except SignatureExpired as exc:
            raise ExpiredLink("this link has expired") from exc
        except (BadSignature, ValueError, UnicodeError) as exc:
            raise BadLink("this link is not valid") from exc
