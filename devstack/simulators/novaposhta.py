"""Nova Poshta's API 2.0 as the shop's account sees it, at `/novaposhta/v2.0/json/`: one POST
endpoint dispatching on `modelName`/`calledMethod` (InternetDocument.save, delete,
getDocumentList; TrackingDocument.getStatusDocuments; Address.getWarehouses), answering in
the envelope `{success, data, errors, warnings, errorCodes, …}` built from the fixtures of
devstack/fixtures/novaposhta/ (the adapter's contract tests read the same), the sticker at
`/novaposhta/print/…`, and a tracking page.

No webhooks, as the real one: orderflow asks. The autopilot moves each waybill through real
status codes a step at a time (1 → 4 → 5 → 7 at the branch or 101 with the courier → 9, or
10 → 11 for cash on delivery); `/novaposhta/sim/documents/{number}/status` sets any code by
hand (the autopilot then leaves that waybill alone). The state is plain data, in one place
(`NovaPoshtaState`).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from reportlab.lib.pagesizes import A6
from reportlab.pdfgen.canvas import Canvas

from devstack.fixtures import answer, fixture
from devstack.simulators.state import Simulators, keep, sim_of, step

novaposhta = APIRouter(prefix="/novaposhta", tags=["novaposhta"])
KYIV = ZoneInfo("Europe/Kyiv")
STATUS_TEXT = {
    "1": "Відправник самостійно створив цю накладну, але ще не надав до відправки",
    "2": "Видалено",
    "3": "Номер не знайдено",
    "4": "Відправлення у місті відправника",
    "41": "Відправлення у місті відправника",
    "5": "Відправлення прямує до міста одержувача",
    "6": "Відправлення у місті одержувача, орієнтовна доставка до відділення",
    "7": "Прибув у відділення",
    "8": "Прибув у відділення (завантажено в Поштомат)",
    "9": "Відправлення отримано",
    "10": "Відправлення отримано. Протягом доби ви одержите SMS про надходження грошового переказу",
    "11": "Відправлення отримано. Грошовий переказ видано одержувачу.",
    "101": "На шляху до одержувача",
    "102": "Відмова від отримання",
    "103": "Відмова одержувача",
    "104": "Змінено адресу",
    "105": "Припинено зберігання",
    "106": "Одержано і створено ЄН зворотньої доставки",
    "111": "Невдала спроба доставки через відсутність Одержувача на адресі або зв'язку з ним",
    "112": "Дата доставки перенесена Одержувачем",
}
FREE_STORAGE_DAYS = 5  # a parcel waits at a branch this long before storage is paid
TRACKING_LIMIT = 100


@dataclass
class Waybill:
    number: str
    ref: str
    reference: str  # InfoRegClientBarcodes: the shop's number
    service: str  # WarehouseWarehouse | WarehouseDoors
    city: str
    branch_number: str  # "" for the door
    phone: str  # the recipient's, as Nova Poshta writes it (digits)
    created: str  # dd.mm.yyyy
    estimated: str  # dd.mm.yyyy
    cost: str
    redelivery: str = ""  # BackwardDeliveryData's RedeliveryString
    afterpayment: str = ""  # AfterpaymentOnGoodsCost
    code: str = "1"
    codes: list[str] = field(default_factory=lambda: ["1"])
    storage_until: str = ""  # yyyy-mm-dd 00:00:00, once at the branch
    received_at: str = ""  # dd.mm.yyyy HH:MM:SS
    paid_out: str = ""  # what the shop was paid (by hand: any amount)
    by_hand: bool = False

    @property
    def cod(self) -> str:
        return self.redelivery or self.afterpayment


@dataclass
class NovaPoshtaState:
    waybills: dict[str, Waybill] = field(default_factory=dict)  # by IntDocNumber
    branches: dict[str, dict[str, Any]] = field(default_factory=dict)  # by Ref
    tracking_calls: list[int] = field(default_factory=list)  # documents asked per call
    deleted: list[str] = field(default_factory=list)  # Refs, as InternetDocument.delete got them
    stickers_refused: bool = False  # the print answers a login page, as for a key it refuses
    issued: int = 0  # waybills numbered so far

    def __post_init__(self) -> None:
        for branch in answer("novaposhta", "warehouses")["data"]:
            self.branches[branch["Ref"]] = branch
        closed = {
            **next(iter(self.branches.values())),
            "Ref": "5a39e2f2-0a9b-11e4-8c4a-0050568002cf",
            "Number": "310",
            "Description": "Відділення №310: закрите",
            "WarehouseStatus": "Closed",
        }
        self.branches[closed["Ref"]] = closed


NOVAPOSHTA = keep("novaposhta", NovaPoshtaState)
state_of = NOVAPOSHTA.of


def _envelope(
    data: list[Any], errors: list[str] | None = None, codes: list[str] | None = None
) -> dict[str, Any]:
    """Nova Poshta's envelope (the fixtures' shape), with this answer in it."""
    body: dict[str, Any] = answer("novaposhta", "delete")
    body.update(success=not errors, data=data, errors=errors or [], errorCodes=codes or [])
    return body


def _refusal(error: str, code: str = "") -> dict[str, Any]:
    """A refusal in the envelope; `code` only where the documentation's list names one."""
    return _envelope([], [error], [code] if code else [])


