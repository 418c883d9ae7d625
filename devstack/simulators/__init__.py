"""Local stand-ins for the shop's providers, over the same HTTP and signed webhooks as production.

One service, a path per provider (a module each, in this package): /payment (payment links, a payment page with Pay and
Fail buttons, refunds, whole or partial), /warehouse (stock seeded from stock.csv,
reservations, pick tasks, back-orders, restocks, parcels that come back, the inspection of
returns), /carrier (shipments and return shipments, tracking events with AfterShip's tag
and subtag), /novaposhta (Nova Poshta's API 2.0: waybills, branches, tracking by polling,
stickers), /ukrposhta (Ukrposhta's eCom API and status tracking), /meest (Meest's
tracking), /liqpay (LiqPay's API 3), /monobank (Monobank acquiring), /wayforpay, /stripe (Checkout
Sessions, refunds, signed events), /sms and
/push (message gateways that store and list what they accept, and can be told to fail for a
while), /turbosms (TurboSMS's HTTP API: SMS, Viber with the SMS as its fallback, delivery
statuses, a stop list), /mailgun (Mailgun's signed events about an e-mail: a hard bounce, a
complaint), /woocommerce and /shopify (a shop posting one of its fixtures' orders to
orderflow's intake, signed as each signs), /prom (Prom.ua's orders list and status updates,
a company per API token), and /shop: the shop's own backend as a receiver of
orderflow's order events (subscribe http://127.0.0.1:8100/shop/events; it lists what
arrived and checks each signature once told the secret; it can be told to be down for a
while). Manual mode: tests and users drive every event through the /sim/ endpoints.
Autopilot (ORDERFLOW_SIMULATOR_AUTOPILOT=true): payments succeed, parcels get packed,
travel and arrive on their own, one step at a time; a return parcel travels to the
warehouse, which accepts everything in it. A parcel driven by hand (an event posted to
/carrier/sim/…) leaves the autopilot: what happens to it next is the user's to say.
`python -m devstack.simulators` (as `make dev` runs it) keeps all their state, the
autopilot's planned steps with it, in `<data_dir>/simulators` across restarts (state.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from devstack.simulators.carrier import UNSERVED_POSTAL_CODE, carrier
from devstack.simulators.gateways import push, sms
from devstack.simulators.liqpay import liqpay
from devstack.simulators.mailgun import mailgun
from devstack.simulators.meest import meest
from devstack.simulators.monobank import monobank
from devstack.simulators.novaposhta import novaposhta
from devstack.simulators.payment import payment
from devstack.simulators.prom import prom
from devstack.simulators.shop import shop
from devstack.simulators.shopify import shopify
from devstack.simulators.state import Simulators, sim_of
from devstack.simulators.stripe import stripe
from devstack.simulators.turbosms import turbosms
from devstack.simulators.ukrposhta import ukrposhta
from devstack.simulators.warehouse import warehouse
from devstack.simulators.wayforpay import wayforpay
from devstack.simulators.woocommerce import woocommerce
from settings import Settings, get_settings

__all__ = ["UNSERVED_POSTAL_CODE", "create_simulators"]


def create_simulators(settings: Settings | None = None, keep_in: Path | None = None) -> FastAPI:
    """The simulators' service; with `keep_in`, their state is kept there (a snapshot after
    each change, loaded at the next start, the autopilot's planned steps resumed)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10) as http:
            simulators = app.state.simulators = Simulators(settings, http, keep_in)
            simulators.resume()
            yield
            await simulators.close()

    app = FastAPI(title="orderflow provider simulators", version="0.1.0", lifespan=lifespan)

    @app.middleware("http")
    async def snapshot(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Any request may change a simulator's state: a snapshot follows (debounced)."""
        response = await call_next(request)
        sim_of(request).changed()
        return response

    @app.get("/sim/webhooks")
    async def webhooks(request: Request) -> list[dict[str, Any]]:
        """Every webhook the simulators sent, oldest first."""
        return sim_of(request).books.delivered

    @app.get("/sim/payments")
    async def payments(request: Request) -> list[dict[str, Any]]:
        """Every payment link created (one per idempotency key)."""
        return [asdict(item) for item in sim_of(request).books.payments.values()]

    @app.get("/sim/shipments")
    async def shipments(request: Request) -> list[dict[str, Any]]:
        """Every shipment booked (one per idempotency key)."""
        return [asdict(item) for item in sim_of(request).books.shipments.values()]

    for router in (
        payment,
        warehouse,
        carrier,
        sms,
        push,
        shop,
        liqpay,
        monobank,
        wayforpay,
        stripe,
        novaposhta,
        ukrposhta,
        meest,
        turbosms,
        mailgun,
        woocommerce,
        shopify,
        prom,
    ):
        app.include_router(router)
    return app


def main() -> None:
    import uvicorn

    from runtime import configure_logging

    settings = get_settings()
    configure_logging()
    uvicorn.run(
        create_simulators(settings, settings.data_dir / "simulators"),
        host="127.0.0.1",
        port=settings.simulator_port,
        log_config=None,
    )
