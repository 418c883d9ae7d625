"""Contracts evolve safely (schema/CONTRACTS.md): every payload of every stored history
decodes with today's dataclasses, and no field it carries has disappeared from them.

A history is an order's, a return's, an operator's refund or a tracking round: each payload is read as the
type today's definition of that workflow (or of the workflow it signals or starts) gives it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import to_jsonable_python
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from activities.documents import DocumentActivities
from activities.inventory import InventoryActivities
from activities.marketplaces import MarketplaceActivities
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.returns import ReturnActivities
from activities.shipping import ShippingActivities
from activities.warehouse import WarehouseActivities
from runtime import DATA_CONVERTER
from schema.contracts import RecordEventResult
from workflows.intake import MarketplacePollWorkflow
from workflows.order import OrderWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow
from workflows.tracking import CarrierTrackingWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
ACTIVITY_CLASSES = (
    OrderActivities,
    NotificationActivities,
    InventoryActivities,
    WarehouseActivities,
    PaymentActivities,
    ShippingActivities,
    DocumentActivities,
    ReturnActivities,
    MarketplaceActivities,
)


def _activities() -> dict[str, tuple[type, type]]:
    """Each activity's name -> (input type, result type), from the methods the worker registers."""
    found = {}
    for cls in ACTIVITY_CLASSES:
        for member in vars(cls).values():
            definition = activity._Definition.from_callable(member)
            if definition is not None and definition.arg_types is not None:
                [arg] = definition.arg_types or [type(None)]  # none: nothing is sent
                found[definition.name] = (arg, definition.ret_type or type(None))
    return found


ACTIVITIES = _activities()
WORKFLOWS = {
    definition.name: definition
    for definition in map(
        workflow._Definition.must_from_class,
        (
            OrderWorkflow,
            ReturnWorkflow,
            RefundWorkflow,
            CarrierTrackingWorkflow,
            MarketplacePollWorkflow,
        ),
    )
}


def _run_types(definition: workflow._Definition) -> tuple[Any, Any]:
    """A workflow's input and result types, from its run method."""
    [arg] = definition.arg_types or []
    return arg, definition.ret_type


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
    [decoded] = DATA_CONVERTER.payload_converter.from_payloads([payload], [kind])
    stored = json.loads(payload.data) if payload.data else None  # binary/null: no value
    kept = to_jsonable_python(decoded)
    lost = _keys(stored) - _keys(kept)
    assert not lost, f"{where}: fields no longer in {kind}: {sorted(lost)}"


def _payloads(history: WorkflowHistory) -> list[tuple[str, Payload, Any]]:
    """(where, payload, the type today's code reads it as) for every payload of the history."""
    found: list[tuple[str, Payload, Any]] = []
    scheduled: dict[int, str] = {}
    updates: dict[str, Any] = {}  # an accepted update's id -> the type it answers
    started = history.events[0].workflow_execution_started_event_attributes
    this = WORKFLOWS[started.workflow_type.name]
    for event in history.events:
        kind = event.WhichOneof("attributes")
        at = f"event {event.event_id} {kind}"
        if kind == "workflow_execution_started_event_attributes":
            for p in event.workflow_execution_started_event_attributes.input.payloads:
                found.append((at, p, _run_types(this)[0]))
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
        elif (
            kind == "marker_recorded_event_attributes"
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ):  # a local activity's result (a patch's marker carries no payload of ours)
            marker = event.marker_recorded_event_attributes
            data = json.loads(marker.details["data"].payloads[0].data)
            name = data["activity_type"]
            for p in marker.details["result"].payloads:
                found.append((f"{at} {name}", p, ACTIVITIES[name][1]))
        elif kind == "workflow_execution_signaled_event_attributes":
            signal = event.workflow_execution_signaled_event_attributes
            [arg] = this.signals[signal.signal_name].arg_types or []
            for p in signal.input.payloads:
                found.append((f"{at} {signal.signal_name}", p, arg))
        elif kind == "workflow_execution_update_accepted_event_attributes":
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            update = this.updates[request.input.name]
            updates[request.meta.update_id] = update.ret_type
            # One argument, or none (`assessed`, sent with a return's start).
            arguments = zip(request.input.args.payloads, update.arg_types or [], strict=True)
            for p, arg in arguments:
                found.append((f"{at} {request.input.name}", p, arg))
        elif kind == "workflow_execution_update_completed_event_attributes":
            completed_update = event.workflow_execution_update_completed_event_attributes
            answer = updates[completed_update.meta.update_id]
            for p in completed_update.outcome.success.payloads:
                found.append((at, p, answer))
        elif kind == "workflow_execution_completed_event_attributes":
            for p in event.workflow_execution_completed_event_attributes.result.payloads:
                found.append((at, p, _run_types(this)[1]))
        elif kind == "signal_external_workflow_execution_initiated_event_attributes":
            external = event.signal_external_workflow_execution_initiated_event_attributes
            # Returns and refunds signal orders (RefundMade), tracking rounds their parcels'
            # news (CarrierEvent).
            [arg] = WORKFLOWS["OrderWorkflow"].signals[external.signal_name].arg_types or []
            for p in external.input.payloads:
                found.append((f"{at} {external.signal_name}", p, arg))
        elif kind == "start_child_workflow_execution_initiated_event_attributes":
            child = event.start_child_workflow_execution_initiated_event_attributes
            for p in child.input.payloads:
                found.append((at, p, _run_types(WORKFLOWS[child.workflow_type.name])[0]))
        elif kind == "child_workflow_execution_completed_event_attributes":
            done = event.child_workflow_execution_completed_event_attributes
            result = _run_types(WORKFLOWS[done.workflow_type.name])[1]
            for p in done.result.payloads:
                found.append((at, p, result))
    return found


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_every_stored_payload_decodes_with_todays_contracts(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    payloads = _payloads(history)
    assert len(payloads) > 3, "even a return refused at once has a few payloads"
    for where, payload, kind in payloads:
        _decode(payload, kind, where)


def test_the_check_notices_a_field_that_disappeared() -> None:
    """A payload with a field today's dataclass lacks (a rename or removal) fails the check."""
    payload = DATA_CONVERTER.payload_converter.to_payloads(
        [{"order_id": "o-1", "stage": "validation", "status": "received", "renamed": 1}]
    )[0]
    with pytest.raises(AssertionError, match="renamed"):
        _decode(payload, _run_types(WORKFLOWS["OrderWorkflow"])[1], "example")


def test_every_workflow_of_the_process_shares_one_cache_of_type_adapters() -> None:
    """The worker builds a payload converter for each workflow it starts or replays: they
    share the JSON converter, and so the TypeAdapters it builds once per contract type."""
    first, second = (DATA_CONVERTER.payload_converter_class() for _ in range(2))
    assert first.converters[b"json/plain"] is second.converters[b"json/plain"]
    sent = first.to_payloads([RecordEventResult(recorded=True)])
    assert second.from_payloads(sent, [RecordEventResult]) == [RecordEventResult(recorded=True)]
