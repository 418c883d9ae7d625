"""Stripe as the shop sees it (devstack/fixtures/stripe: the shapes): Checkout Sessions
(`/stripe/v1/checkout/sessions`: create, retrieve with `expand[]`, expire), refunds
(`/stripe/v1/refunds`, whole or part, `pending` until the `refund.updated` event), each POST
answered once per `Idempotency-Key` (the same key with other fields is refused, as Stripe
does). Calls need the devstack's secret key. Events go to the shop's endpoint
(`{ORDERFLOW_PUBLIC_URL}/v1/webhooks/stripe`, as registered in Stripe's dashboard), signed
`Stripe-Signature` with the devstack's webhook secret. Autopilot pays each session; by hand:
the hosted page's Pay and Fail, `/stripe/sim/sessions/{id}/pay`, `…/fail?decline_code=…`;
`/stripe/sim/keys` lists the Idempotency-Keys it was sent."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from activities.payment_gateways import from_minor_units
from activities.payment_gateways.stripe import SIGNATURE_HEADER
from devstack.fixtures import fixture
from devstack.simulators.state import PAGES, Simulators, keep, log, sim_of, step
from schema.webhooks import sign

stripe = APIRouter(prefix="/stripe", tags=["stripe"])


class Refused(Exception):
    """Stripe's error answer: `{"error": {type, code, param, message}}` with its status."""

    def __init__(self, status: int, message: str, param: str = "", code: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def answer(self) -> JSONResponse:
        error = fixture("stripe", "error_response")["body"]["error"]
        error.update(
            type="invalid_request_error" if self.status != 401 else "authentication_error",
            code=self.code or None,
            param=self.param or None,
            message=self.message,
        )
        return JSONResponse({"error": error}, status_code=self.status)


STRIPE = keep("stripe", dict[str, dict[str, Any]])


def _book(sim: Simulators) -> dict[str, dict[str, Any]]:
    """Sessions, PaymentIntents, refunds and idempotent answers, as plain data."""
    book = STRIPE.of(sim)
    for part in ("sessions", "intents", "refunds", "keys"):
        book.setdefault(part, {})
    return book


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


async def _fields(request: Request) -> dict[str, str]:
    sim = sim_of(request)
    if request.headers.get("authorization") != f"Bearer {sim.settings.stripe_secret_key}":
        raise Refused(401, "Invalid API Key provided")
    return {key: str(value) for key, value in (await request.form()).items()}


def _once(sim: Simulators, request: Request, fields: dict[str, str], make: Any) -> Any:
    """Stripe's idempotency: a repeated key gets the first answer; with other fields, 400."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return make()
    keys = _book(sim)["keys"]
    if key in keys:
        if keys[key]["fields"] != fields or keys[key]["path"] != request.url.path:
            raise Refused(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with.",
                code="idempotency_error",
            )
        return keys[key]["answer"]
    answer = make()
    keys[key] = {"path": request.url.path, "fields": fields, "answer": answer}
    return answer


def _session(sim: Simulators, session_id: str) -> dict[str, Any]:
    session = _book(sim)["sessions"].get(session_id)
    if session is None:
        raise Refused(404, f"No such checkout.session: '{session_id}'", "id", "resource_missing")
    return session


async def _event(sim: Simulators, name: str, obj: dict[str, Any]) -> int:
    """The event `name` (its fixture's envelope) about `obj`, signed and sent to the shop."""
    event = fixture("stripe", f"event_{name.replace('.', '_')}")["event"]
    event.update(id=_id("evt"), created=int(time.time()), data={"object": obj})
    body = json.dumps(event).encode()
    url = f"{sim.settings.public_url}/v1/webhooks/stripe"
    response = await sim.http.post(
        url,
        content=body,
        headers={
            SIGNATURE_HEADER: sign(sim.settings.stripe_webhook_secret, body),
            "content-type": "application/json",
        },
    )
    sim.books.delivered.append({"url": url, "payload": event, "status": response.status_code})
    log.info("stripe event", type=event["type"], status=response.status_code)
    return response.status_code


def _intent(sim: Simulators, session: dict[str, Any]) -> dict[str, Any]:
    """The session's PaymentIntent, made on the first attempt to pay."""
    intents = _book(sim)["intents"]
    if session["payment_intent"] is None:
        made = fixture("stripe", "event_payment_intent_succeeded")["event"]["data"]["object"]
        made.update(
            id=_id("pi"),
            amount=session["amount_total"],
            amount_received=0,
            currency=session["currency"],
            metadata=session["intent_metadata"],
            latest_charge=None,
            status="requires_payment_method",
        )
        intents[made["id"]] = made
        session["payment_intent"] = made["id"]
    intent: dict[str, Any] = intents[session["payment_intent"]]
    return intent


def _charge(intent: dict[str, Any]) -> dict[str, Any]:
    charge = fixture("stripe", "checkout_session_paid")["body"]["payment_intent"]["latest_charge"]
    charge.update(
        id=_id("ch"),
        amount=intent["amount"],
        amount_captured=intent["amount"],
        amount_refunded=0,
        currency=intent["currency"],
        payment_intent=intent["id"],
    )
    return charge


def _public(session: dict[str, Any]) -> dict[str, Any]:
    """The session as Stripe shows it (without what the simulator keeps beside it)."""
    return {k: v for k, v in session.items() if k not in ("product", "intent_metadata")}


async def _pay(sim: Simulators, session: dict[str, Any]) -> list[int]:
    if session["status"] != "open":
        raise Refused(400, f"This Checkout Session is {session['status']}.")
    intent = _intent(sim, session)
    charge = _charge(intent)
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge,
        last_payment_error=None,
    )
    session.update(status="complete", payment_status="paid", url=None)
    paid = {**intent, "latest_charge": charge["id"]}
    return [
        await _event(sim, "payment_intent.succeeded", paid),
        await _event(sim, "checkout.session.completed", _public(session)),
    ]


async def _fail(sim: Simulators, session: dict[str, Any], decline_code: str) -> list[int]:
    if session["status"] != "open":
        raise Refused(400, f"This Checkout Session is {session['status']}.")
    intent = _intent(sim, session)
    failed = fixture("stripe", "event_payment_intent_payment_failed")["event"]["data"]["object"]
    error = {**failed["last_payment_error"], "decline_code": decline_code}
    intent.update(last_payment_error=error, status="requires_payment_method")
    return [await _event(sim, "payment_intent.payment_failed", {**intent, "latest_charge": None})]


@stripe.post("/v1/checkout/sessions")
async def create_session(request: Request) -> Any:
    sim = sim_of(request)
    try:
        fields = await _fields(request)
        now = int(time.time())
        for name in (
            "mode",
            "line_items[0][quantity]",
            "line_items[0][price_data][currency]",
            "line_items[0][price_data][unit_amount]",
            "success_url",
        ):
            if not fields.get(name):
                raise Refused(400, f"Missing required param: {name}.", name, "parameter_missing")
        expires_at = int(fields.get("expires_at") or now + 86400)
        if not now + 1800 <= expires_at <= now + 86400:
            raise Refused(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                "expires_at",
                "parameter_invalid_integer",
            )

        def make() -> dict[str, Any]:
            session = fixture("stripe", "checkout_session")["body"]
            amount = int(fields["line_items[0][price_data][unit_amount]"]) * int(
                fields["line_items[0][quantity]"]
            )
            session_id = _id("cs_test")
            session.update(
                id=session_id,
                amount_subtotal=amount,
                amount_total=amount,
                client_reference_id=fields.get("client_reference_id"),
                created=now,
                currency=fields["line_items[0][price_data][currency]"],
                expires_at=expires_at,
                metadata={"order_id": fields.get("metadata[order_id]")},
                success_url=fields["success_url"],
                url=f"{request.base_url}stripe/pay/{session_id}",
            )
            _book(sim)["sessions"][session_id] = {
                **session,
                "product": fields.get("line_items[0][price_data][product_data][name]", ""),
                "intent_metadata": {
                    "order_id": fields.get("payment_intent_data[metadata][order_id]")
                },
            }
            if sim.autopilot:
                sim.later(sim.step, _autopay, session_id=session_id)
            return _public(_book(sim)["sessions"][session_id])

        return _once(sim, request, fields, make)
    except Refused as refused:
        return refused.answer()


@stripe.get("/v1/checkout/sessions/{session_id}")
async def retrieve_session(session_id: str, request: Request) -> Any:
    sim = sim_of(request)
    try:
        if request.headers.get("authorization") != f"Bearer {sim.settings.stripe_secret_key}":
            raise Refused(401, "Invalid API Key provided")
        session = _public(_session(sim, session_id))
        expand = request.query_params.getlist("expand[]")
        intent = _book(sim)["intents"].get(session["payment_intent"])
        if intent is not None and any(e.startswith("payment_intent") for e in expand):
            charge = intent["latest_charge"]
            if "payment_intent.latest_charge" not in expand and charge is not None:
                charge = charge["id"]
            session["payment_intent"] = {**intent, "latest_charge": charge}
        return session
    except Refused as refused:
        return refused.answer()


@stripe.post("/v1/checkout/sessions/{session_id}/expire")
async def expire_session(session_id: str, request: Request) -> Any:
    sim = sim_of(request)
    try:
        fields = await _fields(request)
        session = _session(sim, session_id)

        def make() -> dict[str, Any]:
            if session["status"] != "open":
                raise Refused(400, f"This Checkout Session is {session['status']}.")
            session.update(status="expired", url=None)
            sim.later(0, _expired, session_id=session_id)
            return _public(session)

        return _once(sim, request, fields, make)
    except Refused as refused:
        return refused.answer()


@stripe.post("/v1/refunds")
async def create_refund(request: Request) -> Any:
    sim = sim_of(request)
    try:
        fields = await _fields(request)
        intent = _book(sim)["intents"].get(fields.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            raise Refused(
                400, "This PaymentIntent has no successful charge to refund.", "payment_intent"
            )
        charge = intent["latest_charge"]

        def make() -> dict[str, Any]:
            amount = int(fields.get("amount") or charge["amount"] - charge["amount_refunded"])
            left = charge["amount"] - charge["amount_refunded"]
            if not 0 < amount <= left:
                currency = charge["currency"].upper()
                raise Refused(
                    400,
                    f"Refund amount ({currency} {from_minor_units(amount, currency)}) is greater "
                    f"than unrefunded amount on charge ({currency} "
                    f"{from_minor_units(left, currency)})",
                    "amount",
                    "amount_too_large",
                )
            refund = fixture("stripe", "refund")["body"]
            refund.update(
                id=_id("re"),
                amount=amount,
                charge=charge["id"],
                created=int(time.time()),
                currency=charge["currency"],
                metadata={"order_id": fields.get("metadata[order_id]")},
                payment_intent=intent["id"],
                status="pending",
            )
            charge["amount_refunded"] += amount  # held from now: no second refund of it
            _book(sim)["refunds"][refund["id"]] = refund
            sim.later(0, _settle_refund, refund_id=refund["id"])
            return dict(refund)

        return _once(sim, request, fields, make)
    except Refused as refused:
        return refused.answer()


@step
async def _autopay(sim: Simulators, session_id: str) -> list[int]:
    return await _pay(sim, _book(sim)["sessions"][session_id])


@step
async def _expired(sim: Simulators, session_id: str) -> int:
    return await _event(sim, "checkout.session.expired", _public(_session(sim, session_id)))


@step
async def _settle_refund(sim: Simulators, refund_id: str) -> int:
    refund = _book(sim)["refunds"][refund_id]
    refund.update(status="succeeded", balance_transaction=_id("txn"))
    return await _event(sim, "refund.updated", dict(refund))


@stripe.get("/pay/{session_id}", response_class=HTMLResponse, response_model=None)
async def hosted_page(session_id: str, request: Request) -> HTMLResponse | JSONResponse:
    try:
        session = _session(sim_of(request), session_id)
    except Refused as refused:
        return refused.answer()
    currency = session["currency"].upper()
    return PAGES.TemplateResponse(
        request,
        "checkout.html",
        {
            "provider": "Stripe Checkout",
            "description": session["product"],
            "amount": from_minor_units(session["amount_total"], currency),
            "currency": currency,
            "status": f"{session['status']}, {session['payment_status']}",
            "pay": f"/stripe/sim/sessions/{session_id}/pay",
            "fail": f"/stripe/sim/sessions/{session_id}/fail",
        },
    )


@stripe.get("/sim/sessions")
async def sessions(request: Request) -> list[dict[str, Any]]:
    return [_public(s) for s in _book(sim_of(request))["sessions"].values()]


@stripe.get("/sim/refunds")
async def refunds(request: Request) -> list[dict[str, Any]]:
    return list(_book(sim_of(request))["refunds"].values())


@stripe.post("/sim/sessions/{session_id}/{action}")
async def drive(session_id: str, action: str, request: Request) -> Any:
    """`pay`, or `fail` (`decline_code`, default insufficient_funds): the events' answers."""
    sim = sim_of(request)
    try:
        session = _session(sim, session_id)
        if action == "pay":
            answered = await _pay(sim, session)
        elif action == "fail":
            code = request.query_params.get("decline_code", "insufficient_funds")
            answered = await _fail(sim, session, code)
        else:
            raise Refused(404, f"no such action: {action} (pay, fail)")
        return {"id": session_id, "status": session["status"], "webhook_status": answered}
    except Refused as refused:
        return refused.answer()


@stripe.get("/sim/keys")
async def keys(request: Request) -> list[dict[str, Any]]:
    """Every Idempotency-Key the simulator was sent, with the path it came with (once each)."""
    return [{"key": k, "path": v["path"]} for k, v in _book(sim_of(request))["keys"].items()]