# --- the API -------------------------------------------------------------------------------


@novaposhta.post("/v2.0/json/")
async def api(body: dict[str, Any], request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    if body.get("apiKey") != sim.settings.novaposhta_api_key:
        return answer("novaposhta", "error_auth")
    method = f"{body.get('modelName')}.{body.get('calledMethod')}"
    properties = body.get("methodProperties") or {}
    handler = METHODS.get(method)
    if handler is None or not isinstance(properties, dict):
        return _refusal(f"Method {method} is not served by the simulator")
    return handler(sim, state_of(sim), properties)


def _save(sim: Simulators, state: NovaPoshtaState, p: dict[str, Any]) -> dict[str, Any]:
    missing = [
        name
        for name in (
            "ServiceType",
            "RecipientCityName",
            "RecipientAddressName",
            "RecipientName",
            "RecipientsPhone",
            "Sender",
            "ContactSender",
            "SenderAddress",
            "CitySender",
        )
        if not str(p.get(name) or "").strip()
    ]
    if missing:
        return _refusal(f"{', '.join(missing)} is empty")
    service, city = p["ServiceType"], p["RecipientCityName"]
    if service == "WarehouseWarehouse":
        known = [
            b
            for b in state.branches.values()
            if b["Number"] == str(p["RecipientAddressName"]) and b["CityDescription"] == city
        ]
        if not known or known[0]["WarehouseStatus"] != "Working":
            return _refusal("RecipientAddress not found")
    elif service != "WarehouseDoors":
        return _refusal(f"ServiceType {service} is not served by the simulator")
    redelivery = ""
    for item in p.get("BackwardDeliveryData") or []:
        if item.get("CargoType") != "Money" or item.get("PayerType") != "Recipient":
            return _refusal("BackwardDeliveryData array is invalid", "20000200070")
        redelivery = str(item.get("RedeliveryString", ""))
    today = datetime.now(KYIV).date()
    state.issued += 1
    number = f"2045{state.issued + 900000000:010d}"
    waybill = Waybill(
        number=number,
        ref=str(uuid.uuid4()),
        reference=str(p.get("InfoRegClientBarcodes", "")),
        service=service,
        city=city,
        branch_number=str(p["RecipientAddressName"]) if service == "WarehouseWarehouse" else "",
        phone=str(p["RecipientsPhone"]),
        created=today.strftime("%d.%m.%Y"),
        estimated=(today + timedelta(days=2)).strftime("%d.%m.%Y"),
        cost=str(p.get("Cost", "")),
        redelivery=redelivery,
        afterpayment=str(p.get("AfterpaymentOnGoodsCost") or ""),
    )
    state.waybills[number] = waybill
    if sim.autopilot:
        _drive(sim, waybill)
    [document] = answer("novaposhta", "save_branch_cod")["data"]
    document.update(Ref=waybill.ref, IntDocNumber=number, EstimatedDeliveryDate=waybill.estimated)
    return _envelope([document])


def _delete(sim: Simulators, state: NovaPoshtaState, p: dict[str, Any]) -> dict[str, Any]:
    refs = p.get("DocumentRefs")
    refs = refs if isinstance(refs, list) else [refs]
    found = [w for w in state.waybills.values() if w.ref in refs]
    if not found:
        return _refusal("Document not found", "20000300415")
    for waybill in found:
        if waybill.code not in ("1", "2"):
            return _refusal(f"Document {waybill.number} is on its way: it can not be deleted")
    for waybill in found:
        _set(waybill, "2")
        state.deleted.append(waybill.ref)
    return _envelope([{"Ref": waybill.ref} for waybill in found])


def _document_list(sim: Simulators, state: NovaPoshtaState, p: dict[str, Any]) -> dict[str, Any]:
    since = _day(p.get("DateTimeFrom"))
    until = _day(p.get("DateTimeTo")) or since
    [template] = answer("novaposhta", "document_list")["data"]
    listed = []
    for waybill in state.waybills.values():
        if since and until and not since <= _day(waybill.created) <= until:  # type: ignore[operator]
            continue
        listed.append(
            {
                **template,
                "Ref": waybill.ref,
                "IntDocNumber": waybill.number,
                "InfoRegClientBarcodes": waybill.reference,
                "EstimatedDeliveryDate": waybill.estimated,
                "StateName": STATUS_TEXT.get(waybill.code, ""),
                "DateTime": waybill.created,
                "Cost": waybill.cost,
            }
        )
    return _envelope(listed)


def _status_documents(sim: Simulators, state: NovaPoshtaState, p: dict[str, Any]) -> dict[str, Any]:
    documents = p.get("Documents") or []
    if not isinstance(documents, list) or len(documents) > TRACKING_LIMIT:
        return _refusal(f"Documents: at most {TRACKING_LIMIT} a call")
    state.tracking_calls.append(len(documents))
    at_branch, _, unknown = answer("novaposhta", "status_documents")["data"]
    answers = []
    for document in documents:
        waybill = state.waybills.get(str(document.get("DocumentNumber", "")))
        if waybill is None:
            answers.append({**unknown, "Number": document.get("DocumentNumber", "")})
            continue
        extended = str(document.get("Phone") or "") == waybill.phone
        cod = waybill.cod
        paid = waybill.code == "11"
        found = {
            **at_branch,
            "Number": waybill.number,
            "StatusCode": waybill.code,
            "Status": STATUS_TEXT.get(waybill.code, ""),
            "DateCreated": datetime.strptime(waybill.created, "%d.%m.%Y").strftime(
                "%d-%m-%Y 00:00:00"
            ),
            "ScheduledDeliveryDate": f"{waybill.estimated} 13:00:00",
            "RecipientDateTime": waybill.received_at,
            "ServiceType": waybill.service,
            "WarehouseRecipientNumber": int(waybill.branch_number or 0),
            "CityRecipient": waybill.city,
            "Redelivery": 1 if waybill.redelivery else 0,
            "RedeliverySum": int(float(waybill.paid_out or waybill.redelivery or 0))
            if waybill.redelivery
            else 0,
            "AfterpaymentOnGoodsCost": waybill.afterpayment or "0",
            "AmountToPay": "0" if paid else cod or "0",
            "AmountPaid": (waybill.paid_out or waybill.afterpayment) if paid else "0",
            "PaymentStatus": "Payed" if paid else "",
            "DatePayedKeeping": waybill.storage_until,
        }
        if not extended:  # without the right phone: the short answer
            for name in ("DatePayedKeeping", "RedeliverySum", "AmountPaid", "AmountToPay"):
                found.pop(name, None)
        answers.append(found)
    return _envelope(answers)


def _warehouses(sim: Simulators, state: NovaPoshtaState, p: dict[str, Any]) -> dict[str, Any]:
    ref = p.get("Ref")
    branches = [b for b in state.branches.values() if ref in (None, "", b["Ref"])]
    return _envelope(branches)


METHODS = {
    "InternetDocument.save": _save,
    "InternetDocument.delete": _delete,
    "InternetDocument.getDocumentList": _document_list,
    "TrackingDocument.getStatusDocuments": _status_documents,
    "Address.getWarehouses": _warehouses,
}


def _day(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value), "%d.%m.%Y").date()
    except ValueError:
        return None


