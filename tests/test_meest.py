"""Meest's tracking as the devstack's simulator speaks it (over HTTP), read by the adapter:
the simulator and the adapter's contract test share one fixture."""

from __future__ import annotations

from activities.carriers.base import TrackedParcel
from activities.carriers.meest import Meest
from activities.providers import Provider, make_http_client
from devstack.simulators.meest import SID
from schema.contracts import TrackingStatus
from tests.stack import Stack


async def test_the_adapter_reads_the_simulators_statuses(dev_stack: Stack) -> None:
    for code in (2, 13):
        added = await dev_stack.sim.post(
            "/meest/sim/parcels/8870099999/statuses",
            json={"statusCode": code, "eventDescription": "Видано кур`єру"},
        )
        assert added.status_code == 200, added.text
    async with make_http_client(5) as http:
        meest = Meest(
            Provider("meest", http, f"{str(dev_stack.sim.base_url).rstrip('/')}/meest"), SID
        )
        [update] = await meest.track([TrackedParcel("8870099999")])
        assert await meest.track([TrackedParcel("8870000000")]) == []  # unknown: nothing
    assert (update.code, update.status) == ("13", TrackingStatus.OUT_FOR_DELIVERY)
