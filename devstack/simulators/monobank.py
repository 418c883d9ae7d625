"""Monobank acquiring as the shop sees it (devstack/fixtures/monobank: the shapes): invoices
(`/monobank/api/merchant/invoice/create`, `status`, `cancel` whole or partial, `remove`),
the public key (`/api/merchant/pubkey`: a P-256 key of the simulator's own) and webhooks
of the invoice's status signed with it (`X-Sign`). Calls need the devstack's X-Token.
Autopilot pays each invoice (processing, then success). By hand: the payment page's Pay and
Fail, `/monobank/sim/invoices/{id}/{status}`, `…/out-of-order` (success, then the older
processing), `/monobank/sim/rotate-key` (webhooks signed by a new key from then on)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from devstack.fixtures import fixture
from devstack.simulators.state import PAGES, Simulators, keep, log, sim_of, step

monobank = APIRouter(prefix="/monobank", tags=["monobank"])


MONOBANK = keep("monobank", dict[str, Any])


def _book(sim: Simulators) -> dict[str, Any]:
    """Invoices by id and the signing key (PEM), as plain data."""
    book = MONOBANK.of(sim)
    book.setdefault("invoices", {})
    if "key" not in book:
        _new_key(book)
    return book


def _new_key(book: dict[str, Any]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    book["key"] = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_key(book: dict[str, Any]) -> str:
    key = serialization.load_pem_private_key(book["key"].encode(), None)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(pem).decode()


def _check(sim: Simulators, token: str | None) -> None:
    if token != sim.settings.monobank_token:
        raise HTTPException(403, {"errCode": "FORBIDDEN", "errText": "forbidden"})


def _stamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invoice(sim: Simulators, invoice_id: str) -> dict[str, Any]:
    item = _book(sim)["invoices"].get(invoice_id)
    if item is None:
        raise HTTPException(404, {"errCode": "NOT_FOUND", "errText": "invalid 'invoiceId'"})
    return item


def _status_body(item: dict[str, Any]) -> dict[str, Any]:
    body = fixture("monobank", "invoice_status_response")["body"]
    body.update({k: item[k] for k in body if k in item})
    body["cancelList"] = item["cancelList"]
    return body


async def _webhook(
    sim: Simulators, item: dict[str, Any], body: dict[str, Any] | None = None
) -> int:
    raw = json.dumps(body or _status_body(item), ensure_ascii=False).encode()
    key = serialization.load_pem_private_key(_book(sim)["key"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sign = base64.b64encode(key.sign(raw, ec.ECDSA(hashes.SHA256()))).decode()
    response = await sim.http.post(
        item["webHookUrl"],
        content=raw,
        headers={"X-Sign": sign, "content-type": "application/json"},
    )
    sim.books.delivered.append(
        {"url": item["webHookUrl"], "payload": json.loads(raw), "status": response.status_code}
    )
    log.info("monobank webhook", status=json.loads(raw)["status"], answered=response.status_code)
    return response.status_code


async def _move(sim: Simulators, item: dict[str, Any], status: str, **changes: Any) -> int:
    moved = {**item, "status": status, "modifiedDate": _stamp(), **changes}
    if status == "success" and not item["cancelList"]:
        moved["finalAmount"] = item["amount"]
    answered = await _webhook(sim, moved)
    item.update(moved)  # once told: a step retried after a restart tells it again
    return answered


@step
async def _autopay(sim: Simulators, invoice_id: str) -> None:
    """The autopilot's customer pays (unless the invoice was settled meanwhile)."""
    item = _invoice(sim, invoice_id)
    if item["status"] == "created":
        await _move(sim, item, "processing")
    if item["status"] == "processing":
        await _move(sim, item, "success")


@step
async def _moved(sim: Simulators, invoice_id: str, status: str, changes: dict[str, Any]) -> None:
    """The invoice's change and its webhook, after the answer that made it."""
    await _move(sim, _invoice(sim, invoice_id), status, **changes)


@monobank.post("/api/merchant/invoice/create")
async def create_invoice(
    body: dict[str, Any], request: Request, x_token: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)
    _check(sim, x_token)
    if not isinstance(body.get("amount"), int) or body["amount"] <= 0:
        raise HTTPException(400, {"errCode": "BAD_REQUEST", "errText": "invalid 'amount'"})
    invoice_id = f"p2_{uuid.uuid4().hex[:10]}"
    info = body.get("merchantPaymInfo") or {}
    item = {
        "invoiceId": invoice_id,
        "status": "created",
        "amount": body["amount"],
        "ccy": body.get("ccy", 980),
        "finalAmount": 0,
        "createdDate": _stamp(),
        "modifiedDate": _stamp(),
        "reference": info.get("reference", ""),
        "destination": info.get("destination", ""),
        "webHookUrl": body.get("webHookUrl", ""),
        "redirectUrl": body.get("redirectUrl", ""),
        "validity": body.get("validity", 86400),
        "cancelList": [],
    }
    _book(sim)["invoices"][invoice_id] = item
    if sim.autopilot:
        sim.later(sim.step, _autopay, invoice_id=invoice_id)
    answer = fixture("monobank", "invoice_create_response")["body"]
    return {
        **answer,
        "invoiceId": invoice_id,
        "pageUrl": f"{request.base_url}monobank/pay/{invoice_id}",
    }


