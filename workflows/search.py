"""The order's custom search attributes, for the Temporal UI and `temporal workflow list --query`.

The worker registers them at start (worker.ensure_search_attributes); the dev server of
`make dev` and the tests is started with them.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from schema.vocabulary import PatchId

ORDER_STAGE = SearchAttributeKey.for_keyword("OrderStage")
ORDER_NUMBER = SearchAttributeKey.for_keyword("OrderNumber")
ORDER_NEEDS_ACTION = SearchAttributeKey.for_bool("OrderNeedsAction")
ORDER_SLA_BREACHED = SearchAttributeKey.for_bool("OrderSlaBreached")
SEARCH_ATTRIBUTES = (ORDER_STAGE, ORDER_NUMBER, ORDER_NEEDS_ACTION, ORDER_SLA_BREACHED)


def _upsert(updates: Sequence[SearchAttributeUpdate]) -> None:
    """Upsert the values that change (each upsert is a command and an event in the order's
    history: a wait's "needs no action" set again after a wait that needed none was one of
    every three). Orders that started before this upserted every value every time."""
    if workflow.patched(PatchId.SEARCH_ATTRIBUTES_ON_CHANGE):
        current = workflow.info().typed_search_attributes
        updates = [update for update in updates if current.get(update.key) != update.value]
        if not updates:
            return
    workflow.upsert_search_attributes(updates)


def mark_started(number: str, stage: str) -> None:
    _upsert(
        [
            ORDER_NUMBER.value_set(number),
            ORDER_STAGE.value_set(stage),
            ORDER_NEEDS_ACTION.value_set(False),
            ORDER_SLA_BREACHED.value_set(False),
        ]
    )


def mark_stage(stage: str) -> None:
    _upsert([ORDER_STAGE.value_set(stage)])


def mark_needs_action(needed: bool) -> None:
    _upsert([ORDER_NEEDS_ACTION.value_set(needed)])


def mark_sla_breached() -> None:
    _upsert([ORDER_SLA_BREACHED.value_set(True)])