# --- status codes, by autopilot or by hand ----------------------------------------------------


def _set(waybill: Waybill, code: str, storage_until: str = "", paid_out: str = "") -> None:
    now = datetime.now(KYIV)
    waybill.code = code
    waybill.codes.append(code)
    if code in ("7", "8"):
        until = storage_until or (now.date() + timedelta(days=FREE_STORAGE_DAYS)).isoformat()
        waybill.storage_until = f"{until} 00:00:00"
    if code in ("9", "10", "11") and not waybill.received_at:
        waybill.received_at = now.strftime("%d.%m.%Y %H:%M:%S")
    if code == "11":
        waybill.paid_out = paid_out or waybill.cod


def _route(waybill: Waybill) -> list[str]:
    arrival = ["7"] if waybill.service == "WarehouseWarehouse" else ["101"]
    ending = ["10", "11"] if waybill.cod else ["9"]
    return ["4", "5", *arrival, *ending]


def _drive(sim: Simulators, waybill: Waybill) -> None:
    for n, code in enumerate(_route(waybill), start=1):
        sim.later(n * sim.step, _autopilot_step, number=waybill.number, code=code)


@step
async def _autopilot_step(sim: Simulators, number: str, code: str) -> None:
    """The waybill's next code on the route, unless driven by hand or deleted meanwhile."""
    waybill = state_of(sim).waybills[number]
    if not waybill.by_hand and waybill.code != "2":
        _set(waybill, code)


