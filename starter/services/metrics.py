"""The API's business metrics (prometheus_client): served at the API's /metrics beside the
HTTP ones, counted by the services the API and the console share. The worker counts the
order's own steps (activities/metrics.py); these are what only the API sees."""

from __future__ import annotations

from prometheus_client import Counter

FEEDBACK_ANSWERS = Counter(
    "orderflow_feedback_answers",
    "Customers' answers to the feedback request, by rating and NPS group",
    ["rating", "nps"],
)
ACTION_OUTCOMES = Counter(
    "orderflow_operator_actions",
    "Operators' actions on orders (and customers' own choices), accepted or refused",
    ["action", "outcome"],
)
SUPPORT_CONTACTS = Counter(
    "orderflow_support_contacts",
    'Notes recording a customer asking about their order ("where is my order?")',
)


def nps_group(score: int | None) -> str:
    if score is None:
        return "none"
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def feedback_answered(rating: int | None, nps: int | None) -> None:
    FEEDBACK_ANSWERS.labels(rating=str(rating or "none"), nps=nps_group(nps)).inc()
