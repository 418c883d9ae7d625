"""The order's custom search attributes, for the Temporal UI and `temporal workflow list --query`.

The worker registers them at start (worker.ensure_search_attributes); the dev server of
`make dev` and the tests is started with them.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

ORDER_STAGE = SearchAttributeKey.for_keyword("OrderStage")
ORDER_NUMBER = SearchAttributeKey.for_keyword("OrderNumber")
ORDER_NEEDS_ACTION = SearchAttributeKey.for_bool("OrderNeedsAction")
ORDER_SLA_BREACHED = SearchAttributeKey.for_bool("OrderSlaBreached")
SEARCH_ATTRIBUTES = (ORDER_STAGE, ORDER_NUMBER, ORDER_NEEDS_ACTION, ORDER_SLA_BREACHED)


def mark_started(number: str, stage: str) -> None:
    workflow.upsert_search_attributes(
        [
            ORDER_NUMBER.value_set(number),
            ORDER_STAGE.value_set(stage),
            ORDER_NEEDS_ACTION.value_set(False),
            ORDER_SLA_BREACHED.value_set(False),
        ]
    )


def mark_stage(stage: str) -> None:
    workflow.upsert_search_attributes([ORDER_STAGE.value_set(stage)])


def mark_needs_action(needed: bool) -> None:
    workflow.upsert_search_attributes([ORDER_NEEDS_ACTION.value_set(needed)])


def mark_sla_breached() -> None:
    workflow.upsert_search_attributes([ORDER_SLA_BREACHED.value_set(True)])
