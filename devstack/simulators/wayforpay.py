"""WayForPay as the shop sees it (devstack/fixtures/wayforpay: the shapes): `/wayforpay/api`
takes CREATE_INVOICE, CHECK_STATUS, REFUND (whole or part) and REMOVE_INVOICE, each with its
merchantSignature checked; callbacks to `serviceUrl` are signed likewise and the shop's
`accept` answer is checked too (`accepted` in /sim/webhooks). Autopilot pays each invoice;
by hand: the payment page's Pay and Fail, `/wayforpay/sim/invoices/{reference}/{status}`."""

from __future__ import annotations

import hmac
import json
import time
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from activities.payment_gateways.wayforpay import CALLBACK_FIELDS, sign
from devstack.fixtures import fixture
from devstack.simulators.state import PAGES, Simulators, keep, log, sim_of, step

wayforpay = APIRouter(prefix="/wayforpay", tags=["wayforpay"])


WAYFORPAY = keep("wayforpay", dict[str, dict[str, Any]])


def _book(sim: Simulators) -> dict[str, dict[str, Any]]:
    """Every invoice by its orderReference, as plain data."""
    return WAYFORPAY.of(sim)


@step
async def _autopay(sim: Simulators, reference: str) -> None:
    """The autopilot's customer pays (unless the invoice was settled meanwhile)."""
    item = _book(sim)[reference]
    if item["status"] == "created":
        await _settle(sim, item, "Approved")


@step
async def _refunded(sim: Simulators, reference: str, amount: str) -> None:
    """The callback of a refund, after its answer."""
    await _report(sim, {**_book(sim)[reference], "amount": amount}, "Refunded")


def _secret(sim: Simulators) -> str:
    return sim.settings.wayforpay_secret_key


def _refused(code: int, reason: str) -> dict[str, Any]:
    return {"reason": reason, "reasonCode": code}


async def _report(sim: Simulators, item: dict[str, Any], status: str, **changes: Any) -> int:
    body = json.loads(fixture("wayforpay", "callback_approved")["body"])
    body.update(
        orderReference=item["orderReference"],
        amount=float(item["amount"]),
        currency=item["currency"],
        merchantAccount=item["merchantAccount"],
        transactionStatus=status,
        processingDate=int(time.time()),
        **changes,
    )
    body["merchantSignature"] = sign(_secret(sim), *[body.get(f, "") for f in CALLBACK_FIELDS])
    response = await sim.http.post(item["serviceUrl"], json=body)
    answer = response.json() if response.status_code == 200 else {}
    accepted = answer.get("status") == "accept" and hmac.compare_digest(
        str(answer.get("signature")),
        sign(_secret(sim), answer.get("orderReference"), "accept", answer.get("time")),
    )
    sim.books.delivered.append(
        {
            "url": item["serviceUrl"],
            "payload": body,
            "status": response.status_code,
            "accepted": accepted,
        }
    )
    log.info("wayforpay callback", status=status, answered=response.status_code, accepted=accepted)
    return response.status_code


async def _settle(sim: Simulators, item: dict[str, Any], status: str, code: int = 1100) -> int:
    if item["status"] not in ("created", "Declined"):
        raise HTTPException(409, f"the invoice is {item['status']}")
    reason = "Ok" if code == 1100 else "Declined"
    answered = await _report(sim, item, status, reasonCode=code, reason=reason)
    item["status"] = status  # once told: a step retried after a restart tells it again
    return answered


