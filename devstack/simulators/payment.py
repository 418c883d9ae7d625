"""A payment provider: payment links, a payment page with Pay and Fail buttons, refunds
(whole or partial), signed webhooks."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import HTMLResponse

from devstack.simulators.state import (
    PAGES,
    Payment,
    Simulators,
    once,
    sim_of,
    step,
)

# --- payment ------------------------------------------------------------------------------

payment = APIRouter(prefix="/payment", tags=["payment"])


async def _payment_outcome(sim: Simulators, item: Payment, outcome: str, reason: str = "") -> int:
    if item.status not in ("pending", "failed"):
        raise HTTPException(409, f"payment is {item.status}")
    status = await sim.webhook(
        item.callback_url,
        sim.settings.payment_webhook_secret,
        {
            "event_id": f"pay-{uuid.uuid4().hex[:12]}",
            "type": f"payment.{outcome}",
            "payment_id": item.payment_id,
            "order_ref": item.order_ref,
            "amount": item.amount,
            "currency": item.currency,
            "reason": reason,
        },
    )
    item.status = outcome  # once told: a step retried after a restart tells it again
    item.attempts.append(outcome)
    return status


@step
async def _autopay(sim: Simulators, payment_id: str) -> None:
    """The autopilot's customer pays (unless the payment was settled meanwhile)."""
    item = sim.books.payments[payment_id]
    if item.status == "pending":
        await _payment_outcome(sim, item, "succeeded")


@payment.post("/v1/payments", status_code=201)
async def create_payment(
    body: dict[str, Any], request: Request, idempotency_key: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)

    def make() -> dict[str, Any]:
        payment_id = f"pay_{uuid.uuid4().hex[:16]}"
        item = Payment(
            payment_id=payment_id,
            order_ref=body["order_ref"],
            order_number=body["order_number"],
            amount=body["amount"],
            currency=body["currency"],
            expires_at=body["expires_at"],
            callback_url=body["callback_url"],
        )
        sim.books.payments[payment_id] = item
        if sim.autopilot:
            sim.later(sim.step, _autopay, payment_id=payment_id)
        return {
            "payment_id": payment_id,
            "url": f"{request.base_url}payment/pay/{payment_id}",
            "status": "pending",
        }

    result: dict[str, Any] = once(sim, f"payment:{idempotency_key}", make)
    return result


@payment.get("/v1/payments/{payment_id}")
async def get_payment(payment_id: str, request: Request) -> dict[str, Any]:
    item = sim_of(request).books.payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    return asdict(item)


@payment.post("/v1/payments/{payment_id}/refunds", status_code=201)
async def refund(
    payment_id: str,
    body: dict[str, Any],
    request: Request,
    idempotency_key: str | None = Header(None),
) -> dict[str, Any]:
    sim = sim_of(request)
    item = sim.books.payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")

    def make() -> dict[str, Any]:
        """Full or partial refunds, never more than was paid in all."""
        if item.status not in ("succeeded", "partially_refunded"):
            raise HTTPException(409, f"payment is {item.status}, not refundable")
        amount, paid, before = Decimal(body["amount"]), Decimal(item.amount), Decimal(item.refunded)
        if amount <= 0 or before + amount > paid:
            raise HTTPException(422, f"refund of {amount} exceeds what is left ({paid - before})")
        item.refunded = str(before + amount)
        item.status = "refunded" if before + amount == paid else "partially_refunded"
        return {"refund_id": f"ref_{uuid.uuid4().hex[:12]}", "amount": body["amount"]}

    first_time = f"refund:{idempotency_key}" not in sim.books.idempotent
    result: dict[str, Any] = once(sim, f"refund:{idempotency_key}", make)
    if first_time:
        await sim.webhook(
            item.callback_url,
            sim.settings.payment_webhook_secret,
            {
                "event_id": f"pay-{uuid.uuid4().hex[:12]}",
                "type": "payment.refunded",
                "payment_id": item.payment_id,
                "refund_id": result["refund_id"],
                "order_ref": item.order_ref,
                "amount": body["amount"],
                "currency": item.currency,
            },
        )
    return result


@payment.post("/v1/payments/{payment_id}/cancel")
async def cancel_payment(payment_id: str, request: Request) -> dict[str, Any]:
    item = sim_of(request).books.payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    if item.status in ("pending", "failed"):
        item.status = "cancelled"
    return asdict(item)


@payment.get("/pay/{payment_id}", response_class=HTMLResponse)
async def payment_page(payment_id: str, request: Request) -> HTMLResponse:
    item = sim_of(request).books.payments.get(payment_id)
    if item is None:
        raise HTTPException(404, "no such payment")
    return PAGES.TemplateResponse(request, "payment.html", {"payment": item})


@payment.post("/pay/{payment_id}/{outcome}")
async def pay(payment_id: str, outcome: str, request: Request) -> dict[str, Any]:
    """The payment page's buttons (and tests): succeed, or fail with a reason."""
    sim = sim_of(request)
    item = sim.books.payments.get(payment_id)
    if item is None or outcome not in ("succeed", "fail"):
        raise HTTPException(404, "no such payment or outcome")
    reason = ""
    if outcome == "fail":
        form = await request.form() if "form" in request.headers.get("content-type", "") else {}
        reason = str(form.get("reason") or request.query_params.get("reason") or "card_declined")
    status = await _payment_outcome(
        sim, item, "succeeded" if outcome == "succeed" else "failed", reason
    )
    return {"payment_id": payment_id, "status": item.status, "webhook_status": status}
