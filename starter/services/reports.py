"""Reports for managers: how the process works, in numbers (seeds 000, 002, 004).

Every figure is about one cohort: the orders created in the window that match the filters
(`schema/reports.py` defines each figure; the API's OpenAPI description carries them).

Why `order_facts` (an incremental aggregate) and not indexes over the raw rows: a report
over 100,000 orders would read ~2 million timeline events and ~1 million notifications, and
the time per stage needs a window function over every event; an index finds rows, it does
not make reading them cheaper. `make bench` (bench/reports.py) measured the time per stage
alone, from the raw timeline of 100,000 orders, at about 5 s of database CPU. So the database keeps
one row per order with its facts (`schema.tables.OrderFacts`), recounted by triggers whenever
a row of that order is written, and a report reads 100,000 rows of 30 MB. What is left is
sorting each stage's seconds for exact percentiles (`percentile_cont`): the parts of a
report run at once, each on its own connection, so both cores share them, with room to sort
in memory; the daily report groups by a stored day. The rare rows, incidents, SLA breaches
by what the order waited for and returns by reason, are read raw (partial indexes find the
breaches and the returns; how many returns an order had is a fact like the others).
The README's "Reports and metrics" has the measured times.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    Date,
    Float,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    text,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.contracts import CancelReason, IncidentCause, ReturnReason, Stage, WaitingFor
from schema.database import open_session
from schema.reports import (
    ChannelFigures,
    DailyReport,
    Day,
    FeedbackFigures,
    Figures,
    Incidents,
    OnTime,
    ReportQuery,
    ReportWindow,
    Returns,
    SlaBreaches,
    StageTime,
    StatusPage,
    Summary,
)
from schema.tables import Incident, OrderEvent, OrderFacts
from schema.vocabulary import EventType

TIMED_STAGES = [stage for stage in Stage if stage not in (Stage.COMPLETED, Stage.CANCELLED)]
# channel -> its columns' prefix
CHANNELS = {"email": "emails", "sms": "sms", "push": "push", "viber": "viber"}
CANCEL_REASONS = [*(reason.value for reason in CancelReason), "invalid"]
BREACH = EventType.SLA_SILENCE_BREACHED
RETURN = EventType.RETURN_REQUESTED

Bucket = date | None  # the day, or None for the whole window

_facts = OrderFacts.__table__.c  # type: ignore[attr-defined]
_QUANTILES: ColumnElement[Any] = literal_column("ARRAY[0.5, 0.9]")


def _percentiles(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.percentile_cont(_QUANTILES).within_group(column).cast(ARRAY(Float))


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(condition)


def _sum(column: ColumnElement[Any], condition: ColumnElement[bool] | None = None) -> Any:
    total = func.sum(column) if condition is None else func.sum(column).filter(condition)
    return func.coalesce(total, 0).cast(Integer)


def _ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _cohort(query: ReportQuery) -> list[ColumnElement[bool]]:
    since, until = query.window()
    where = [_facts.created_at >= since, _facts.created_at < until]
    if query.delivery_method is not None:
        where.append(_facts.delivery_method == query.delivery_method.value)
    if query.payment_method is not None:
        where.append(_facts.payment_method == query.payment_method.value)
    if query.carrier:
        where.append(_facts.carrier == query.carrier)
    return where


async def _figures(session: AsyncSession, query: ReportQuery, daily: bool) -> dict[Bucket, Figures]:
    bucket = (_facts.created_on if daily else literal_column("NULL").cast(Date)).label("bucket")
    where = _cohort(query)
    by_bucket: ColumnElement[Any] = literal_column("bucket")
    delivered = _facts.delivered_at.is_not(None)
    delivered_day = cast(func.timezone("UTC", _facts.delivered_at), Date)
    promised = and_(delivered, _facts.promised_date.is_not(None))
    days_late = case(
        (and_(promised, delivered_day > _facts.promised_date), delivered_day - _facts.promised_date)
    )
    cancelled = _facts.cancelled_at.is_not(None)
    coded = [reason for reason in CANCEL_REASONS if reason != "other"]
    counts: list[Any] = [
        func.count().label("orders"),
        _count(delivered).label("delivered"),
        _count(cancelled).label("cancelled"),
        *(_count(_facts.cancel_reason == reason).label(f"reason_{reason}") for reason in coded),
        _count(and_(cancelled, func.coalesce(_facts.cancel_reason, "other").not_in(coded))).label(
            "reason_other"
        ),
        _count(promised).label("delivered_with_promise"),
        _count(and_(promised, delivered_day <= _facts.promised_date)).label("on_time"),
        func.max(days_late).label("days_late_max"),
        _sum(_facts.sla_breaches).label("breaches"),
        _count(_facts.sla_breaches > 0).label("breached_orders"),
        _count(_facts.feedback_requested).label("feedback_requested"),
        _count(or_(_facts.rating.is_not(None), _facts.nps.is_not(None))).label("responses"),
        func.count(_facts.nps).label("nps_answers"),
        _count(_facts.nps >= 9).label("promoters"),
        _count(_facts.nps.between(7, 8)).label("passives"),
        _count(_facts.nps <= 6).label("detractors"),
        func.count(_facts.rating).label("rating_answers"),
        _count(_facts.rating >= 4).label("satisfied"),
        func.avg(_facts.rating).cast(Float).label("average_rating"),
        *(_count(_facts.rating == stars).label(f"rated_{stars}") for stars in range(1, 6)),
        _sum(_facts.status_page_views).label("views"),
        _sum(_facts.status_link_clicks).label("clicks"),
        _sum(_facts.support_contacts).label("support_contacts"),
        _sum(_facts.returns).label("returns"),
        _count(_facts.returns > 0).label("returned_orders"),
        *(func.count(_facts[f"{stage}_seconds"]).label(f"{stage}_n") for stage in TIMED_STAGES),
    ]
    for channel, prefix in CHANNELS.items():
        counts += [
            _sum(_facts[f"{prefix}_sent"]).label(f"{channel}_sent"),
            _sum(_facts[f"{prefix}_failed"]).label(f"{channel}_failed"),
            _sum(_facts[f"{prefix}_sent"], delivered).label(f"{channel}_sent_delivered"),
        ]
    # Each percentile is a sort of its own: in two halves (the counts with the first), so that
    # two connections share them.
    percentiles = [
        _percentiles(days_late).label("days_late"),
        *(_percentiles(_facts[f"{stage}_seconds"]).label(f"{stage}_p") for stage in TIMED_STAGES),
    ]
    half = len(percentiles) // 2
    per_customer = (
        select(bucket, func.bool_or(_facts.returning_customer).label("returning"))
        .where(*where)
        .group_by(by_bucket, _facts.customer_id)
        .subquery()
    )
    figures = [
        *(
            select(bucket, *columns).where(*where).group_by(by_bucket)
            for columns in (counts + percentiles[:half], percentiles[half:])
        ),
        select(
            per_customer.c.bucket,
            func.count().label("customers"),
            _count(per_customer.c.returning).label("returning_customers"),
        ).group_by(per_customer.c.bucket),
    ]
    waited_for = col(OrderEvent.detail)["waiting_for"].astext
    return_reason = col(OrderEvent.detail)["reason"].astext
    breakdowns = [
        select(bucket, col(Incident.stage) + "|" + col(Incident.cause), func.count())
        .join(OrderFacts, _facts.order_id == col(Incident.order_id))
        .where(*where)
        .group_by(by_bucket, col(Incident.stage), col(Incident.cause)),
        select(bucket, waited_for, func.count())
        .join(OrderFacts, _facts.order_id == col(OrderEvent.order_id))
        .where(*where, col(OrderEvent.type) == BREACH)
        .group_by(by_bucket, waited_for),
        # Rare rows too, found by a partial index like the breaches.
        select(bucket, return_reason, func.count())
        .join(OrderFacts, _facts.order_id == col(OrderEvent.order_id))
        .where(*where, col(OrderEvent.type) == RETURN)
        .group_by(by_bucket, return_reason),
    ]
    engine = session.bind
    assert isinstance(engine, AsyncEngine)

    async def rows(statement: Any) -> list[Row[Any]]:
        # Each part on a connection of its own, so that the database works on them at once
        # (parallel workers within a part would only compete with the other parts), with room
        # to sort 100,000 rows in memory.
        async with open_session(engine) as own:
            await own.execute(
                text("SET LOCAL work_mem = '32MB'; SET LOCAL max_parallel_workers_per_gather = 0")
            )
            return list((await own.execute(statement)).all())

    answers = await asyncio.gather(*(rows(statement) for statement in [*figures, *breakdowns]))
    values: dict[Bucket, dict[str, Any]] = {}
    for answer in answers[: len(figures)]:
        for row in answer:
            values.setdefault(row.bucket, {}).update(row._mapping)
    incidents, breaches, returns = map(_breakdown, answers[len(figures) :])
    return {
        key: _assemble(row, incidents.get(key, {}), breaches.get(key, {}), returns.get(key, {}))
        for key, row in values.items()
    }


def _breakdown(rows: list[Row[Any]]) -> dict[Bucket, dict[str, int]]:
    counts: dict[Bucket, dict[str, int]] = {}
    for key, label, count in map(tuple, rows):
        counts.setdefault(key, {})[label] = count
    return counts


def _every(names: Iterable[str], found: Mapping[str, int]) -> dict[str, int]:
    """Every known key (zero when absent), then any other key found."""
    return {**dict.fromkeys(names, 0), **found}


def _assemble(
    row: Mapping[str, Any] | None,
    incidents: dict[str, int],
    breaches: dict[str, int],
    returns: dict[str, int],
) -> Figures:
    r: Mapping[str, Any] = row if row is not None else {}

    def n(name: str) -> int:
        return int(r.get(name) or 0)

    def p(name: str) -> list[float | None]:
        return list(r.get(name) or [None, None])

    orders, delivered = n("orders"), n("delivered")
    late = n("delivered_with_promise") - n("on_time")
    days_late = p("days_late")
    grid: dict[str, dict[str, int]] = {
        stage.value: dict.fromkeys((cause.value for cause in IncidentCause), 0) for stage in Stage
    }
    for key, count in incidents.items():
        stage, _, cause = key.partition("|")
        grid.setdefault(stage, {})[cause] = count
    return Figures(
        orders=orders,
        delivered=delivered,
        cancelled=n("cancelled"),
        cancellation_rate=_ratio(n("cancelled"), orders),
        cancellations_by_reason={reason: n(f"reason_{reason}") for reason in CANCEL_REASONS},
        stage_seconds={
            stage.value: StageTime(
                count=n(f"{stage.value}_n"),
                p50=p(f"{stage.value}_p")[0],
                p90=p(f"{stage.value}_p")[1],
            )
            for stage in TIMED_STAGES
        },
        sla_breaches=SlaBreaches(
            count=n("breaches"),
            orders=n("breached_orders"),
            share=_ratio(n("breached_orders"), orders),
            by_waiting_for=_every((w.value for w in WaitingFor), breaches),
        ),
        on_time_rate=_ratio(n("on_time"), n("delivered_with_promise")),
        on_time=OnTime(
            delivered_with_promise=n("delivered_with_promise"),
            on_time=n("on_time"),
            late=late,
            days_late_p50=days_late[0],
            days_late_p90=days_late[1],
            days_late_max=r.get("days_late_max"),
        ),
        feedback=FeedbackFigures(
            requested=n("feedback_requested"),
            responses=n("responses"),
            response_rate=_ratio(n("responses"), n("feedback_requested")),
            nps_answers=n("nps_answers"),
            promoters=n("promoters"),
            passives=n("passives"),
            detractors=n("detractors"),
            nps=_ratio(100 * (n("promoters") - n("detractors")), n("nps_answers")),
            rating_answers=n("rating_answers"),
            csat=_ratio(n("satisfied"), n("rating_answers")),
            average_rating=r.get("average_rating"),
            ratings={str(stars): n(f"rated_{stars}") for stars in range(1, 6)},
        ),
        incidents=Incidents(count=sum(incidents.values()), by_stage_and_cause=grid),
        notifications={
            channel: ChannelFigures(
                sent=n(f"{channel}_sent"),
                failed=n(f"{channel}_failed"),
                sent_per_delivered_order=_ratio(n(f"{channel}_sent_delivered"), delivered),
            )
            for channel in CHANNELS
        },
        status_page=StatusPage(
            views=n("views"), views_per_order=_ratio(n("views"), orders), link_clicks=n("clicks")
        ),
        customers=n("customers"),
        returning_customers=n("returning_customers"),
        repeat_customer_rate=_ratio(n("returning_customers"), n("customers")),
        support_contacts=n("support_contacts"),
        support_contacts_per_order=_ratio(n("support_contacts"), orders),
        returns=Returns(
            count=n("returns"),
            orders=n("returned_orders"),
            rate=_ratio(n("returned_orders"), delivered),
            by_reason=_every((reason.value for reason in ReturnReason), returns),
        ),
    )


def _window(query: ReportQuery) -> ReportWindow:
    since, until = query.window()
    return ReportWindow(
        since=since,
        until=until,
        delivery_method=query.delivery_method,
        payment_method=query.payment_method,
        carrier=query.carrier,
    )


async def summary(session: AsyncSession, *, query: ReportQuery) -> Summary:
    """The figures of the orders created in the window."""
    figures = (await _figures(session, query, daily=False)).get(None) or _assemble(None, {}, {}, {})
    return Summary(window=_window(query), **dict(figures))


async def daily(session: AsyncSession, *, query: ReportQuery) -> DailyReport:
    """The figures per UTC day of creation, every day of the window (empty days too) that can
    hold an order: none was created before the first order or after now."""
    by_day = await _figures(session, query, daily=True)
    since, until = query.window()
    first = (await session.execute(select(func.min(_facts.created_at)))).scalar()
    since = max(since, first) if first is not None else until
    until = min(until, datetime.now(UTC))
    days, day = [], since.date()
    while datetime.combine(day, datetime.min.time(), since.tzinfo) < until:
        figures = by_day.get(day) or _assemble(None, {}, {}, {})
        days.append(Day(day=day, **dict(figures)))
        day += timedelta(days=1)
    return DailyReport(window=_window(query), days=days)


# --- CSV: one row per report (or per day), one column per figure -------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, date):  # and datetime
        value = value.isoformat()
    return {prefix: value}


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_csv(report: Summary) -> str:
    """The summary as CSV: a header and one row (window, filters, then every figure)."""
    return _csv([_flat(report)])


def daily_csv(report: DailyReport) -> str:
    """The daily report as CSV: a header and one row per day (the window's filters on each)."""
    window = {
        f"window.{key}": value
        for key, value in _flat(report.window).items()
        if key not in ("since", "until")
    }
    return _csv([{**_flat(day), **window} for day in report.days])
