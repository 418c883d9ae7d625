"""Signed webhooks: HMAC-SHA256 over `{timestamp}.{body}`, sent as `X-Orderflow-Signature: t=...,v1=...`.

The providers (and the devstack's simulators) sign; the API verifies, with a tolerance
window against stale or replayed deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Orderflow-Signature"


class BadSignature(Exception):
    pass


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    secret: str, body: bytes, header: str | None, tolerance_seconds: int, now: float | None = None
) -> None:
    if not header:
        raise BadSignature(f"missing {HEADER} header")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise BadSignature(f"malformed {HEADER} header") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        raise BadSignature("signature timestamp outside the tolerance window (stale or replayed)")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise BadSignature("signature does not match the body")
