"""Customer returns: opened by the customer (the return page of their status link) or by an
operator, each the `ReturnWorkflow` of one return (workflows/returns.py says why a workflow
of its own); decided, resolved and read here for the API, the console and the customer pages.

What may be returned is checked here against the order (its lines, what open returns hold
already); whether it is still time, and whether a person must approve it, the workflow
decides on its own clock, and the request waits for that answer (`ReturnRefused`, 409, when
the window has closed).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.documents import Shop, for_link_holder
from schema.api.returns import (
    CustomerReturnIn,
    ReturnableLine,
    ReturnableOut,
    ReturnDecisionIn,
    ReturnIn,
    ReturnLineOut,
    ReturnOut,
    SkuQuantityIn,
)
from schema.contracts import (
    InspectionFinding,
    LineEdit,
    PaymentMethod,
    ResolveStep,
    ReturnDecision,
    ReturnDecline,
    ReturnLine,
    ReturnProgress,
    ReturnReason,
    ReturnResolution,
    ReturnStatus,
    ReturnWorkflowInput,
    StepChoice,
)
from schema.ledger import REJECTED
from schema.tables import (
    Document,
    Order,
    OrderEvent,
    OrderLine,
    OrderNote,
    OrderProviderRefs,
    Refund,
    RefundLine,
    Return,
    ReturnItem,
)
from schema.vocabulary import DELIVERY_STEPS
from settings import Settings
from starter.services import metrics
from starter.services.access import Principal, audit
from starter.services.errors import (
    ActionRefused,
    OrderNotFound,
    ReturnNotFound,
    ReturnRefusal,
    ReturnRefused,
)
from starter.services.temporal import OrderWorkflows, ReturnUpdate
from workflows.returns import ReturnWorkflow

A = TypeVar("A")


async def delivered_at(session: AsyncSession, order_id: uuid.UUID) -> datetime | None:
    """When the order reached the customer (the window counts from here), or None."""
    return (
        await session.exec(
            select(func.min(OrderEvent.at)).where(
                OrderEvent.order_id == order_id, col(OrderEvent.type).in_(DELIVERY_STEPS)
            )
        )
    ).one()


async def still_the_customers(
    session: AsyncSession, order_id: uuid.UUID, *, lock: bool = True
) -> list[ReturnableLine]:
    """What of each line is still the customer's to send back or to have refunded: ordered,
    less what returns (not declined) hold, less what an operator refunded by line (unless
    the provider rejected that refund). With `lock`, the order's row stays locked until the
    transaction ends (as the refund ledger locks it), so two requests never both take the
    same items: the return and the line refund that write what they take use it so."""
    if lock:
        await session.exec(select(Order.id).where(Order.id == order_id).with_for_update())
    lines = (
        await session.exec(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by("position")
        )
    ).all()
    held = dict(
        (
            await session.exec(
                select(ReturnItem.sku, func.sum(ReturnItem.quantity))
                .join(Return, col(Return.id) == col(ReturnItem.return_id))
                .where(Return.order_id == order_id, Return.status != ReturnStatus.DECLINED.value)
                .group_by(col(ReturnItem.sku))
            )
        ).all()
    )
    rejected = select(Refund.idempotency_key).where(
        Refund.order_id == order_id, Refund.status == REJECTED
    )
    refunded = dict(
        (
            await session.exec(
                select(RefundLine.sku, func.sum(RefundLine.quantity))
                .where(
                    RefundLine.order_id == order_id,
                    col(RefundLine.refund_key).not_in(rejected),
                )
                .group_by(col(RefundLine.sku))
            )
        ).all()
    )
    return [
        ReturnableLine(
            sku=line.sku,
            name=line.name,
            ordered=line.quantity,
            returnable=max(
                line.quantity - int(held.get(line.sku, 0)) - int(refunded.get(line.sku, 0)), 0
            ),
            unit_price=line.unit_price,
        )
        for line in lines
    ]


def _chosen(
    wanted: Sequence[SkuQuantityIn], returnable: list[ReturnableLine]
) -> list[ReturnableLine]:
    """The lines asked for, each within what may still be returned."""
    by_sku = {line.sku: line for line in returnable}
    chosen, seen = [], set()
    for position, line in enumerate(wanted):
        found = by_sku.get(line.sku)
        if found is None:
            raise ReturnRefused(
                f"{line.sku} is not an item of this order",
                f"lines.{position}.sku",
                code=ReturnRefusal.NOT_AN_ITEM,
                item=line.sku,
            )
        if line.sku in seen:
            raise ReturnRefused(
                f"{found.name} is named twice",
                f"lines.{position}.sku",
                code=ReturnRefusal.NAMED_TWICE,
                item=found.name,
            )
        seen.add(line.sku)
        if line.quantity > found.returnable:
            raise ReturnRefused(
                f"{found.returnable} of {found.name} can be returned ({found.ordered} ordered, "
                "the rest returned or refunded already)",
                f"lines.{position}.quantity",
                code=ReturnRefusal.TOO_MANY,
                item=found.name,
                count=found.returnable,
                ordered=found.ordered,
            )
        chosen.append(found.model_copy(update={"returnable": line.quantity}))
    return chosen


async def open_return(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    settings: Settings,
    caller: Principal,
    order_id: uuid.UUID,
    key: str,
    body: ReturnIn | CustomerReturnIn,
) -> tuple[ReturnOut, bool]:
    """Open a return of a delivered order; the same key again answers with the same return
    (and False: not created now). Raises ReturnRefused (409) with the reason."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    existing = (
        await session.exec(
            select(Return).where(Return.order_id == order_id, Return.request_key == key)
        )
    ).first()
    if existing is not None and existing.status != ReturnStatus.REQUESTED.value:
        return await _view(session, existing), False
    delivered = await delivered_at(session, order_id)
    if delivered is None:
        raise ReturnRefused(
            "the order has not been delivered yet", code=ReturnRefusal.NOT_DELIVERED
        )
    if existing is None:
        ret, kept, created = await _written(session, caller, order, key, body)
    else:  # asked before and never started (Temporal was away): start it now, as it was kept
        ret, kept, created = existing, await _kept_lines(session, existing), False
    value = sum((line.unit_price * line.returnable for line in kept), Decimal("0.00"))
    refs = await session.get(OrderProviderRefs, order_id)
    prepaid = order.payment_method == PaymentMethod.PREPAID.value
    progress = await workflows.start_return(
        ReturnWorkflowInput(
            return_id=str(ret.id),
            order_id=str(order_id),
            number=ret.number,
            lines=[
                ReturnLine(line.sku, line.returnable, line.unit_price, line.ordered)
                for line in kept
            ],
            reason=ReturnReason(ret.reason),
            resolution=ReturnResolution(ret.resolution),
            delivered_at=delivered,
            payment_method=PaymentMethod(order.payment_method),
            policy=settings.order_policy(),
            returns=settings.return_policy(),
            actor=ret.requested_by,
            payment_id=refs.payment_id if prepaid and refs is not None else None,
            paid=order.paid_amount if prepaid else None,
            replacement=_replacement(body, kept, value),
        )
    )
    metrics.ACTION_OUTCOMES.labels(action="open_return", outcome=progress.status.value).inc()
    if progress.decline == ReturnDecline.WINDOW_CLOSED:
        closed = delivered + settings.policy_return_window
        raise ReturnRefused(
            f"the time for returns ended on {closed.date().isoformat()} "
            f"({settings.policy_return_window.days} days after delivery)",
            code=ReturnRefusal.WINDOW_CLOSED,
            date=closed.date(),
        )
    await session.refresh(ret)  # the workflow has written to it meanwhile (its parcel)
    return await _view(session, ret, progress), created


