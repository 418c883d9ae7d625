"""The Meest adapter (tracking only) against the recorded answer of its documentation
(devstack/fixtures/meest/, the same the simulator speaks): the request carries the fixture
request's parameters, the last status is read in orderflow's words, an unknown parcel or
code tells nothing, and the partner's key never reaches an error."""

from __future__ import annotations

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.carriers.base import TrackedParcel
from activities.carriers.meest import STATUS_CODES, Meest
from activities.providers import Provider
from devstack.fixtures import fixture
from schema.contracts import TrackingStatus


async def _track(answer: httpx.Response, number: str) -> tuple[list[httpx.Request], Meest, list]:  # type: ignore[type-arg]
    sent: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as client:
        meest = Meest(Provider("meest", client, "https://meest.example"), "dev-meest-sid")
        updates = await meest.track([TrackedParcel(number)])
    return sent, meest, updates


async def test_tracking_asks_as_documented_and_reads_the_last_status() -> None:
    recorded = fixture("meest", "tracking_parcel")
    sent, _, [update] = await _track(httpx.Response(200, json=recorded["response"]), "8870012345")
    [request] = sent
    assert request.method == recorded["request"]["method"]
    assert request.url.path == recorded["request"]["path"]
    assert dict(request.url.params) == recorded["request"]["params"]
    assert (update.code, update.status) == ("14", TrackingStatus.AVAILABLE_FOR_PICKUP)
    assert update.detail == "Прийнято Філією"


async def test_an_unknown_parcel_tells_nothing_and_a_refusal_keeps_the_key_out() -> None:
    _, _, updates = await _track(httpx.Response(404, json={"error": "not found"}), "1")
    assert updates == []
    with pytest.raises(ApplicationError) as failed:
        await _track(httpx.Response(401, text="sid is not valid"), "8870012345")
    assert failed.value.type == "ProviderRejected"
    assert "dev-meest-sid" not in str(failed.value)


def test_no_meest_code_is_read_as_delivered_without_the_documentation_saying_which() -> None:
    assert TrackingStatus.DELIVERED not in STATUS_CODES.values()
    assert STATUS_CODES["13"] == TrackingStatus.OUT_FOR_DELIVERY
