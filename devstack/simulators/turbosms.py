"""TurboSMS's HTTP API as the shop sees it (devstack/fixtures/turbosms: the shapes):
message/send.json takes an `sms` block, a `viber` block or both (Viber first, the SMS when
the phone has no Viber), checks the Bearer token, answers once per `sequence_id` (507 with
the first answer after that) and refuses numbers in its stop list (404); message/status.json
says what became of each message. Every answer is built from the fixtures.

For tests and the curious: /turbosms/sim/messages lists what was sent, /sim/requests every
request and its answer; /sim/stoplist and /sim/without-viber take a phone; /sim/fail makes
it answer HTTP 503 for a while, /sim/lose-answers send and then answer HTTP 504."""

from __future__ import annotations

import copy
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel

from devstack.fixtures import answer
from devstack.simulators.state import keep, sim_of

turbosms = APIRouter(prefix="/turbosms", tags=["turbosms"])


class Phone(BaseModel):
    phone: str


@dataclass
class SentMessage:
    message_id: str
    phone: str
    sequence_id: str | None
    sms: dict[str, Any] | None
    viber: dict[str, Any] | None
    via: str  # "viber", or "sms": the phone has no Viber (or there was no Viber block)
    status: str  # TurboSMS's word: Delivered, or Undelivered (Viber only, and no Viber)
    sent: str


@dataclass
class TurboSmsState:
    messages: list[SentMessage] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # sequence_id -> its results
    stoplist: set[str] = field(default_factory=set)
    without_viber: set[str] = field(default_factory=set)
    failing: int = 0  # answer HTTP 503 to this many requests
    losing: dict[str, int] = field(default_factory=dict)  # phone -> answers to lose (504)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every send.json, answered


TURBOSMS = keep("turbosms", TurboSmsState)


def _state(request: Request) -> TurboSmsState:
    return TURBOSMS.of(sim_of(request))


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def _envelope(name: str) -> dict[str, Any]:
    """The answer of a fixture, to fill in."""
    envelope: dict[str, Any] = answer("turbosms", name)
    return envelope


def _refusal(code: int, status: str) -> dict[str, Any]:
    answer = _envelope("error_auth")  # the envelope of a refused request
    answer.update(response_code=code, response_status=status)
    return answer


def _authorised(request: Request, authorization: str | None) -> bool:
    return authorization == f"Bearer {sim_of(request).settings.turbosms_token}"


@turbosms.post("/message/send.json")
async def send(
    request: Request, body: dict[str, Any], authorization: str | None = Header(None)
) -> dict[str, Any]:
    """One message to its recipients: `sms`, `viber` or both (Viber first, then SMS)."""
    state = _state(request)
    asked = {"recipients": body.get("recipients"), "sequence_id": body.get("sequence_id")}
    if state.failing > 0:
        state.failing -= 1
        state.requests.append({**asked, "answer": "HTTP 503"})
        raise HTTPException(503, "TurboSMS is overloaded, try later")
    answer = _answer(request, state, body, authorization)
    state.requests.append({**asked, "answer": answer["response_code"]})
    phones = [_digits(str(r)) for r in asked["recipients"] or []]
    if any(state.losing.get(phone, 0) > 0 for phone in phones):
        for phone in phones:
            state.losing[phone] = max(0, state.losing.get(phone, 0) - 1)
        raise HTTPException(504, "the answer was lost on its way back")
    return answer