async def _kept_lines(session: AsyncSession, ret: Return) -> list[ReturnableLine]:
    """A return's lines as they were chosen when it was written."""
    items = (await session.exec(select(ReturnItem).where(ReturnItem.return_id == ret.id))).all()
    lines = (await session.exec(select(OrderLine).where(OrderLine.order_id == ret.order_id))).all()
    ordered = {line.sku: line.quantity for line in lines}
    return [
        ReturnableLine(
            sku=item.sku,
            name=item.name,
            ordered=ordered.get(item.sku, item.quantity),
            returnable=item.quantity,
            unit_price=item.unit_price,
        )
        for item in items
    ]


async def _written(
    session: AsyncSession,
    caller: Principal,
    order: Order,
    key: str,
    body: ReturnIn | CustomerReturnIn,
) -> tuple[Return, list[ReturnableLine], bool]:
    """The return's row and lines, committed before its workflow starts (a retry of the
    request finds them by its key); False: the same request wrote them at the same moment."""
    order_id = order.id
    chosen = _chosen(body.lines, await still_the_customers(session, order_id))
    value = sum((line.unit_price * line.returnable for line in chosen), Decimal("0.00"))
    _replacement(body, chosen, value)  # refused before anything is written
    seq = (
        await session.exec(
            select(func.coalesce(func.max(Return.seq), 0)).where(Return.order_id == order_id)
        )
    ).one() + 1
    ret = Return(
        order_id=order_id,
        seq=seq,
        number=f"{order.number}-R{seq}",
        request_key=key,
        status=ReturnStatus.REQUESTED.value,
        reason=body.reason.value,
        resolution=body.resolution.value,
        comment=body.comment,
        requested_by=caller.actor,
    )
    session.add(ret)
    for line in chosen:
        session.add(
            ReturnItem(
                return_id=ret.id,
                sku=line.sku,
                name=line.name,
                quantity=line.returnable,
                unit_price=line.unit_price,
            )
        )
    await audit(session, caller, "order.return.requested", str(order_id), number=ret.number)
    try:
        await session.commit()
    except IntegrityError:  # the same request at the same moment, or the same number
        await session.rollback()
        again = (
            await session.exec(
                select(Return).where(Return.order_id == order_id, Return.request_key == key)
            )
        ).first()
        if again is None:
            raise ActionRefused(
                "another return of this order was opened at the same moment: retry"
            ) from None
        return again, await _kept_lines(session, again), False
    return ret, chosen, True


