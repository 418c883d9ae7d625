"""Reports for managers (operators and admins; support may read): JSON, or CSV with
`Accept: text/csv`. Each figure's definition is in the response schema (schema/reports.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from schema.reports import DailyQuery, DailyReport, ReportQuery, Summary
from starter.api.deps import ReportReader, Session
from starter.api.errors import responses
from starter.services import reports

router = APIRouter(prefix="/v1/reports", tags=["reports"])

COHORT = """\
Every figure counts the orders **created** in `[since, until)` that match the filters, \
whenever their later steps happened (a delivery after `until` still counts as delivered). \
Rates are fractions (0-1) and `null` when their denominator is zero; NPS is −100..100. \
Time per stage: from the stage's first timeline event to the next stage's, over the orders \
that have left it. Days are UTC. The schema below defines every figure.

Send `Accept: text/csv` for CSV: one column per figure (nested names joined with dots).
"""


def _csv_answer(request: Request, name: str, body: str) -> Response | None:
    if "text/csv" not in request.headers.get("accept", ""):
        return None
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="orderflow-{name}.csv"'},
    )


def _answers(model: type[Any], example: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": model,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": example}},
            "description": "The figures, as JSON or (with `Accept: text/csv`) CSV",
        },
        **responses(401, 403, 422),
    }


@router.get(
    "/summary",
    response_model=Summary,
    responses=_answers(Summary, "window.since,window.until,...,orders,delivered,cancelled,...\n"),
    summary="The figures of the orders created in a window",
    description=COHORT,
)
async def summary(
    query: Annotated[ReportQuery, Query()], request: Request, db: Session, caller: ReportReader
) -> Summary | Response:
    report = await reports.summary(db, query=query)
    return _csv_answer(request, "summary", reports.summary_csv(report)) or report


@router.get(
    "/daily",
    response_model=DailyReport,
    responses=_answers(DailyReport, "day,orders,delivered,cancelled,...\n"),
    summary="The same figures per UTC day of creation, for trends",
    description=COHORT,
)
async def daily(
    query: Annotated[DailyQuery, Query()], request: Request, db: Session, caller: ReportReader
) -> DailyReport | Response:
    report = await reports.daily(db, query=query)
    return _csv_answer(request, "daily", reports.daily_csv(report)) or report
