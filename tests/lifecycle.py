"""Driving one order through the running stack, as the shop, its operators and its providers would."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from schema.api.fields import Role
from schema.contracts import OrderStatus, Stage, TimelineEntry
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import Incident, Notification, OrderEvent, OrderProviderRefs
from tests.stack import Stack
from tests.support import (
    body_text,
    eventually,
    mail_to,
    order_status,
    sample_order,
)


class Journey:
    def __init__(self, stack: Stack, order_id: str, body: dict[str, Any]) -> None:
        self.stack = stack
        self.order_id = order_id
        self.body = body

    @classmethod
    async def place(cls, stack: Stack, **overrides: Any) -> Journey:
        body = sample_order(**overrides)
        response = await stack.api.post("/v1/orders", json=body)
        assert response.status_code == 202, response.text
        return cls(stack, response.json()["order_id"], body)

    # --- what we see -----------------------------------------------------------------------

    async def status(self) -> OrderStatus:
        """The workflow's `status`, with the timeline read where it lives: Postgres (the
        query answers only the latest steps)."""
        status = await order_status(self.stack.client, self.order_id)
        timeline = [
            TimelineEntry(
                at=e.at, type=e.type, stage=Stage(e.stage), actor=e.actor, detail=e.detail
            )
            for e in await self.stored_events()
        ]
        return dataclasses.replace(status, timeline=timeline)

    async def until(
        self, holds: Callable[[OrderStatus], bool], timeout: float = 30.0
    ) -> OrderStatus:
        """Poll `status` (real time: no timer is skipped) until `holds(status)`."""

        async def check() -> OrderStatus | None:
            status = await self.status()
            return status if holds(status) else None

        return await eventually(check, timeout, what=f"status of order {self.order_id}")

    async def waiting_for(self, what: str) -> OrderStatus:
        return await self.until(lambda s: s.waiting_for == what)

    async def reached(self, event_type: str) -> OrderStatus:
        return await self.until(lambda s: event_type in self.types(s))

    @staticmethod
    def types(status: OrderStatus) -> list[str]:
        return [entry.type for entry in status.timeline]

    async def outbox(self) -> list[Notification]:
        """Every outbox row of this order, oldest first."""
        async with open_session(self.stack.engine) as session:
            rows = await session.exec(
                select(Notification)
                .where(Notification.order_id == uuid.UUID(self.order_id))
                .order_by(col(Notification.id))
            )
            return list(rows.all())

    async def sent(self) -> list[str]:
        """Kinds of the messages sent for this order, from the outbox, in order."""
        return [row.kind for row in await self.outbox() if row.status == "sent"]

    def mailbox(self) -> list[str]:
        """Subjects of the e-mails that reached the customer (the SMTP sink's files)."""
        return [
            str(m["Subject"]) for m in mail_to(self.stack.maildir, self.body["customer"]["email"])
        ]

    async def link_from_mail(self, page: str) -> str:
        """The token of the customer's link to `page` ("feedback", "stock-choice"), read from
        the e-mail that carried it, as the customer would click it."""
        pattern = re.compile(rf"/order/([A-Za-z0-9_.-]+)/{page}\b")

        async def found() -> str | None:
            for message in mail_to(self.stack.maildir, self.body["customer"]["email"]):
                match = pattern.search(body_text(message, "plain"))
                if match:
                    return match.group(1)
            return None

        return await eventually(found, what=f"a {page} link in an e-mail")

    def link(self, purpose: LinkPurpose) -> str:
        """A link as the worker signs it, for orders whose message the test does not wait for."""
        return self.stack.settings.customer_links().token(purpose, uuid.UUID(self.order_id))

    async def answer(self, page: str, body: dict[str, Any], token: str | None = None) -> Any:
        """The customer's answer through the JSON twin of the link in their e-mail (no key)."""
        token = token or await self.link_from_mail(page)
        async with httpx.AsyncClient(base_url=self.stack.api.base_url) as anonymous:
            return await anonymous.post(f"/v1/customer/orders/{token}/{page}", json=body)

    async def incidents(self) -> list[Incident]:
        async with open_session(self.stack.engine) as session:
            rows = await session.exec(
                select(Incident).where(Incident.order_id == uuid.UUID(self.order_id))
            )
            return list(rows.all())

    async def stored_events(self) -> list[OrderEvent]:
        async with open_session(self.stack.engine) as session:
            rows = await session.exec(
                select(OrderEvent)
                .where(OrderEvent.order_id == uuid.UUID(self.order_id))
                .order_by(col(OrderEvent.key))
            )
            return list(rows.all())

    async def refs(self) -> OrderProviderRefs:
        async with open_session(self.stack.engine) as session:
            refs = await session.get(OrderProviderRefs, uuid.UUID(self.order_id))
        assert refs is not None
        return refs

    # --- what others do --------------------------------------------------------------------

    async def act(self, action: str, **body: Any) -> Any:
        """An operator's action (the API's key named `operator`: actor `key:operator`)."""
        operator = self.stack.as_role[Role.OPERATOR]
        return await operator.post(f"/v1/orders/{self.order_id}/{action}", json=body)

    async def pay(self, outcome: str = "succeed", reason: str = "") -> None:
        refs = await self.refs()
        response = await self.stack.sim.post(
            f"/payment/pay/{refs.payment_id}/{outcome}", params={"reason": reason}
        )
        assert response.status_code == 200 and response.json()["webhook_status"] == 202, (
            response.text
        )

    async def pack(
        self, missing: list[str] | None = None, defects: list[str] | None = None
    ) -> None:
        tasks = (
            await self.stack.sim.get(
                "/warehouse/v1/pick-tasks", params={"order_ref": self.order_id}
            )
        ).json()
        task = [t for t in tasks if t["status"] == "open"][-1]
        response = await self.stack.sim.post(
            f"/warehouse/sim/pick-tasks/{task['task_id']}/pack",
            json={"missing": missing or [], "defects": defects or []},
        )
        assert response.json()["webhook_status"] == 202, response.text

    async def carrier(self, status: str, detail: str = "", subtag: str = "") -> None:
        """The carrier reports on the order's parcel (AfterShip's tag and subtag)."""
        refs = await self.refs()
        await self.parcel_event(refs.tracking_number or "", status, detail, subtag)

    async def parcel_event(
        self, tracking_number: str, status: str, detail: str = "", subtag: str = ""
    ) -> None:
        response = await self.stack.sim.post(
            f"/carrier/sim/shipments/{tracking_number}/events",
            json={"status": status, "detail": detail, "subtag": subtag},
        )
        assert response.json()["webhook_status"] == 202, response.text

    async def parcel_back(self) -> None:
        """The warehouse says a refused or unclaimed parcel is back."""
        response = await self.stack.sim.post(f"/warehouse/sim/orders/{self.order_id}/returned")
        assert response.json()["webhook_status"] == 202, response.text

    async def stock(self, sku: str) -> int:
        return int((await self.stack.sim.get(f"/warehouse/v1/stock/{sku}")).json()["available"])

    async def collect(self) -> None:
        response = await self.stack.sim.post(f"/warehouse/sim/orders/{self.order_id}/collect")
        assert response.json()["webhook_status"] == 202, response.text

    async def sleep(self, delta: timedelta) -> None:
        """Let durable timers run: the time-skipping server passes `delta` in milliseconds."""
        await self.stack.env.sleep(delta)

    async def until_paid(self) -> OrderStatus:
        await self.waiting_for("payment")
        await self.pay()
        return await self.reached("payment.succeeded")

    async def shipped(self) -> OrderStatus:
        """From payment (or confirmation, for COD) to the carrier."""
        status = await self.until(lambda s: s.waiting_for in ("payment", "packing"))
        if status.waiting_for == "payment":
            await self.until_paid()
        await self.waiting_for("packing")
        await self.pack()
        return await self.waiting_for("carrier")

    # --- after delivery --------------------------------------------------------------------

    async def ask_for_return(
        self, body: dict[str, Any], request: str | None = None, token: str | None = None
    ) -> httpx.Response:
        """The customer's request through the JSON twin of their return page (the status
        link; `request`: the Idempotency-Key, a new one unless given)."""
        token = token or self.link(LinkPurpose.STATUS)
        async with httpx.AsyncClient(base_url=self.stack.api.base_url) as customer:
            return await customer.post(
                f"/v1/customer/orders/{token}/returns",
                json=body,
                headers={"Idempotency-Key": request or uuid.uuid4().hex},
            )

    async def returns(self) -> list[dict[str, Any]]:
        """The order's returns, as an operator reads them."""
        answer = await self.stack.api.get(f"/v1/orders/{self.order_id}/returns")
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()
        return rows

    async def return_reached(self, status: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            return next((r for r in await self.returns() if r["status"] == status), None)

        return await eventually(reached, what=f"a return {status}")

    async def to_delivery(self) -> OrderStatus:
        """From payment (or confirmation, for COD) to the doorstep, every provider event on time."""
        await self.shipped()
        for event in ("InTransit", "OutForDelivery", "Delivered"):
            await self.carrier(event)
        return await self.reached("order.delivered")
