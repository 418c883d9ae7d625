"""Orders that go with Ukrposhta (`ORDERFLOW_CARRIER=ukrposhta`) on the real stack, its
simulator speaking the eCom API and status tracking from the documentation's fixtures, on
autopilot, the tracking schedule asking every second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.mailsink import MailSink
from devstack.postgres import EmbeddedPostgres
from settings import Settings
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.test_novaposhta import polling_stack

POST = {
    "method": "post",
    "address": {"country": "UA", "city": "Kyiv", "line1": "Khreshchatyk 1", "postal_code": "01001"},
}


@pytest.fixture(scope="module")
async def ukrposhta(
    temporal_env: WorkflowEnvironment,
    base_settings: Settings,
    postgres: EmbeddedPostgres,
    mail_sink: MailSink,
) -> AsyncIterator[Stack]:
    async with polling_stack(
        temporal_env,
        base_settings,
        postgres,
        mail_sink.maildir,
        carrier="ukrposhta",
        scheduled=True,
        carrier_poll_interval=timedelta(seconds=1),
        simulator_autopilot=True,
        simulator_step_seconds=2.0,
    ) as stack:
        yield stack


async def test_a_post_order_paid_in_cash_goes_to_the_post_office_and_is_collected(
    ukrposhta: Stack,
) -> None:
    order = await Journey.place(ukrposhta, delivery=POST, payment={"method": "cod"})
    status = await order.until(lambda s: s.status == "delivered", timeout=90)

    steps = Journey.types(status)
    assert steps.index("carrier.AvailableForPickup") < steps.index("order.delivered")
    assert status.payment_status == "collected_on_delivery"  # no payout news from Ukrposhta
    barcode = str((await order.refs()).tracking_number)
    [shipment] = [
        s
        for s in (await ukrposhta.sim.get("/ukrposhta/sim/shipments")).json()
        if s["barcode"] == barcode
    ]
    assert (shipment["delivery_type"], shipment["post_pay"]) == ("W2W", 500)
    assert shipment["events"] == ["10100", "20700", "21500", "21700", "41000"]
    documents = (await ukrposhta.api.get(f"/v1/orders/{order.order_id}/documents")).json()
    assert "carrier_label" in [d["kind"] for d in documents]
    assert await order.incidents() == []
