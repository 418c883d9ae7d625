"""LiqPay's API 3 as the shop sees it (devstack/fixtures/liqpay: the shapes): the checkout
(`/liqpay/api/3/checkout`, the signed form, redirected to a page with Pay and Fail),
`/liqpay/api/request` (`status`, `refund`: whole or partial) and callbacks to `server_url`
as a form of `data` and `signature`, signed with the devstack's private key. Autopilot pays
each checkout. `/liqpay/sim/payments/{order_id}/{status}` sends any status by hand: `failure`
(with `err_code`), `wait_secure` (on its way), `reversed` (a refund made in LiqPay's own
cabinet, `amount`), `sandbox`."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from activities.payment_gateways.liqpay import decode, read_signed, signed_form
from devstack.fixtures import fixture
from devstack.simulators.state import PAGES, Simulators, keep, log, sim_of, step
from schema.webhooks import BadSignature

liqpay = APIRouter(prefix="/liqpay", tags=["liqpay"])


LIQPAY = keep("liqpay", dict[str, dict[str, Any]])


def _book(sim: Simulators) -> dict[str, dict[str, Any]]:
    """Every checkout by its order_id, as plain data."""
    return LIQPAY.of(sim)


def _key(sim: Simulators) -> str:
    return sim.settings.liqpay_private_key


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    body = {**fixture("liqpay", "error_response")["body"], "err_code": code}
    return JSONResponse({**body, "err_description": description}, status_code=status)


async def _signed(request: Request, sim: Simulators) -> dict[str, Any]:
    body = await request.body() if request.method == "POST" else request.url.query.encode()
    try:
        return read_signed(_key(sim), body)
    except BadSignature as exc:
        raise HTTPException(400, f"invalid_signature: {exc}") from exc


def _payment(sim: Simulators, order_id: str) -> dict[str, Any]:
    item = _book(sim).get(order_id)
    if item is None:
        raise HTTPException(404, "payment_not_found")
    return item


def _callback_data(item: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    data = fixture("liqpay", "callback_success")["decoded"]
    data.update(
        amount=float(item["amount"]),
        currency=item["currency"],
        description=item["description"],
        order_id=item["order_id"],
        payment_id=item["payment_id"],
        transaction_id=item["payment_id"],
        public_key=item["public_key"],
        create_date=item["created_ms"],
        end_date=now,
        status=status,
        err_code="",
        err_description="",
    )
    data.update(extra)
    return data


async def _report(sim: Simulators, item: dict[str, Any], status: str, **extra: Any) -> int:
    """Tell the shop (`server_url`) as LiqPay does: a form of data and signature."""
    form = signed_form(_key(sim), _callback_data(item, status, **extra))
    response = await sim.http.post(item["server_url"], data=form)
    sim.books.delivered.append(
        {"url": item["server_url"], "payload": decode(form["data"]), "status": response.status_code}
    )
    log.info("liqpay callback", status=status, answered=response.status_code)
    return response.status_code


async def _settle(sim: Simulators, item: dict[str, Any], status: str, err_code: str = "") -> int:
    if item["status"] not in ("created", "failure", "error"):
        raise HTTPException(409, f"the payment is {item['status']}")
    extra: dict[str, Any] = {}
    if status in ("failure", "error"):
        failure = fixture("liqpay", "callback_failure")["decoded"]
        extra = {
            "err_code": err_code or failure["err_code"],
            "err_description": err_code or failure["err_description"],
        }
    answered = await _report(sim, item, status, **extra)
    item["status"] = status  # once told: a step retried after a restart tells it again
    return answered


@step
async def _autopay(sim: Simulators, order_id: str) -> None:
    """The autopilot's customer pays (unless the payment was settled meanwhile)."""
    item = _book(sim)[order_id]
    if item["status"] == "created":
        await _settle(sim, item, "sandbox" if item["sandbox"] else "success")


@step
async def _reversed(sim: Simulators, order_id: str, amount: str) -> None:
    """The callback of a refund, after its answer."""
    await _report(sim, _book(sim)[order_id], "reversed", refund_amount=float(amount))


