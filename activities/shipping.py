"""Handover: the carrier and service chosen by rules held in data, a booked shipment (a
second one when the first was lost), its cancellation; a customer's return shipment, from
their address back to the shop; and, for carriers without webhooks, the tracking rounds of
the schedule (`poll_tracking`, `record_tracking`).

Every carrier is reached through the port in activities/carriers/ (the one settings choose).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.carrier_rules import choose_carrier
from activities.carriers import (
    Address,
    Booking,
    Branch,
    Carrier,
    ParcelRequest,
    TrackedParcel,
    TrackingUpdate,
)
from activities.orders import (
    load_contact,
    load_order,
    load_refs,
    load_return,
    order_lines,
    save_refs,
)
from schema.contracts import (
    BookShipmentInput,
    CarrierEvent,
    OrderRef,
    ParcelNews,
    PaymentMethod,
    PollTrackingInput,
    PollTrackingResult,
    RecordTrackingInput,
    ReturnRef,
    Shipment,
    TrackingCursor,
    TrackingStatus,
)
from schema.database import open_session
from schema.tables import OrderContact, Return, ReturnItem
from schema.tables import TrackedParcel as TrackedParcelRow
from schema.vocabulary import ErrorType

KYIV = ZoneInfo("Europe/Kyiv")  # the carriers' day, for their events' ids


class ShippingActivities:
    def __init__(self, engine: AsyncEngine, carrier: Carrier, callback_url: str) -> None:
        self._engine = engine
        self._carrier = carrier
        self._callback_url = callback_url

    @activity.defn
    async def book_shipment(self, input: BookShipmentInput) -> Shipment:
        """Book the order's parcel: the first under `{order}:shipment` (as always), a second
        after a loss under `{order}:shipment:2`, so that each is booked once."""
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
        if contact.country is None:
            raise ApplicationError(
                "order has no address to ship to", type=ErrorType.NO_ADDRESS, non_retryable=True
            )
        lines = await order_lines(self._engine, input.order_id)
        choice = choose_carrier(
            country=contact.country,
            method=order.delivery_method,
            skus=[(line.sku, line.quantity) for line in lines],
            speed=order.delivery_speed,
            adapter=self._carrier.name,
        )
        cod = order.payment_method == PaymentMethod.COD
        suffix = f":{input.parcel}" if input.parcel > 1 else ""
        booking = await self._carrier.book(
            ParcelRequest(
                key=f"{input.order_id}:shipment{suffix}",
                order_id=input.order_id,
                reference=order.number + (f"/{input.parcel}" if input.parcel > 1 else ""),
                service=choice.service,
                weight_kg=choice.weight_kg,
                declared_value=order.total,
                description=_goods(line.name for line in lines),
                address=_address(contact),
                branch=_branch(contact),
                cash_on_delivery=order.total if cod else None,
                callback_url=self._callback_url,
            )
        )
        await save_refs(
            self._engine,
            input.order_id,
            carrier=choice.carrier,
            service=choice.service,
            tracking_number=booking.tracking_number,
            tracking_url=booking.tracking_url,
            carrier_ref=booking.carrier_ref,
        )
        if self._carrier.polls:
            await _track(self._engine, self._carrier.name, input.order_id, booking)
        return Shipment(
            choice.carrier,
            choice.service,
            booking.tracking_number,
            booking.tracking_url,
            expected_date=booking.expected_date,
            reports_payout=cod and self._carrier.reports_payout,
        )

    @activity.defn
    async def cancel_shipment(self, input: OrderRef) -> None:
        refs = await load_refs(self._engine, input.order_id)
        if refs is None or not refs.tracking_number:
            return
        await self._carrier.cancel(refs.tracking_number, refs.carrier_ref or refs.tracking_number)
        async with open_session(self._engine) as session:
            await session.execute(
                update(TrackedParcelRow)
                .where(col(TrackedParcelRow.tracking_number) == refs.tracking_number)
                .values(done=True)
            )
            await session.commit()

    @activity.defn
    async def book_return_shipment(self, input: ReturnRef) -> Shipment:
        """The return parcel, from the customer's address to the shop, once per return; the
        carrier's events about it name the return (`return_ref`)."""
        async with open_session(self._engine) as session:
            ret = await load_return(session, input.return_id)
            order = await load_order(session, str(ret.order_id))
            contact = await load_contact(session, order)
            items = (
                await session.exec(select(ReturnItem).where(ReturnItem.return_id == ret.id))
            ).all()
        if contact.country is None:
            raise ApplicationError(
                "order has no address to collect from",
                type=ErrorType.NO_ADDRESS,
                non_retryable=True,
            )
        choice = choose_carrier(
            country=contact.country,
            method=order.delivery_method,
            skus=[(item.sku, item.quantity) for item in items],
            adapter=self._carrier.name,
        )
        delivered = await load_refs(self._engine, str(order.id))
        booking = await self._carrier.book_return(
            ParcelRequest(
                key=f"{input.return_id}:return-shipment",
                order_id=str(order.id),
                reference=ret.number,
                service=choice.service,
                weight_kg=choice.weight_kg,
                declared_value=sum(
                    (item.unit_price * item.quantity for item in items), Decimal("0")
                ),
                description=_goods(item.name for item in items),
                address=_address(contact),
                branch=_branch(contact),
                callback_url=self._callback_url,
                return_ref=input.return_id,
                lines=[(item.sku, item.quantity) for item in items],
                delivered_tracking_number=delivered.tracking_number if delivered else None,
            )
        )
        async with open_session(self._engine) as session:
            await session.execute(
                update(Return)
                .where(col(Return.id) == uuid.UUID(input.return_id))
                .values(
                    carrier=choice.carrier,
                    tracking_number=booking.tracking_number,
                    tracking_url=booking.tracking_url,
                    needs_label=booking.label,
                )
            )
            await session.commit()
        if self._carrier.polls:
            await _track_return(self._engine, self._carrier.name, ret, booking)
        return Shipment(
            choice.carrier, choice.service, booking.tracking_number, booking.tracking_url
        )

    # --- tracking by polling (CarrierTrackingWorkflow) ------------------------------------

    @activity.defn
    async def poll_tracking(self, input: PollTrackingInput) -> PollTrackingResult:
        """One page of the parcels in flight with this carrier: asked in the carrier's own
        batches, answered with what changed since the status kept (nothing is kept here: the
        workflow records what it told, so a round cut short is told again, never lost)."""
        carrier = self._carrier
        if not carrier.polls:
            return PollTrackingResult(news=[], asked=0, calls=0)
        async with open_session(self._engine) as session:
            if input.after is None:  # a round begins: parcels of ended orders leave it
                await session.execute(ENDED, {"api": carrier.name})
                await session.execute(RETURNS_ENDED, {"api": carrier.name})
                await session.commit()
            after = input.after or TrackingCursor(str(uuid.UUID(int=0)), "")
            rows = (
                await session.execute(
                    IN_FLIGHT,
                    {
                        "api": carrier.name,
                        "order": uuid.UUID(after.order_id),
                        "number": after.tracking_number,
                        "limit": input.limit,
                    },
                )
            ).all()
        known = {row.tracking_number: row for row in rows}
        news, calls = [], 0
        for start in range(0, len(rows), carrier.batch):
            batch = rows[start : start + carrier.batch]
            updates = await carrier.track(
                [TrackedParcel(r.tracking_number, r.phone) for r in batch]
            )
            calls += 1
            for said in updates:
                row = known.get(said.tracking_number)
                if row is None or said.code == row.code:
                    continue
                if row.return_id is None:
                    news.append(ParcelNews(str(row.order_id), _event(carrier.name, said)))
                elif said.status != TrackingStatus.INFO_RECEIVED:  # booked: told already
                    news.append(
                        ParcelNews(
                            str(row.order_id), _event(carrier.name, said), str(row.return_id)
                        )
                    )
        last = rows[-1] if len(rows) == input.limit else None
        return PollTrackingResult(
            news=news,
            asked=len(rows),
            calls=calls,
            after=TrackingCursor(str(last.order_id), last.tracking_number) if last else None,
        )

    @activity.defn
    async def record_tracking(self, input: RecordTrackingInput) -> None:
        """The status codes the orders were told become the parcels' last."""
        async with open_session(self._engine) as session:
            for news in input.news:
                await session.execute(
                    update(TrackedParcelRow)
                    .where(col(TrackedParcelRow.tracking_number) == news.event.tracking_number)
                    .values(code=news.event.code, changed_at=news.event.at)
                )
            await session.commit()


