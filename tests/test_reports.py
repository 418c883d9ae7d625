"""Every figure of the reports against numbers worked out by hand from a known history
(tests/reports_history.py: orders A-E created on days 0 and 1), through the real API:
JSON, CSV, the filters, the roles, and bad input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest import approx
from sqlalchemy import func
from sqlmodel import col, select

from schema.api.fields import Role
from schema.database import open_session
from schema.tables import Order
from tests.lifecycle import Journey
from tests.reports_history import Seeded, seed_history
from tests.stack import Stack
from tests.support import eventually

BASE = datetime(2021, 3, 1, tzinfo=UTC)
WINDOW = {"since": "2021-03-01T00:00:00Z", "until": "2021-03-03T00:00:00Z"}


@pytest.fixture(scope="module")
async def history(dev_stack: Stack) -> Seeded:
    return await seed_history(dev_stack.engine, BASE)


async def _report(stack: Stack, path: str, **params: Any) -> dict[str, Any]:
    response = await stack.as_role[Role.SUPPORT].get(f"/v1/reports/{path}", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _stage(p50: float | None, p90: float | None, count: int) -> dict[str, Any]:
    return {"p50": approx(p50) if p50 is not None else None, "p90": approx(p90) if p90 is not None else None, "count": count}  # fmt: skip


async def test_summary_has_every_figure_worked_out_by_hand(
    dev_stack: Stack, history: Seeded
) -> None:
    report = await _report(dev_stack, "summary", **WINDOW)

    # Orders created in [day 0, day 2): A, B, C, D, E (not the one before, not the one at day 2).
    assert report["orders"] == 5
    assert report["delivered"] == 3  # A, B, E
    assert report["cancelled"] == 2  # C (payment expired), D (invalid)
    assert report["cancellation_rate"] == approx(2 / 5)
    assert report["cancellations_by_reason"] == {
        "customer_request": 0, "out_of_stock": 0, "payment_expired": 1, "not_collected": 0,
        "rejected": 0, "fraud_suspected": 0, "other": 0, "delivery_refused": 0,
        "returned_by_carrier": 0, "parcel_lost": 0, "parcel_damaged": 0, "invalid": 1,
    }  # fmt: skip

    # Seconds in each stage; percentiles interpolate between the sorted values (n-1)·q.
    assert report["stage_seconds"] == {
        "intake": _stage(60, 90 + 0.6 * 30, 5),  # [10, 30, 60, 90, 120]
        "validation": _stage(60, 60 + 0.6 * 60, 5),  # [5, 60, 60, 60, 120]
        "confirmation": _stage(60, 60, 4),  # A, B, C, E: 60 each; D never got there
        "stock": _stage(60, 60, 4),
        "payment": _stage(1200, 1200 + 0.8 * (259200 - 1200), 3),  # [600, 1200, 3 days]; B is COD
        "picking": _stage(1800, 1800 + 0.8 * 1800, 3),  # [600, 1800, 3600]
        "documents": _stage(None, None, 0),
        "handover": _stage(None, None, 0),
        # [A 1 day, E 28 h 25 m 30 s, B 3 days - 3 h 05 m]
        "transit": _stage(102330, 102330 + 0.8 * (248100 - 102330), 3),
        "feedback": _stage(90000, 90000, 2),  # A and E completed; B still waits for an answer
    }

    assert report["sla_breaches"] == {
        "count": 3,  # B once (carrier), C twice (payment)
        "orders": 2,
        "share": approx(2 / 5),
        "by_waiting_for": {
            "operator_confirmation": 0, "stock_decision": 0, "backorder_arrival": 0,
            "payment": 2, "packing": 0, "carrier": 1, "collection": 0, "feedback": 0,
            "feedback_request": 0, "incident_resolution": 0, "parcel_return": 0,
            "parcel_decision": 0, "cod_payout": 0,
            "approval": 0, "parcel": 0, "inspection": 0,  # a customer return's waits
        },
    }  # fmt: skip

    # Promised: A day 2, delivered day 1; B day 1, delivered day 3; E day 2, delivered day 2.
    assert report["on_time_rate"] == approx(2 / 3)
    assert report["on_time"] == {
        "delivered_with_promise": 3,
        "on_time": 2,
        "late": 1,
        "days_late_p50": approx(2),
        "days_late_p90": approx(2),
        "days_late_max": 2,
    }

    # Answers: A rating 5 / NPS 10, B 2 / 3, E 4 / 9; all three were asked.
    assert report["feedback"] == {
        "requested": 3,
        "responses": 3,
        "response_rate": approx(1.0),
        "nps_answers": 3,
        "promoters": 2,
        "passives": 0,
        "detractors": 1,
        "nps": approx(100 * (2 - 1) / 3),
        "rating_answers": 3,
        "csat": approx(2 / 3),
        "average_rating": approx(11 / 3),
        "ratings": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
    }

    incidents = report["incidents"]
    assert incidents["count"] == 3
    assert incidents["by_stage_and_cause"]["picking"] == {"human": 1, "system": 1, "external": 0}
    assert incidents["by_stage_and_cause"]["transit"] == {"human": 0, "system": 0, "external": 1}
    others = [
        count
        for stage, causes in incidents["by_stage_and_cause"].items()
        if stage not in ("picking", "transit")
        for count in causes.values()
    ]
    assert others == [0] * 30  # ten other stages × three causes

    # Messages to customers (A's alert to the managers and C's pending e-mail not counted);
    # per delivered order: A, B, E sent 4 + 3 + 2 e-mails, 1 + 0 + 1 SMS and 0 + 1 + 0 Viber
    # messages (C's Viber message was refused).
    assert report["notifications"] == {
        "email": {"sent": 11, "failed": 1, "sent_per_delivered_order": approx(9 / 3)},
        "sms": {"sent": 2, "failed": 0, "sent_per_delivered_order": approx(2 / 3)},
        "push": {"sent": 0, "failed": 1, "sent_per_delivered_order": approx(0)},
        "viber": {"sent": 1, "failed": 1, "sent_per_delivered_order": approx(1 / 3)},
    }
    assert report["status_page"] == {"views": 5, "views_per_order": approx(1.0), "link_clicks": 3}
    # c1 ordered before A, c2 ordered B before E, c3 only C.
    assert (report["customers"], report["returning_customers"]) == (3, 2)
    assert report["repeat_customer_rate"] == approx(2 / 3)
    assert report["support_contacts"] == 3  # A once, E twice (A's other note is no contact)
    assert report["support_contacts_per_order"] == approx(3 / 5)
    # Returns after delivery: A twice (its third request came too late: none), E once.
    assert report["returns"] == {
        "count": 3,
        "orders": 2,
        "rate": approx(2 / 3),  # of the 3 delivered
        "by_reason": {
            "changed_mind": 0, "wrong_size": 2, "defective": 1, "not_as_described": 0,
            "wrong_item": 0, "other": 0,
        },
    }  # fmt: skip
    assert report["window"] == {
        "since": "2021-03-01T00:00:00Z",
        "until": "2021-03-03T00:00:00Z",
        "delivery_method": None,
        "payment_method": None,
        "carrier": None,
    }


async def test_daily_splits_the_same_figures_by_the_day_orders_were_created(
    dev_stack: Stack, history: Seeded
) -> None:
    report = await _report(dev_stack, "daily", since="2021-02-28", until="2021-03-04")
    days = {day["day"]: day for day in report["days"]}
    assert list(days) == ["2021-02-28", "2021-03-01", "2021-03-02", "2021-03-03"]
    assert days["2021-02-28"]["orders"] == 0 and days["2021-02-28"]["cancellation_rate"] is None

    first, second = days["2021-03-01"], days["2021-03-02"]  # A, B, C | D, E
    assert (first["orders"], first["delivered"], first["cancelled"]) == (3, 2, 1)
    assert first["cancellations_by_reason"]["payment_expired"] == 1
    assert first["on_time_rate"] == approx(1 / 2)  # A on time, B late
    assert first["feedback"]["nps"] == approx(0)  # A promoter, B detractor
    assert first["stage_seconds"]["intake"] == _stage(60, 60 + 0.8 * 60, 3)  # [30, 60, 120]
    assert first["repeat_customer_rate"] == approx(1 / 3)  # only c1 (A) had ordered before

    assert (second["orders"], second["delivered"], second["cancelled"]) == (2, 1, 1)
    assert second["cancellations_by_reason"]["invalid"] == 1
    assert second["on_time_rate"] == approx(1.0)
    assert second["feedback"]["nps"] == approx(100)  # E: 9
    assert second["incidents"]["by_stage_and_cause"]["picking"]["system"] == 1
    assert second["support_contacts"] == 2
    assert (first["returns"]["count"], second["returns"]["count"]) == (2, 1)
    assert second["returns"]["by_reason"]["wrong_size"] == 1

    assert days["2021-03-03"]["orders"] == 1  # created at day 2, 00:00
    assert sum(day["orders"] for day in report["days"]) == 6


async def test_filters_narrow_the_cohort(dev_stack: Stack, history: Seeded) -> None:
    courier = await _report(dev_stack, "summary", **WINDOW, delivery_method="courier")
    assert (courier["orders"], courier["delivered"], courier["cancelled"]) == (3, 3, 0)
    ukrsim = await _report(dev_stack, "summary", **WINDOW, carrier="UkrSim")
    assert (ukrsim["orders"], ukrsim["support_contacts"]) == (1, 2)  # E
    cod = await _report(dev_stack, "summary", **WINDOW, payment_method="cod")
    assert cod["orders"] == 1 and cod["on_time"]["late"] == 1  # B
    assert cod["stage_seconds"]["payment"]["count"] == 0


async def test_csv_carries_the_same_figures(dev_stack: Stack, history: Seeded) -> None:
    api = dev_stack.as_role[Role.OPERATOR]
    as_json = await _report(dev_stack, "summary", **WINDOW)
    response = await api.get("/v1/reports/summary", params=WINDOW, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["orders"] == "5" and row["cancellation_rate"] == str(as_json["cancellation_rate"])
    assert row["cancellations_by_reason.payment_expired"] == "1"
    assert float(row["stage_seconds.payment.p90"]) == approx(207600)
    assert row["incidents.by_stage_and_cause.transit.external"] == "1"
    assert row["notifications.email.sent"] == "11"
    assert row["returns.by_reason.wrong_size"] == "2" and row["returns.count"] == "3"
    assert row["window.since"] == "2021-03-01T00:00:00+00:00"

    daily = await api.get(
        "/v1/reports/daily", params=WINDOW, headers={"Accept": "text/csv; charset=utf-8"}
    )
    rows = list(csv.DictReader(io.StringIO(daily.text)))
    assert [(r["day"], r["orders"], r["feedback.nps"]) for r in rows] == [
        ("2021-03-01", "3", "0.0"),
        ("2021-03-02", "2", "100.0"),
    ]


async def test_who_may_read_reports(dev_stack: Stack) -> None:
    for role in (Role.OPERATOR, Role.SUPPORT, Role.ADMIN):
        assert (await dev_stack.as_role[role].get("/v1/reports/summary")).status_code == 200
    refused = await dev_stack.as_role[Role.SERVICE].get("/v1/reports/daily")
    assert refused.status_code == 403 and "reports.read" in refused.json()["detail"]
    async with httpx.AsyncClient(base_url=dev_stack.api.base_url) as anonymous:
        assert (await anonymous.get("/v1/reports/summary")).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"delivery_method": "drone"}, "delivery_method"),
        ({"sinse": "2021-03-01"}, "sinse"),
    ],
)
async def test_bad_windows_and_filters_are_named(
    dev_stack: Stack, params: dict[str, str], field: str
) -> None:
    response = await dev_stack.api.get("/v1/reports/summary", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_an_empty_window_counts_nothing(dev_stack: Stack) -> None:
    backwards = {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}
    summary = await dev_stack.api.get("/v1/reports/summary", params=backwards)
    assert summary.status_code == 200 and summary.json()["orders"] == 0
    daily = await dev_stack.api.get("/v1/reports/daily", params=backwards)
    assert daily.status_code == 200 and daily.json()["days"] == []


async def test_a_daily_report_lists_the_days_that_can_hold_orders(dev_stack: Stack) -> None:
    """Any window is answered (the OpenAPI admits any dates): the days listed run from the
    first order ever, or `since` if later, to today, or `until` if earlier."""
    now = datetime.now(UTC)
    years = await dev_stack.api.get(
        "/v1/reports/daily",
        params={"since": "1900-01-01T00:00:00Z", "until": "4000-01-01T00:00:00Z"},
    )
    assert years.status_code == 200, years.text
    async with open_session(dev_stack.engine) as session:
        first = (await session.execute(select(func.min(col(Order.created_at))))).scalar()
    assert first is not None
    days = [day["day"] for day in years.json()["days"]]
    assert days[0] == str(first.astimezone(UTC).date()) and days[-1] == str(now.date())
    assert (await dev_stack.api.get("/v1/reports/daily")).json()["days"][-1]["day"] == str(
        now.date()
    )


async def test_orders_that_ran_show_in_the_summary_as_they_go(dev_stack: Stack) -> None:
    """Real orders through the real stack: the triggers keep the figures as the worker writes."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    delivered = [await Journey.place(dev_stack) for _ in range(2)]
    for order in delivered:
        await order.to_delivery()
    cancelled = await Journey.place(dev_stack)
    await cancelled.waiting_for("payment")
    assert (await cancelled.act("cancel", reason="customer_request")).status_code == 200
    window = {
        "since": since.isoformat(),
        "until": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
    }

    async def all_mail_counted() -> dict[str, Any] | None:
        report = await _report(dev_stack, "summary", **window)
        email = report["notifications"]["email"]
        return report if email["sent_per_delivered_order"] == 9 else None  # up to "delivered"

    report = await eventually(all_mail_counted, what="e-mails counted")
    assert (report["orders"], report["delivered"], report["cancelled"]) == (3, 2, 1)
    assert report["cancellation_rate"] == 1 / 3
    assert report["cancellations_by_reason"]["customer_request"] == 1
    assert report["on_time_rate"] == 1.0  # delivered minutes after the promise was made
    timed = {stage: t for stage, t in report["stage_seconds"].items() if t["count"]}
    assert {
        "intake",
        "validation",
        "confirmation",
        "stock",
        "payment",
        "picking",
        "transit",
    } <= set(timed)
    assert timed["payment"]["count"] == 3  # the cancelled order left payment too
    for stage, time in timed.items():
        assert 0 <= time["p50"] <= time["p90"], stage

    response = await dev_stack.api.get(
        "/v1/reports/summary", params=window, headers={"Accept": "text/csv"}
    )
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert (row["orders"], row["delivered"], row["cancelled"]) == ("3", "2", "1")
    assert row["cancellation_rate"] == str(1 / 3)
    assert row["cancellations_by_reason.customer_request"] == "1"
    assert row["notifications.email.sent_per_delivered_order"] == "9.0"