@liqpay.api_route("/api/3/checkout", methods=["GET", "POST"], response_model=None)
async def checkout(request: Request) -> RedirectResponse | JSONResponse:
    """The signed checkout form (or the same as a link): answered with the payment page."""
    sim = sim_of(request)
    params = await _signed(request, sim)
    if params.get("action") != "pay" or params.get("version") != 3:
        return _error("err_path", "only version 3 action pay is simulated")
    order_id = str(params["order_id"])
    item = _book(sim).get(order_id)
    if item is None:
        item = {
            "order_id": order_id,
            "token": f"i{uuid.uuid4().int % 10**10:010d}",
            "payment_id": uuid.uuid4().int % 10**10,
            "public_key": params["public_key"],
            "amount": str(Decimal(str(params["amount"]))),
            "currency": params["currency"],
            "description": params["description"],
            "server_url": params.get("server_url", ""),
            "result_url": params.get("result_url", ""),
            "expired_date": params.get("expired_date", ""),
            "sandbox": params.get("sandbox") == "1",
            "status": "created",
            "refunded": "0.00",
            "created_ms": int(time.time() * 1000),
        }
        _book(sim)[order_id] = item
        if sim.autopilot:
            sim.later(sim.step, _autopay, order_id=order_id)
    language = params.get("language", "uk")
    return RedirectResponse(f"{request.base_url}liqpay/{language}/checkout/{item['token']}", 302)


def _by_token(sim: Simulators, token: str) -> dict[str, Any]:
    item = next((p for p in _book(sim).values() if p["token"] == token), None)
    if item is None:
        raise HTTPException(404, "no such checkout")
    return item


@liqpay.get("/{language}/checkout/{token}", response_class=HTMLResponse)
async def checkout_page(language: str, token: str, request: Request) -> HTMLResponse:
    item = _by_token(sim_of(request), token)
    return PAGES.TemplateResponse(
        request,
        "checkout.html",
        {
            "provider": "LiqPay",
            **item,
            "pay": f"/liqpay/checkout/{token}/succeed",
            "fail": f"/liqpay/checkout/{token}/fail",
        },
    )


@liqpay.post("/checkout/{token}/{outcome}")
async def pay(token: str, outcome: str, request: Request) -> dict[str, Any]:
    """The payment page's buttons (and tests): pay, or fail (`err_code`, default `limit`)."""
    sim = sim_of(request)
    item = _by_token(sim, token)
    if outcome not in ("succeed", "fail"):
        raise HTTPException(404, "no such outcome")
    status = ("sandbox" if item["sandbox"] else "success") if outcome == "succeed" else "failure"
    answered = await _settle(sim, item, status, request.query_params.get("err_code", ""))
    return {"order_id": item["order_id"], "status": item["status"], "webhook_status": answered}


@liqpay.post("/api/request", response_model=None)
async def api_request(request: Request) -> dict[str, Any] | JSONResponse:
    """`status` and `refund` (whole or part of what is left), as LiqPay answers them."""
    sim = sim_of(request)
    params = await _signed(request, sim)
    item = _book(sim).get(str(params.get("order_id")))
    if item is None:
        return _error("payment_not_found", "Payment is not found", 200)
    if params.get("action") == "status":
        body = fixture("liqpay", "status_response")["body"]
        body.update(_callback_data(item, item["status"]), refund_amount=float(item["refunded"]))
        return body
    if params.get("action") != "refund":
        return _error("err_path", "only status and refund are simulated")
    amount = Decimal(str(params.get("amount") or item["amount"]))
    left = Decimal(item["amount"]) - Decimal(item["refunded"])
    if item["status"] not in ("success", "sandbox", "reversed") or not 0 < amount <= left:
        return _error("payment_err_status", f"cannot refund {amount}: {left} is left", 200)
    item["refunded"] = str(Decimal(item["refunded"]) + amount)
    if amount == left:
        item["status"] = "reversed"
    body = fixture("liqpay", "refund_response")["body"]
    body.update(
        payment_id=item["payment_id"],
        order_id=item["order_id"],
        amount=float(amount),
        currency=item["currency"],
        public_key=item["public_key"],
    )
    sim.later(0, _reversed, order_id=item["order_id"], amount=str(amount))
    return body


@liqpay.get("/sim/payments")
async def payments(request: Request) -> list[dict[str, Any]]:
    """Every checkout, oldest first."""
    return list(_book(sim_of(request)).values())


@liqpay.post("/sim/payments/{order_id}/{status}")
async def drive(order_id: str, status: str, request: Request) -> dict[str, Any]:
    """Any callback by hand: `failure?err_code=`, `wait_secure`, `reversed?amount=` (a refund
    made in LiqPay's cabinet, not asked through orderflow), `success`, `sandbox`."""
    sim = sim_of(request)
    item = _payment(sim, order_id)
    query = request.query_params
    if status in ("success", "sandbox", "failure", "error"):
        answered = await _settle(sim, item, status, query.get("err_code", ""))
    elif status == "reversed":
        amount = Decimal(query.get("amount") or item["amount"])
        item["refunded"] = str(Decimal(item["refunded"]) + amount)
        answered = await _report(sim, item, "reversed", refund_amount=float(amount))
    else:
        answered = await _report(sim, item, status)
    return {"order_id": order_id, "status": item["status"], "webhook_status": answered}
