"""Mailgun's webhook signature (documentation.mailgun.com, Securing Webhooks): every event
carries `signature: {timestamp, token, signature}`, the signature being the hex
HMAC-SHA256 of the timestamp and the token, joined with nothing between, keyed with the
account's HTTP webhook signing key. The API verifies it (and the timestamp's age, and that
the token is new); the devstack's Mailgun simulator signs."""

from __future__ import annotations

import hashlib
import hmac
import time

from schema.webhooks import BadSignature

# How old a signature may be. Mailgun retries an event for 8 hours, and its documentation does
# not say whether a retry is signed anew; the token, kept once taken, is what stops a replay.
TOLERANCE_SECONDS = 9 * 3600


def signature(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify(
    key: str,
    timestamp: str,
    token: str,
    given: str,
    tolerance_seconds: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raises BadSignature unless Mailgun signed this, within the tolerance window."""
    if not hmac.compare_digest(signature(key, timestamp, token), given):
        raise BadSignature("the signature does not match the timestamp and token")
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        raise BadSignature("signature timestamp outside the tolerance window (stale or replayed)")
