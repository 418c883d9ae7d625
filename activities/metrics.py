"""The worker's business metrics, through Temporal's metric meter inside activities: they come
out of the worker's Prometheus endpoint (`runtime.metrics_runtime`) beside the SDK's own, with
the activity's labels (namespace, task queue, activity type).

Counted where the fact is written, and only when it was written now: a retried activity that
finds its row already there counts nothing. Grafana's dashboard (monitoring/grafana/) reads
these names; tests/test_monitoring.py checks that every panel names one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from temporalio import activity
from temporalio.common import MetricMeter

from schema.vocabulary import DELIVERY_STEPS, EventType

ORDERS_STARTED = "orderflow_orders_started_total"
ORDERS_COMPLETED = "orderflow_orders_completed_total"
ORDERS_DELIVERED = "orderflow_orders_delivered_total"  # on_time: yes | no | unknown
ORDERS_CANCELLED = "orderflow_orders_cancelled_total"  # reason: a CancelReason, or invalid
STAGE_SECONDS = "orderflow_stage_seconds"  # histogram by stage: one visit, until the next stage
SLA_BREACHES = "orderflow_sla_breaches_total"  # stage, waiting_for
NOTIFICATIONS_SENT = "orderflow_notifications_sent_total"  # channel, audience
NOTIFICATIONS_FAILED = "orderflow_notifications_failed_total"  # channel, audience, failure
SHOP_EVENT_DELIVERIES = "orderflow_shop_event_deliveries_total"  # outcome

# A stage lasts from a second (intake) to weeks (a back-order, a parcel on its way).
STAGE_BUCKETS = (1, 5, 30, 60, 300, 900, 3600, 14400, 43200, 86400, 172800, 345600, 604800, 1209600)
HISTOGRAM_BUCKETS = {STAGE_SECONDS: [float(bound) for bound in STAGE_BUCKETS]}

COUNTERS = (
    ORDERS_STARTED,
    ORDERS_COMPLETED,
    ORDERS_DELIVERED,
    ORDERS_CANCELLED,
    SLA_BREACHES,
    NOTIFICATIONS_SENT,
    NOTIFICATIONS_FAILED,
    SHOP_EVENT_DELIVERIES,
)
HISTOGRAMS = (STAGE_SECONDS,)


def _count(
    name: str,
    labels: Mapping[str, str | int | float | bool] | None = None,
    meter: MetricMeter | None = None,
) -> None:
    (meter or activity.metric_meter()).create_counter(name).add(1, labels)


def timeline_step(
    event_type: str, stage: str, detail: Mapping[str, str], promised: date | None, at: datetime
) -> None:
    """One step of an order's timeline, written now."""
    if event_type == EventType.ORDER_RECEIVED:
        _count(ORDERS_STARTED)
    elif event_type == EventType.ORDER_COMPLETED:
        _count(ORDERS_COMPLETED)
    elif event_type in DELIVERY_STEPS:
        on_time = "unknown" if promised is None else "yes" if at.date() <= promised else "no"
        _count(ORDERS_DELIVERED, {"on_time": on_time})
    elif event_type == EventType.ORDER_CANCELLED:
        _count(ORDERS_CANCELLED, {"reason": detail.get("reason") or "other"})
    elif event_type == EventType.ORDER_INVALID:
        _count(ORDERS_CANCELLED, {"reason": "invalid"})
    elif event_type == EventType.SLA_SILENCE_BREACHED:
        _count(SLA_BREACHES, {"stage": stage, "waiting_for": detail.get("waiting_for", "")})


def stage_left(stage: str, seconds: float) -> None:
    """An order moved on from `stage` after `seconds` since this visit's first step (an order
    visits handover twice: booking, then documents, then the handover itself)."""
    activity.metric_meter().create_histogram_float(
        STAGE_SECONDS, "Time an order spent in a stage, per visit", "s"
    ).record(max(seconds, 0.0), {"stage": stage})


def notification(channel: str, *, managers: bool, failure: str | None = None) -> None:
    """A message sent (failure None), refused for good ("undeliverable") or failing ("transient")."""
    labels = {"channel": channel, "audience": "managers" if managers else "customer"}
    if failure is None:
        _count(NOTIFICATIONS_SENT, labels)
    else:
        _count(NOTIFICATIONS_FAILED, {**labels, "failure": failure})


def shop_event_delivery(outcome: str, meter: MetricMeter | None = None) -> None:
    """One attempt to deliver an order event to the shop's backend: "delivered", "retrying"
    (it failed and will be tried again) or "failed" (given up). The dispatcher runs beside
    the activities, not in one: it passes the worker's meter (the same runtime, so the same
    endpoint)."""
    _count(SHOP_EVENT_DELIVERIES, {"outcome": outcome}, meter)