def _answer(
    request: Request, state: TurboSmsState, body: dict[str, Any], authorization: str | None
) -> dict[str, Any]:
    if not _authorised(request, authorization):
        return _envelope("error_auth")
    recipients, blocks = body.get("recipients"), [body.get("sms"), body.get("viber")]
    if not isinstance(recipients, list) or not recipients:
        return _refusal(202, "REQUIRED_MESSAGE_RECIPIENT")
    if not any(isinstance(block, dict) for block in blocks):
        return _refusal(201, "REQUIRED_MESSAGE_TEXT")
    for block in (block for block in blocks if isinstance(block, dict)):
        if not block.get("sender"):
            return _refusal(200, "REQUIRED_MESSAGE_SENDER")
        if not block.get("text"):
            return _refusal(201, "REQUIRED_MESSAGE_TEXT")
    sequence = body.get("sequence_id")
    if sequence and sequence in state.answers:
        again = _envelope("send_duplicate")
        again["response_result"] = copy.deepcopy(state.answers[sequence])
        return again
    ok, refused = _envelope("send_viber_sms"), _envelope("send_stoplist")
    results = []
    for phone in (_digits(str(recipient)) for recipient in recipients):
        if phone in state.stoplist:
            results.append({**refused["response_result"][0], "phone": phone})
            continue
        entry = {**ok["response_result"][0], "phone": phone, "message_id": str(uuid.uuid4())}
        viber = isinstance(body.get("viber"), dict) and phone not in state.without_viber
        sms = isinstance(body.get("sms"), dict)
        state.messages.append(
            SentMessage(
                message_id=entry["message_id"],
                phone=phone,
                sequence_id=sequence,
                sms=body.get("sms"),
                viber=body.get("viber"),
                via="viber" if viber or not sms else "sms",
                status="Delivered" if viber or sms else "Undelivered",
                sent=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
        results.append(entry)
    if sequence:
        state.answers[sequence] = results
    if all(item["message_id"] for item in results):
        answer = ok
    elif any(item["message_id"] for item in results):
        answer = _envelope("send_partial_stoplist")
    else:
        answer = refused  # no one got it: the refusal itself
    answer["response_result"] = results
    return answer


@turbosms.post("/message/status.json")
async def status(
    request: Request, body: dict[str, Any], authorization: str | None = Header(None)
) -> dict[str, Any]:
    """What became of each message asked about (414 for a message_id it does not know)."""
    if not _authorised(request, authorization):
        return _envelope("error_auth")
    answer = _envelope("status")
    unknown, known = answer["response_result"][0], answer["response_result"][1]
    sent = {message.message_id: message for message in _state(request).messages}
    results = []
    for message_id in body.get("messages") or []:
        message = sent.get(str(message_id))
        if message is None:
            results.append({**unknown, "message_id": str(message_id)})
            continue
        results.append(
            {
                **known,
                "message_id": message.message_id,
                "recipient": message.phone,
                "sent": message.sent,
                "updated": message.sent,
                "status": message.status,
                "type": message.via,
            }
        )
    answer["response_result"] = results
    return answer


@turbosms.get("/sim/messages")
async def messages(request: Request) -> list[dict[str, Any]]:
    """Every message sent, oldest first."""
    return [asdict(message) for message in _state(request).messages]


@turbosms.post("/sim/stoplist")
async def stoplist(request: Request, entry: Phone) -> dict[str, Any]:
    """The phone is in the stop list (and the Viber ignore list): every send to it is 404."""
    _state(request).stoplist.add(_digits(entry.phone))
    return {"stoplist": sorted(_state(request).stoplist)}


@turbosms.post("/sim/without-viber")
async def without_viber(request: Request, entry: Phone) -> dict[str, Any]:
    """The phone has no Viber: a Viber message to it goes as its SMS."""
    _state(request).without_viber.add(_digits(entry.phone))
    return {"without_viber": sorted(_state(request).without_viber)}


@turbosms.post("/sim/fail")
async def fail(request: Request, count: int = 3) -> dict[str, Any]:
    """Answer HTTP 503 to the next `count` sends, then recover."""
    _state(request).failing = count
    return {"failing": count}


@turbosms.post("/sim/lose-answers")
async def lose_answers(request: Request, entry: Phone, count: int = 1) -> dict[str, Any]:
    """Take the next `count` sends to the phone (the messages go out), then answer HTTP 504
    instead of what was sent."""
    _state(request).losing[_digits(entry.phone)] = count
    return {"losing": count}


@turbosms.get("/sim/requests")
async def requests(request: Request) -> list[dict[str, Any]]:
    """Every send.json request that came (recipients, sequence_id) and its answer's code."""
    return _state(request).requests
