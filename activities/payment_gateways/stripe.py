"""Stripe (https://docs.stripe.com/api): form-encoded requests with `Authorization: Bearer
sk_...`, the API version pinned (`Stripe-Version`) and an `Idempotency-Key` on every POST —
Stripe answers a repeated key with the first answer, so a retried refund is sent once.

A payment is a Checkout Session (`POST /v1/checkout/sessions`, mode payment, one line of the
order's total in the currency's minor units, our order id as `client_reference_id` and in the
metadata of the session and of its PaymentIntent); its `url` is the link and its id the
payment's here. A session lives 30 minutes to 24 hours: an order whose policy waits longer is
given Stripe's 24 hours (its link's expiry says so, and the order waits that long).

Stripe reports to the webhook endpoint registered in its dashboard (`/v1/webhooks/stripe`),
each event signed `Stripe-Signature: t=...,v1=...` = hex HMAC-SHA256 of `"{t}.{body}"` with
the endpoint's secret (`whsec_...`), refused beyond 300 s of `t`: the session's events name
the session; the PaymentIntent's and the refund's name the order by their metadata (an order
has one payment). Refunds are `POST /v1/refunds` (the session's PaymentIntent, the amount).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.payment_gateways import (
    CreatedPayment,
    InvalidCallback,
    Notice,
    PaymentNotice,
    PaymentRequest,
    ProviderPayment,
    RefundReceipt,
    from_minor_units,
    minor_units,
)
from activities.providers import Provider
from schema.contracts import PaymentFailure
from schema.vocabulary import ErrorType
from schema.webhooks import verify

API_VERSION = "2024-06-20"
SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300
# Stripe lets a Checkout Session live 30 minutes to 24 hours (`expires_at`; unset: 24 hours).
# The order's own expiry is sent only while it lies well inside that window: a retry must send
# the same fields under its Idempotency-Key (Stripe refuses other ones), so nothing sent may
# depend on the moment of the attempt. Beyond it Stripe's 24 hours hold (and the answer says
# so); before it the order's own timer ends the wait and expires the session.
SHORTEST = timedelta(minutes=31)
LONGEST = timedelta(hours=23)
# Stripe's error `code` and `decline_code` (https://docs.stripe.com/declines/codes) as the
# customer's reason.
FAILURES = {
    "insufficient_funds": PaymentFailure.INSUFFICIENT_FUNDS,
    "expired_card": PaymentFailure.EXPIRED_CARD,
    "authentication_required": PaymentFailure.AUTHENTICATION_FAILED,
    "payment_intent_authentication_failure": PaymentFailure.AUTHENTICATION_FAILED,
    "card_declined": PaymentFailure.CARD_DECLINED,
    "generic_decline": PaymentFailure.CARD_DECLINED,
    "do_not_honor": PaymentFailure.CARD_DECLINED,
    "lost_card": PaymentFailure.CARD_DECLINED,
    "stolen_card": PaymentFailure.CARD_DECLINED,
    "fraudulent": PaymentFailure.CARD_DECLINED,
}


def form(fields: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's form encoding of nested fields: `{"a": {"b": [1]}}` -> `{"a[b][0]": "1"}`."""
    flat: dict[str, str] = {}
    items = enumerate(fields) if isinstance(fields, list) else fields.items()
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping | list):
            flat |= form(value, name)  # type: ignore[arg-type]
        elif value is not None:
            flat[name] = str(value)
    return flat


def _failure(error: Mapping[str, Any] | None) -> str:
    error = error or {}
    for code in (error.get("decline_code"), error.get("code")):
        if code in FAILURES:
            return FAILURES[code].value
    return PaymentFailure.OTHER.value