@novaposhta.post("/sim/documents/{number}/status")
async def set_status(number: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Drive a waybill by hand: `{"code": "7", "storage_until": "2026-12-05", "paid_out":
    "500"}` (any StatusCode of Nova Poshta's; the autopilot then leaves it alone)."""
    waybill = state_of(sim_of(request)).waybills.get(number)
    if waybill is None:
        raise HTTPException(404, "no such waybill")
    code = str(body.get("code", ""))
    if not code.isdigit():  # any number: also one orderflow's table does not know
        raise HTTPException(422, "code: a StatusCode, digits (Nova Poshta's: 1 to 112)")
    waybill.by_hand = True
    _set(waybill, code, str(body.get("storage_until", "")), str(body.get("paid_out", "")))
    return asdict(waybill)


@novaposhta.post("/sim/stickers")
async def stickers(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """`{"refused": true}`: the sticker print answers a login page (as for a blocked key)."""
    state = state_of(sim_of(request))
    state.stickers_refused = bool(body.get("refused"))
    return {"refused": state.stickers_refused}


@novaposhta.get("/sim/documents")
async def documents(request: Request) -> list[dict[str, Any]]:
    """Every waybill, as the simulator keeps it."""
    return [asdict(w) for w in state_of(sim_of(request)).waybills.values()]


@novaposhta.get("/sim/calls")
async def calls(request: Request) -> dict[str, Any]:
    """What orderflow asked: the documents of each tracking call, the waybills deleted."""
    state = state_of(sim_of(request))
    return {"tracking": state.tracking_calls, "deleted": state.deleted}


# --- the sticker and the tracking page ---------------------------------------------------------

# The documented path, before the waybill's number: /orders/printMarking100x100
STICKER = fixture("novaposhta", "print_marking")["request"]["path"].split("/orders[]/")[0]


@novaposhta.get(f"/print{STICKER}/orders[]/{{number}}/type/pdf/apiKey/{{key}}")
async def sticker(number: str, key: str, request: Request) -> Response:
    sim = sim_of(request)
    waybill = state_of(sim).waybills.get(number)
    if key != sim.settings.novaposhta_api_key or waybill is None or state_of(sim).stickers_refused:
        return HTMLResponse("<html><body>Увійдіть до кабінету</body></html>")
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A6, invariant=True)
    canvas.drawString(20, 380, f"Nova Poshta  {waybill.number}")
    canvas.drawString(20, 360, f"{waybill.city} {waybill.branch_number or waybill.service}")
    canvas.showPage()
    canvas.save()
    return Response(buffer.getvalue(), media_type="application/pdf")


@novaposhta.get("/tracking/", response_class=HTMLResponse)
async def tracking_page(cargo_number: str, request: Request) -> HTMLResponse:
    waybill = state_of(sim_of(request)).waybills.get(cargo_number)
    if waybill is None:
        raise HTTPException(404, "Номер не знайдено")
    steps = "".join(f"<li>{code}: {STATUS_TEXT.get(code, '')}</li>" for code in waybill.codes)
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><h1>{waybill.number}</h1><ol>{steps}</ol>"
    )