@monobank.get("/api/merchant/invoice/status")
async def invoice_status(
    invoiceId: str, request: Request, x_token: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)
    _check(sim, x_token)
    return _status_body(_invoice(sim, invoiceId))


@monobank.post("/api/merchant/invoice/cancel", response_model=None)
async def cancel_invoice(
    body: dict[str, Any], request: Request, x_token: str | None = Header(None)
) -> dict[str, Any] | JSONResponse:
    """A refund of all (no amount) or part of what is left; the invoice's webhook follows."""
    sim = sim_of(request)
    _check(sim, x_token)
    item = _invoice(sim, str(body.get("invoiceId")))
    refunded = sum(c["amount"] for c in item["cancelList"] if c["status"] == "success")
    amount = int(body.get("amount") or item["amount"] - refunded)
    if item["status"] != "success" or not 0 < amount <= item["amount"] - refunded:
        return JSONResponse(fixture("monobank", "error_response")["body"], status_code=400)
    now = _stamp()
    entry = {
        "status": "success",
        "amount": amount,
        "ccy": item["ccy"],
        "createdDate": now,
        "modifiedDate": now,
        "approvalCode": "662476",
        "rrn": "060189181768",
        "extRef": body.get("extRef", ""),
    }
    item["cancelList"].append(entry)
    changes: dict[str, Any] = {"finalAmount": item["amount"] - refunded - amount}
    status = "reversed" if changes["finalAmount"] == 0 else "success"
    sim.later(0, _moved, invoice_id=item["invoiceId"], status=status, changes=changes)
    answer = fixture("monobank", "invoice_cancel_response")["body"]
    return {**answer, "status": "success", "createdDate": now, "modifiedDate": now}


@monobank.post("/api/merchant/invoice/remove")
async def remove_invoice(
    body: dict[str, Any], request: Request, x_token: str | None = Header(None)
) -> dict[str, Any]:
    sim = sim_of(request)
    _check(sim, x_token)
    item = _invoice(sim, str(body.get("invoiceId")))
    if item["status"] in ("created", "failure"):
        item.update(status="expired", modifiedDate=_stamp())
    return {}


@monobank.get("/api/merchant/pubkey")
async def pubkey(request: Request, x_token: str | None = Header(None)) -> dict[str, str]:
    sim = sim_of(request)
    _check(sim, x_token)
    return {**fixture("monobank", "pubkey_response")["body"], "key": _public_key(_book(sim))}


@monobank.get("/pay/{invoice_id}", response_class=HTMLResponse)
async def payment_page(invoice_id: str, request: Request) -> HTMLResponse:
    item = _invoice(sim_of(request), invoice_id)
    ccy = {980: "UAH", 840: "USD", 978: "EUR"}.get(item["ccy"], str(item["ccy"]))
    return PAGES.TemplateResponse(
        request,
        "checkout.html",
        {
            "provider": "Monobank",
            "description": item["destination"],
            "amount": item["amount"] / 100,
            "currency": ccy,
            "status": item["status"],
            "pay": f"/monobank/sim/invoices/{invoice_id}/success",
            "fail": f"/monobank/sim/invoices/{invoice_id}/failure",
        },
    )


@monobank.get("/sim/invoices")
async def invoices(request: Request) -> list[dict[str, Any]]:
    return list(_book(sim_of(request))["invoices"].values())


@monobank.post("/sim/invoices/{invoice_id}/out-of-order")
async def out_of_order(invoice_id: str, request: Request) -> dict[str, Any]:
    """Paid, but the webhooks arrive newest first: success, then the older processing."""
    sim = sim_of(request)
    item = _invoice(sim, invoice_id)
    started = datetime.now(UTC)
    processing = {**_status_body(item), "status": "processing", "modifiedDate": _stamp(started)}
    item.update(
        status="success",
        finalAmount=item["amount"],
        modifiedDate=_stamp(started + timedelta(seconds=1)),
    )
    first = await _webhook(sim, item)
    second = await _webhook(sim, item, processing)
    return {"invoiceId": invoice_id, "status": item["status"], "webhook_status": [first, second]}


@monobank.post("/sim/invoices/{invoice_id}/{status}")
async def drive(invoice_id: str, status: str, request: Request) -> dict[str, Any]:
    """Any status by hand: `success`, `failure` (`errCode`), `processing`, `hold`, `expired`."""
    sim = sim_of(request)
    item = _invoice(sim, invoice_id)
    extra = {}
    if status == "failure":
        failed = json.loads(fixture("monobank", "webhook_failure")["body"])
        extra = {
            "failureReason": failed["failureReason"],
            "errCode": request.query_params.get("errCode", failed["errCode"]),
        }
    answered = await _move(sim, item, status, **extra)
    return {"invoiceId": invoice_id, "status": item["status"], "webhook_status": answered}


@monobank.post("/sim/rotate-key")
async def rotate_key(request: Request) -> dict[str, str]:
    """Monobank changes its key: webhooks are signed by the new one from now on."""
    book = _book(sim_of(request))
    _new_key(book)
    return {"key": _public_key(book)}