class StripeGateway:
    name = "stripe"
    takes_refund_key = True  # Idempotency-Key

    def __init__(self, api: Provider, secret_key: str, webhook_secret: str) -> None:
        self._api = api
        self._headers = {"Authorization": f"Bearer {secret_key}", "Stripe-Version": API_VERSION}
        self._webhook_secret = webhook_secret

    async def _post(self, path: str, fields: Mapping[str, Any], key: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._api.call(
            "POST", path, form=form(fields), idempotency_key=key, headers=self._headers
        )
        return answer

    def session(self, request: PaymentRequest, now: datetime) -> dict[str, Any]:
        """The Checkout Session's fields (Stripe's names, before form encoding)."""
        ours = {"order_id": request.order_id}
        within = now + SHORTEST <= request.expires_at <= now + LONGEST
        return {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": minor_units(request.amount, request.currency),
                        "product_data": {"name": f"Order {request.number}"},
                    },
                }
            ],
            "client_reference_id": request.order_id,
            "metadata": ours,
            "payment_intent_data": {"metadata": ours},
            "success_url": request.return_url,
            "expires_at": int(request.expires_at.timestamp()) if within else None,
        }

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        fields = self.session(request, datetime.now(UTC))
        answer = await self._post("/v1/checkout/sessions", fields, request.idempotency_key)
        expires_at = datetime.fromtimestamp(int(answer["expires_at"]), UTC)
        return CreatedPayment(str(answer["id"]), str(answer["url"]), expires_at)

    async def _session(self, session_id: str) -> dict[str, Any]:
        """The session with its PaymentIntent and that one's charge."""
        answer: dict[str, Any] = await self._api.call(
            "GET",
            f"/v1/checkout/sessions/{session_id}",
            params={"expand[]": "payment_intent.latest_charge"},
            headers=self._headers,
        )
        return answer

    async def status(self, payment_id: str) -> ProviderPayment:
        session = await self._session(payment_id)
        currency = str(session["currency"]).upper()
        charge = (session.get("payment_intent") or {}).get("latest_charge") or {}
        outcome = {"paid": Notice.SUCCEEDED}.get(str(session["payment_status"]), Notice.PENDING)
        if session.get("status") == "expired":
            outcome = Notice.EXPIRED
        return ProviderPayment(
            outcome,
            from_minor_units(int(session["amount_total"]), currency),
            currency,
            from_minor_units(int(charge.get("amount_refunded") or 0), currency),
        )

    async def refund(
        self, payment_id: str, amount: Decimal, currency: str, key: str
    ) -> RefundReceipt:
        session = await self._session(payment_id)
        intent = session.get("payment_intent") or {}
        if not intent.get("id"):
            raise ApplicationError(
                f"stripe: session {payment_id} has no payment to refund",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        answer = await self._post(
            "/v1/refunds",
            {
                "payment_intent": intent["id"],
                "amount": minor_units(amount, currency),
                "metadata": {"order_id": (session.get("metadata") or {}).get("order_id")},
            },
            key,
        )
        if answer.get("status") in ("failed", "canceled"):
            raise ApplicationError(
                f"stripe refused the refund: {answer.get('failure_reason') or answer['status']}",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        # `pending`: the `refund.updated` event confirms it.
        return RefundReceipt(str(answer["id"]), confirmed=answer.get("status") == "succeeded")

    async def cancel(self, payment_id: str) -> None:
        """Expire the session while it is open (a paid or expired one stays as it is)."""
        session = await self._session(payment_id)
        if session.get("status") == "open":
            await self._post(
                f"/v1/checkout/sessions/{payment_id}/expire", {}, f"{payment_id}:expire"
            )

    async def read_callback(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        verify(
            self._webhook_secret,
            body,
            headers.get(SIGNATURE_HEADER.lower()),
            TOLERANCE_SECONDS,
            name=SIGNATURE_HEADER,
        )
        try:
            event = json.loads(body)
            kind, item = str(event["type"]), event["data"]["object"]
            return self._notice(event, kind, item)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise InvalidCallback(f"not a Stripe event this shop reads: {exc!r}") from exc

    def _notice(self, event: dict[str, Any], kind: str, item: dict[str, Any]) -> PaymentNotice:
        currency = str(item["currency"]).upper()
        ours = (item.get("metadata") or {}).get("order_id")
        payment_id: str | None = None  # the PaymentIntent's and refunds' events name the order
        refund_id, reason = None, ""
        if kind.startswith("checkout.session."):
            payment_id, ours = str(item["id"]), item.get("client_reference_id") or ours
            amount = int(item["amount_total"])
            outcome = {
                "checkout.session.completed": Notice.SUCCEEDED
                if item["payment_status"] == "paid"
                else Notice.PENDING,
                "checkout.session.async_payment_succeeded": Notice.SUCCEEDED,
                "checkout.session.async_payment_failed": Notice.FAILED,
                "checkout.session.expired": Notice.EXPIRED,
            }[kind]
            status = f"{item['status']}/{item['payment_status']}"
        elif kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            failed = kind == "payment_intent.payment_failed"
            outcome = Notice.FAILED if failed else Notice.SUCCEEDED
            amount = int(item["amount"] if failed else item["amount_received"])
            reason = _failure(item.get("last_payment_error")) if failed else ""
            status = str(item["status"])
        elif kind in ("refund.created", "refund.updated", "charge.refunded"):
            refund = item
            if kind == "charge.refunded":
                # Only API versions before 2022-11-15 list a charge's refunds in the event;
                # without them it is recorded only (the refund's own event confirms it).
                listed = (item.get("refunds") or {}).get("data") or [{"status": "unlisted"}]
                refund = max(listed, key=lambda r: int(r.get("created") or 0))
            status = str(refund["status"])
            outcome = Notice.REFUNDED if status == "succeeded" else Notice.PENDING
            amount = int(refund.get("amount") or item["amount_refunded"])
            refund_id = refund.get("id")
        else:
            raise ValueError(f"event type {kind}")
        return PaymentNotice(
            event_id=str(event["id"]),
            outcome=outcome,
            order_ref=ours,
            payment_id=payment_id,
            amount=from_minor_units(amount, currency),
            currency=currency,
            at=datetime.fromtimestamp(int(event["created"]), UTC),
            reason=reason,
            refund_id=refund_id,
            status=f"{kind}: {status}",
        )