# The parcels in flight with one carrier, a page at a time (ix_tracked_parcels_in_flight),
# with the phone Nova Poshta wants beside each number (read here, never sent to Temporal).
# A return parcel is asked about while its return waits for it, whatever its order's stage.
IN_FLIGHT = text(
    """
    SELECT p.tracking_number, p.order_id, p.return_id, p.code, c.phone
    FROM tracked_parcels p
    JOIN orders o ON o.id = p.order_id
    JOIN order_contacts c ON c.order_id = p.order_id
    WHERE p.carrier_api = :api AND NOT p.done
      AND (p.return_id IS NOT NULL OR o.stage NOT IN ('completed', 'cancelled'))
      AND (p.order_id, p.tracking_number) > (:order, :number)
    ORDER BY p.order_id, p.tracking_number
    LIMIT :limit
    """
)
ENDED = text(
    """
    UPDATE tracked_parcels p SET done = true FROM orders o
    WHERE o.id = p.order_id AND p.carrier_api = :api AND NOT p.done AND p.return_id IS NULL
      AND o.stage IN ('completed', 'cancelled')
    """
)
RETURNS_ENDED = text(  # received, or never sent (declined): nothing more to hear
    """
    UPDATE tracked_parcels p SET done = true FROM returns r
    WHERE r.id = p.return_id AND p.carrier_api = :api AND NOT p.done
      AND r.status NOT IN ('approved', 'in_transit')
    """
)


