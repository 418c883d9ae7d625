"""Contracts evolve safely (schema/CONTRACTS.md): every payload of every stored history
decodes with today's dataclasses, and no field it carries has disappeared from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import to_jsonable_python
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.documents import DocumentActivities
from activities.inventory import InventoryActivities
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.shipping import ShippingActivities
from activities.warehouse import WarehouseActivities
from schema.contracts import ActionResult, OrderResult, OrderWorkflowInput
from workflows.order import OrderWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
ACTIVITY_CLASSES = (
    OrderActivities,
    NotificationActivities,
    InventoryActivities,
    WarehouseActivities,
    PaymentActivities,
    ShippingActivities,
    DocumentActivities,
)


def _activities() -> dict[str, tuple[type, type]]:
    """Each activity's name -> (input type, result type), from the methods the worker registers."""
    found = {}
    for cls in ACTIVITY_CLASSES:
        for member in vars(cls).values():
            definition = activity._Definition.from_callable(member)
            if definition is not None and definition.arg_types:
                [arg] = definition.arg_types
                found[definition.name] = (arg, definition.ret_type or type(None))
    return found


ACTIVITIES = _activities()
WORKFLOW = workflow._Definition.must_from_class(OrderWorkflow)


def _keys(value: Any, at: str = "") -> set[str]:
    """Every object key of a JSON value, as a dotted path (list items share their parent's)."""
    if isinstance(value, dict):
        return {f"{at}.{key}" for key in value} | {
            path for key, item in value.items() for path in _keys(item, f"{at}.{key}")
        }
    if isinstance(value, list):
        return {path for item in value for path in _keys(item, at)}
    return set()


def _decode(payload: Payload, kind: Any, where: str) -> None:
    [decoded] = pydantic_data_converter.payload_converter.from_payloads([payload], [kind])
    stored = json.loads(payload.data) if payload.data else None  # binary/null: no value
    kept = to_jsonable_python(decoded)
    lost = _keys(stored) - _keys(kept)
    assert not lost, f"{where}: fields no longer in {kind}: {sorted(lost)}"


def _payloads(history: WorkflowHistory) -> list[tuple[str, Payload, Any]]:
    """(where, payload, the type today's code reads it as) for every payload of the history."""
    found: list[tuple[str, Payload, Any]] = []
    scheduled: dict[int, str] = {}
    for event in history.events:
        kind = event.WhichOneof("attributes")
        at = f"event {event.event_id} {kind}"
        if kind == "workflow_execution_started_event_attributes":
            for p in event.workflow_execution_started_event_attributes.input.payloads:
                found.append((at, p, OrderWorkflowInput))
        elif kind == "activity_task_scheduled_event_attributes":
            scheduled_event = event.activity_task_scheduled_event_attributes
            name = scheduled_event.activity_type.name
            scheduled[event.event_id] = name
            for p in scheduled_event.input.payloads:
                found.append((f"{at} {name}", p, ACTIVITIES[name][0]))
        elif kind == "activity_task_completed_event_attributes":
            completed = event.activity_task_completed_event_attributes
            name = scheduled[completed.scheduled_event_id]
            for p in completed.result.payloads:
                found.append((f"{at} {name}", p, ACTIVITIES[name][1]))
        elif kind == "marker_recorded_event_attributes":
            marker = event.marker_recorded_event_attributes
            data = json.loads(marker.details["data"].payloads[0].data)
            name = data["activity_type"]
            for p in marker.details["result"].payloads:
                found.append((f"{at} {name}", p, ACTIVITIES[name][1]))
        elif kind == "workflow_execution_signaled_event_attributes":
            signal = event.workflow_execution_signaled_event_attributes
            [arg] = WORKFLOW.signals[signal.signal_name].arg_types or []
            for p in signal.input.payloads:
                found.append((f"{at} {signal.signal_name}", p, arg))
        elif kind == "workflow_execution_update_accepted_event_attributes":
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            [arg] = WORKFLOW.updates[request.input.name].arg_types or []
            for p in request.input.args.payloads:
                found.append((f"{at} {request.input.name}", p, arg))
        elif kind == "workflow_execution_update_completed_event_attributes":
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            for p in outcome.success.payloads:
                found.append((at, p, ActionResult))
        elif kind == "workflow_execution_completed_event_attributes":
            for p in event.workflow_execution_completed_event_attributes.result.payloads:
                found.append((at, p, OrderResult))
    return found


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_every_stored_payload_decodes_with_todays_contracts(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    payloads = _payloads(history)
    assert len(payloads) > 10, "even a short order has many payloads"
    for where, payload, kind in payloads:
        _decode(payload, kind, where)


def test_the_check_notices_a_field_that_disappeared() -> None:
    """A payload with a field today's dataclass lacks (a rename or removal) fails the check."""
    payload = pydantic_data_converter.payload_converter.to_payloads(
        [{"order_id": "o-1", "stage": "validation", "status": "received", "renamed": 1}]
    )[0]
    with pytest.raises(AssertionError, match="renamed"):
        _decode(payload, OrderResult, "example")