def _replacement(
    body: ReturnIn | CustomerReturnIn, chosen: list[ReturnableLine], value: Decimal
) -> list[LineEdit] | None:
    """An exchange's new lines: the operator's, or the same items (what the customer asks
    for); never worth more than what comes back."""
    if body.resolution != ReturnResolution.EXCHANGE:
        return None
    given = body.replacement if isinstance(body, ReturnIn) else None
    if given is None:
        return [LineEdit(line.sku, line.name, line.returnable, line.unit_price) for line in chosen]
    lines = [LineEdit(line.sku, line.name, line.quantity, line.unit_price) for line in given]
    worth = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
    if worth > value:
        raise ReturnRefused(
            f"the new lines ({worth}) are worth more than what is returned ({value}): refund "
            "the return and place a new order instead",
            "replacement",
            code=ReturnRefusal.REPLACEMENT_WORTH_MORE,
        )
    return lines


async def decide_return(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    body: ReturnDecisionIn,
) -> ReturnOut:
    """An operator's approval (or not) of a return policy sent to a person."""
    ret = await _load(session, order_id, return_id)
    note = None
    if body.note:
        note = OrderNote(
            order_id=order_id, author=caller.actor, text=body.note, action="decide_return"
        )
        session.add(note)
        await session.flush()
    await audit(session, caller, "order.decide_return.requested", str(order_id), number=ret.number)
    await session.commit()
    decision = ReturnDecision(caller.actor, body.approve, note.id if note is not None else None)
    return await _act(
        session, workflows, caller, ret, ReturnWorkflow.decide, decision, "decide_return", note
    )


async def resolve_return_step(
    session: AsyncSession,
    *,
    workflows: OrderWorkflows,
    caller: Principal,
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    choice: StepChoice,
) -> ReturnOut:
    """An operator's decision about a return's step that failed for good."""
    ret = await _load(session, order_id, return_id)
    await audit(session, caller, "order.resolve_return.requested", str(order_id), number=ret.number)
    await session.commit()
    resolution = ResolveStep(caller.actor, choice)
    return await _act(
        session, workflows, caller, ret, ReturnWorkflow.resolve_step, resolution, "resolve_return"
    )


async def _act(
    session: AsyncSession,
    workflows: OrderWorkflows,
    caller: Principal,
    ret: Return,
    update: ReturnUpdate[A],
    argument: A,
    action: str,
    note: OrderNote | None = None,
) -> ReturnOut:
    """Send the update, audited before and after (a refusal deletes the note it came with)."""
    try:
        progress = await workflows.act_on_return(str(ret.id), update, argument)
    except ActionRefused as refused:
        if note is not None:
            await session.delete(note)
        await audit(
            session, caller, f"order.{action}.refused", str(ret.order_id), reason=str(refused)
        )
        await session.commit()
        metrics.ACTION_OUTCOMES.labels(action=action, outcome="refused").inc()
        raise
    await audit(session, caller, f"order.{action}", str(ret.order_id), number=ret.number)
    await session.commit()
    metrics.ACTION_OUTCOMES.labels(action=action, outcome="accepted").inc()
    await session.refresh(ret)
    return await _view(session, ret, progress)