def _event(api: str, update: TrackingUpdate) -> CarrierEvent:
    """A carrier's news as the order hears it; the id is the parcel, the code and the day, so
    the same news told twice is one event (the order drops the repeat)."""
    day = update.at.astimezone(KYIV).date().isoformat()
    return CarrierEvent(
        event_id=f"{api}:{update.tracking_number}:{update.code}:{day}",
        tracking_number=update.tracking_number,
        status=update.status,
        at=update.at,
        detail=update.detail,
        subtag=update.subtag,
        code=update.code,
        storage_until=update.storage_until,
        cod=update.cod,
        cod_amount=update.cod_amount,
    )


def _address(contact: OrderContact) -> Address:
    return Address(
        country=contact.country or "",
        city=contact.city,
        line1=contact.line1,
        line2=contact.line2,
        postal_code=contact.postal_code,
        name=contact.name,
        phone=contact.phone,
    )


def _branch(contact: OrderContact) -> Branch | None:
    if contact.branch_ref is None:
        return None
    return Branch(ref=contact.branch_ref, number=contact.branch_number or "")


def _goods(names: Iterable[str]) -> str:
    """What is inside, as a carrier's cargo description wants it: short."""
    return ", ".join(dict.fromkeys(names))[:100]


async def _track_return(engine: AsyncEngine, api: str, ret: Return, booking: Booking) -> None:
    """The return parcel joins the tracking rounds (once, however often it is booked)."""
    async with open_session(engine) as session:
        await session.execute(
            insert(TrackedParcelRow)
            .values(
                tracking_number=booking.tracking_number,
                carrier_api=api,
                order_id=ret.order_id,
                return_id=ret.id,
            )
            .on_conflict_do_nothing(index_elements=["tracking_number"])
        )
        await session.commit()


async def _track(engine: AsyncEngine, api: str, order_id: str, booking: Booking) -> None:
    """The parcel joins the tracking rounds; the order's earlier parcels (a lost one) leave
    (its returns' parcels stay)."""
    async with open_session(engine) as session:
        await session.execute(
            update(TrackedParcelRow)
            .where(
                col(TrackedParcelRow.order_id) == uuid.UUID(order_id),
                col(TrackedParcelRow.tracking_number) != booking.tracking_number,
                col(TrackedParcelRow.return_id).is_(None),
            )
            .values(done=True)
        )
        await session.execute(
            insert(TrackedParcelRow)
            .values(
                tracking_number=booking.tracking_number,
                carrier_api=api,
                order_id=uuid.UUID(order_id),
            )
            .on_conflict_do_nothing(index_elements=["tracking_number"])
        )
        await session.commit()
