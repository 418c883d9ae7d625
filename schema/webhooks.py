"""Signed webhooks: HMAC-SHA256 over `{timestamp}.{body}`, sent as `X-Orderflow-Signature: t=...,v1=...`.

The providers (and the devstack's simulators) sign; the API verifies, with a tolerance
window against stale or replayed deliveries. Stripe signs its events the same way
(`Stripe-Signature`): while its endpoint secret is being rolled, the header carries a `v1`
for each secret, and any one of them may match.
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
    secret: str,
    body: bytes,
    header: str | None,
    tolerance_seconds: int,
    now: float | None = None,
    *,
    name: str = HEADER,  # the header's name, for the refusal
) -> None:
    if not header:
        raise BadSignature(f"missing {name} header")
    parts = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    given = [value for key, value in parts if key == "v1"]
    try:
        [timestamp] = [int(value) for key, value in parts if key == "t"]
    except ValueError:
        raise BadSignature(f"malformed {name} header") from None
    if not given:
        raise BadSignature(f"malformed {name} header: no v1 signature")
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        raise BadSignature("signature timestamp outside the tolerance window (stale or replayed)")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Every candidate is compared (no early exit): the time taken says nothing of which matched.
    if not sum(hmac.compare_digest(expected, value) for value in given):
        raise BadSignature("signature does not match the body")
