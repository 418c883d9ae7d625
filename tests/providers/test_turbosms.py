"""The TurboSMS adapter against TurboSMS's documented shapes (devstack/fixtures/turbosms):
what it sends is the documented request, each answer code lands where it must (accepted,
the next channel, a retry, an operator), and the simulator, built from the same fixtures,
answers the adapter as the fixtures say TurboSMS does."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.notifications import Undeliverable
from activities.turbosms import Delivery, TurboSms, accepted_message_id, deliveries
from devstack.fixtures import fixture
from devstack.harness import free_port
from devstack.simulators import create_simulators
from settings import Settings
from tests.stack import serve

PHONE = "+380501234567"


def _turbosms(exchange: dict[str, Any], http: httpx.AsyncClient | None = None) -> TurboSms:
    """The adapter, with the devstack's token and sender names, whose HTTP answers are the
    fixture's after checking that the request is the fixture's."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = exchange["request"]
        assert (request.method, request.url.path) == (asked["method"], asked["path"])
        assert request.headers["Authorization"] == asked["headers"]["Authorization"]
        assert request.headers["Content-Type"] == asked["headers"]["Content-Type"]
        assert json.loads(request.content) == asked["body"]
        return httpx.Response(200, json=exchange["response"])

    settings = Settings(devstack=True, turbosms_url="https://api.turbosms.ua")
    return TurboSms.of(settings, http or httpx.AsyncClient(transport=httpx.MockTransport(answer)))


def _text(exchange: dict[str, Any]) -> str:
    body = exchange["request"]["body"]
    return str((body.get("viber") or body["sms"])["text"])


async def test_a_viber_message_carries_its_sms_in_one_request() -> None:
    exchange = fixture("turbosms", "send_viber_sms")
    message_id = await _turbosms(exchange).send(
        phone=PHONE, text=_text(exchange), viber=True, key=exchange["orderflow_key"]
    )
    assert message_id == exchange["response"]["response_result"][0]["message_id"]


async def test_an_sms_alone() -> None:
    exchange = fixture("turbosms", "send_sms")
    message_id = await _turbosms(exchange).send(
        phone=PHONE, text=_text(exchange), viber=False, key=exchange["orderflow_key"]
    )
    assert message_id == exchange["response"]["response_result"][0]["message_id"]


async def test_the_same_sequence_id_again_is_the_first_message() -> None:
    first, again = fixture("turbosms", "send_viber_sms"), fixture("turbosms", "send_duplicate")
    assert again["request"] == first["request"]
    message_id = await _turbosms(again).send(
        phone=PHONE, text=_text(again), viber=True, key=again["orderflow_key"]
    )
    assert message_id == first["response"]["response_result"][0]["message_id"]


@pytest.mark.parametrize(
    ("name", "recipient", "outcome"),
    [
        ("send_stoplist", "380631112233", "next channel"),
        ("send_partial_stoplist", "380631112233", "next channel"),
        ("send_partial_stoplist", "380501234567", "accepted"),
        ("error_sms_send", "380501234567", "retried"),
        ("error_auth", "380501234567", "an operator"),
        ("error_balance", "380501234567", "an operator"),
    ],
)
def test_each_answer_lands_where_it_must(name: str, recipient: str, outcome: str) -> None:
    answer = fixture("turbosms", name)["response"]
    try:
        accepted_message_id(answer, recipient)
        landed = "accepted"
    except Undeliverable:
        landed = "next channel"
    except ApplicationError as failure:
        landed = "an operator" if failure.non_retryable else "retried"
        assert failure.type == (
            "ProviderRejected" if failure.non_retryable else "ProviderUnavailable"
        )
        assert str(answer["response_code"]) in str(failure)
    assert landed == outcome


def test_statuses_say_how_each_message_reached_the_phone() -> None:
    exchange = fixture("turbosms", "status")
    assert deliveries(exchange["response"]) == {
        "2d80c1c0-5e3c-78c9-134b-2fc4fcbfa0ba": Delivery("unknown", None),
        "f83f8868-5e46-c6cf-e4fb-615e5a293754": Delivery("delivered", "sms"),
        "ef94d4d3-8e16-7d43-5fd5-6e4b0c1f8c96": Delivery("read", "viber"),
        "c51f4301-5e3c-78c9-134b-d1ce1e56a9ff": Delivery("queued", "sms"),
    }


async def test_statuses_are_asked_as_documented() -> None:
    exchange = fixture("turbosms", "status")
    asked = exchange["request"]["body"]["messages"]
    assert len(await _turbosms(exchange).deliveries(asked)) == len(asked)


# --- the simulator speaks the same shapes ------------------------------------------------


@pytest.fixture(scope="module")
async def simulator() -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    port = free_port()
    settings = Settings(
        devstack=True, simulator_port=port, turbosms_url=f"http://127.0.0.1:{port}/turbosms"
    )
    async with serve(create_simulators(settings), port) as sim:
        yield sim, settings


@pytest.mark.stack  # the simulators, served
async def test_the_simulator_answers_the_adapter_as_turbosms_does(
    simulator: tuple[httpx.AsyncClient, Settings],
) -> None:
    sim, settings = simulator
    async with httpx.AsyncClient() as http:
        turbosms = TurboSms.of(settings, http)
        key = f"{uuid.uuid4()}:confirmation:1:viber"
        await sim.post("/turbosms/sim/without-viber", json={"phone": "+380671110000"})
        first = await turbosms.send(phone="+380671110000", text="Привіт", viber=True, key=key)
        again = await turbosms.send(phone="+380671110000", text="Привіт", viber=True, key=key)
        assert again == first  # one sequence_id, one message
        [sent] = [
            m for m in (await sim.get("/turbosms/sim/messages")).json() if m["message_id"] == first
        ]
        assert (sent["viber"]["text"], sent["sms"]["text"], sent["via"]) == (
            "Привіт",
            "Привіт",
            "sms",
        )
        unknown = str(uuid.uuid4())
        assert await turbosms.deliveries([first, unknown]) == {
            first: Delivery("delivered", "sms"),  # no Viber on that phone: the SMS reached it
            unknown: Delivery("unknown", None),
        }

        await sim.post("/turbosms/sim/stoplist", json={"phone": "+380671110001"})
        with pytest.raises(Undeliverable, match="404 NOT_ALLOWED_NUMBER_STOPLIST"):
            await turbosms.send(phone="+380671110001", text="Привіт", viber=False, key="k2")

        wrong = TurboSms.of(settings.model_copy(update={"turbosms_token": "not-the-token"}), http)
        with pytest.raises(ApplicationError, match="105 REQUIRED_AUTH") as refused:
            await wrong.send(phone="+380671110000", text="Привіт", viber=False, key="k3")
        assert refused.value.non_retryable