async def _load(session: AsyncSession, order_id: uuid.UUID, return_id: uuid.UUID) -> Return:
    ret = await session.get(Return, return_id)
    if ret is None or ret.order_id != order_id:
        raise ReturnNotFound(return_id)
    return ret


async def returns_of(session: AsyncSession, *, order_id: uuid.UUID) -> list[ReturnOut]:
    if await session.get(Order, order_id) is None:
        raise OrderNotFound(order_id)
    rows = (
        await session.exec(
            select(Return).where(Return.order_id == order_id).order_by(col(Return.seq))
        )
    ).all()
    return [await _view(session, ret) for ret in rows]


async def returnable(session: AsyncSession, *, order_id: uuid.UUID) -> ReturnableOut:
    """What the customer may still send back, and their returns so far."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return ReturnableOut(
        number=order.number,
        delivered_at=await delivered_at(session, order_id),
        lines=await still_the_customers(session, order_id, lock=False),
        reasons=list(ReturnReason),
        returns=[as_customer_sees(ret) for ret in await returns_of(session, order_id=order_id)],
    )


def as_customer_sees(ret: ReturnOut) -> ReturnOut:
    """A return as its customer reads it: who asked is "customer" or "shop", never a name of
    the shop's staff."""
    return ret.model_copy(
        update={"requested_by": "customer" if ret.requested_by == "customer" else "shop"}
    )


async def return_label(
    session: AsyncSession, *, order_id: uuid.UUID, return_id: uuid.UUID
) -> tuple[str, bytes]:
    """The return's label (its number and the PDF); ReturnNotFound until it is printed."""
    ret = await _load(session, order_id, return_id)
    document = (
        await session.exec(
            select(Document).where(Document.order_id == order_id, Document.kind == ret.label_kind)
        )
    ).first()
    if document is None:
        raise ReturnNotFound(f"{return_id}: its label")
    return ret.number, document.content


async def return_label_for_link_holder(
    session: AsyncSession, *, order_id: uuid.UUID, return_id: uuid.UUID, shop: Shop
) -> tuple[str, bytes]:
    """The return's label as the customer's link serves it: the contact masked (whoever the
    link was forwarded to learns no street or postcode); ReturnNotFound until it is printed."""
    ret = await _load(session, order_id, return_id)
    content = await for_link_holder(session, order_id, ret.label_kind, shop)
    if content is None:
        raise ReturnNotFound(f"{return_id}: its label")
    return ret.number, content


async def _view(
    session: AsyncSession, ret: Return, progress: ReturnProgress | None = None
) -> ReturnOut:
    """The return as its row keeps it; a fresher status from its workflow when given."""
    items = (
        await session.exec(
            select(ReturnItem).where(ReturnItem.return_id == ret.id).order_by(col(ReturnItem.id))
        )
    ).all()
    status = progress.status if progress is not None else ReturnStatus(ret.status)
    decline = progress.decline if progress is not None else ret.decline
    return ReturnOut(
        return_id=str(ret.id),
        number=ret.number,
        status=status,
        reason=ReturnReason(ret.reason),
        resolution=ReturnResolution(ret.resolution),
        requested_by=ret.requested_by,
        lines=[
            ReturnLineOut(
                sku=item.sku,
                name=item.name,
                quantity=item.quantity,
                unit_price=item.unit_price,
                accepted=item.accepted,
                finding=InspectionFinding(item.finding) if item.finding else None,
            )
            for item in items
        ],
        decline=ReturnDecline(decline) if decline else None,
        needs_action=ret.needs_action,
        tracking_number=ret.tracking_number,
        tracking_url=ret.tracking_url,
        needs_label=ret.needs_label,
        refunded=ret.refunded,
        exchange_order_id=str(ret.exchange_order_id) if ret.exchange_order_id else None,
        created_at=ret.created_at,
    )