@wayforpay.post("/api")
async def api(body: dict[str, Any], request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    kind, ref = body.get("transactionType"), str(body.get("orderReference"))
    secret, account = _secret(sim), str(body.get("merchantAccount"))
    if kind == "CREATE_INVOICE":
        names, prices, counts = body["productName"], body["productPrice"], body["productCount"]
        signed = sign(
            secret,
            account,
            body["merchantDomainName"],
            ref,
            body["orderDate"],
            body["amount"],
            body["currency"],
            *names,
            *counts,
            *prices,
        )
    elif kind == "REFUND":
        signed = sign(secret, account, ref, body["amount"], body["currency"])
    else:
        signed = sign(secret, account, ref)
    if not hmac.compare_digest(signed, str(body.get("merchantSignature"))):
        return _refused(1113, "Invalid signature")
    item = _book(sim).get(ref)
    if kind == "CREATE_INVOICE":
        if item is None:
            item = {
                "orderReference": ref,
                "merchantAccount": account,
                "amount": str(body["amount"]),
                "currency": body["currency"],
                "serviceUrl": body.get("serviceUrl", ""),
                "product": names[0],
                "status": "created",
                "refunded": "0.00",
            }
            _book(sim)[ref] = item
            if sim.autopilot:
                sim.later(sim.step, _autopay, reference=ref)
        answer = fixture("wayforpay", "create_invoice_response")["body"]
        return {**answer, "invoiceUrl": f"{request.base_url}wayforpay/pay/{ref}"}
    if item is None:
        return _refused(1112, "Order not found")
    if kind == "CHECK_STATUS":
        answer = fixture("wayforpay", "check_status_response")["body"]
        return {
            **answer,
            "orderReference": ref,
            "amount": float(item["amount"]),
            "currency": item["currency"],
            "transactionStatus": item["status"],
            "refundAmount": float(item["refunded"]),
        }
    if kind == "REMOVE_INVOICE":
        if item["status"] == "created":
            item["status"] = "Expired"
        return {"reason": "Removed", "reasonCode": 1100}
    if kind != "REFUND":
        return _refused(1109, "Format error")
    amount = Decimal(str(body["amount"]))
    left = Decimal(item["amount"]) - Decimal(item["refunded"])
    answer = fixture("wayforpay", "refund_response")["body"]
    if item["status"] not in ("Approved", "Refunded") or not 0 < amount <= left:
        return {
            **answer,
            "orderReference": ref,
            "transactionStatus": "Declined",
            "reasonCode": 1109,
            "reason": "Declined",
        }
    item["refunded"] = str(Decimal(item["refunded"]) + amount)
    item["status"] = "Refunded" if amount == left else item["status"]
    sim.later(0, _refunded, reference=ref, amount=str(amount))
    return {**answer, "orderReference": ref}


@wayforpay.get("/pay/{reference}", response_class=HTMLResponse)
async def payment_page(reference: str, request: Request) -> HTMLResponse:
    item = _book(sim_of(request)).get(reference)
    if item is None:
        raise HTTPException(404, "no such invoice")
    return PAGES.TemplateResponse(
        request,
        "checkout.html",
        {
            "provider": "WayForPay",
            "description": item["product"],
            "amount": item["amount"],
            "currency": item["currency"],
            "status": item["status"],
            "pay": f"/wayforpay/sim/invoices/{reference}/Approved",
            "fail": f"/wayforpay/sim/invoices/{reference}/Declined",
        },
    )


@wayforpay.get("/sim/invoices")
async def invoices(request: Request) -> list[dict[str, Any]]:
    return list(_book(sim_of(request)).values())


@wayforpay.post("/sim/invoices/{reference}/{status}")
async def drive(reference: str, status: str, request: Request) -> dict[str, Any]:
    """`Approved`, `Declined` (`reasonCode`, default 1104), or any other status on its way."""
    sim = sim_of(request)
    item = _book(sim).get(reference)
    if item is None:
        raise HTTPException(404, "no such invoice")
    if status in ("Approved", "Declined"):
        code = 1100 if status == "Approved" else int(request.query_params.get("reasonCode", 1104))
        answered = await _settle(sim, item, status, code)
    else:
        answered = await _report(sim, item, status)
    return {"orderReference": reference, "status": item["status"], "webhook_status": answered}
