"""One vocabulary (schema/vocabulary.py): every table keyed by an event type, an action or an
error type uses its members, and what the workflows write is handled where it must be — by
the shop's order events, the read model's flags, the status page, the metrics, the reports'
triggers. Read from the code itself (its tables and, for what the workflows write, their
source), so a new step, action or error that misses a place fails here, not in production.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

import pytest
from temporalio import workflow

from activities.messages import LOCALES, MessageCatalog
from activities.orders import FLAGS
from activities.shop_events import AWAITS, NOT_FOR_THE_SHOP, TIMELINE
from schema.contracts import WAITS_FOR_A_PERSON, Stage, WaitingFor
from schema.shop_events import ShopEventType
from schema.vocabulary import (
    DELIVERY_STEPS,
    Action,
    ErrorType,
    EventType,
    ReturnAction,
    carrier_step,
    parcel_step,
)
from starter.services import reports, status_page
from starter.services.actions import OPERATOR_ACTIONS
from workflows import rules
from workflows.failures import PROVIDER_ERRORS
from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow
from workflows.steps import NON_RETRYABLE

ROOT = Path(__file__).resolve().parents[1]
EVENT_TYPE_SHAPE = re.compile(r"^[a-z_]+\.[A-Za-z_]+$")
# What writes a step of the timeline (workflows/timeline.py, refunds.py, returns.py).
TIMELINE_WRITERS = {"advance", "record", "_record", "record_beside_the_order"}


def _source(folder: str) -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted((ROOT / folder).glob("*.py"))]


def _named(enum: type[StrEnum], trees: Iterable[tuple[Path, ast.Module]]) -> set[StrEnum]:
    """The members of `enum` the code names (`EventType.ORDER_RECEIVED`)."""
    return {
        enum[node.attr]
        for _, tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == enum.__name__
    }


def written() -> set[EventType]:
    """Every event type the workflows write: the members they name, and the steps they derive
    from a carrier's status and from a parcel that will not arrive."""
    return (
        _named(EventType, _source("workflows"))  # type: ignore[arg-type]
        | {carrier_step(status) for status in rules.CARRIER_STATUS}
        | {parcel_step(outcome) for outcome in rules.GONE}
    )


def told_as(shop_type: ShopEventType) -> set[EventType]:
    return {step for step, types in TIMELINE.items() if shop_type in types}


def _facts(**given: object) -> rules.OrderSituation:
    facts = {
        "stage": Stage.PAYMENT,
        "waiting_for": None,
        "cancelling": False,
        "handed_over": False,
        "delivered": False,
    }
    return rules.OrderSituation(**{**facts, **given})  # type: ignore[arg-type]


# --- every key a member -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        (FLAGS, EventType),
        (TIMELINE, EventType),
        (NOT_FOR_THE_SHOP, EventType),
        (AWAITS, EventType),
        (DELIVERY_STEPS, EventType),
        (status_page.HISTORY, EventType),
        (status_page.DELAYS, EventType),
        (status_page.ENDINGS, EventType),
        ((reports.BREACH, reports.RETURN), EventType),
        (rules.allowed_actions(_facts()), Action),
        (OPERATOR_ACTIONS, Action),
        (NON_RETRYABLE, ErrorType),
        (PROVIDER_ERRORS, ErrorType),
    ],
    ids=[
        "read model flags",
        "shop events",
        "not for the shop",
        "awaiting action",
        "delivery steps",
        "status page history",
        "status page delays",
        "status page endings",
        "reports",
        "allowed actions",
        "operator actions",
        "non-retryable errors",
        "provider errors",
    ],
)
def test_every_key_is_a_member(table: Iterable[object], enum: type[StrEnum]) -> None:
    """A member, not a string that happens to equal one: the next rename finds it."""
    assert [key for key in table if type(key) is not enum] == []


def _written_as_strings(path: Path, module: ast.Module) -> list[str]:
    """Event types given as strings: a string that is one, or any string handed to a call
    that writes a timeline step."""
    found = []
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and node.value in set(EventType):
            found.append(f"{path.name}:{node.lineno} {node.value!r}")
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            name = node.func.id if isinstance(node.func, ast.Name) else name
            if name in TIMELINE_WRITERS:
                found += [
                    f"{path.name}:{arg.lineno} {arg.value!r}"
                    for arg in node.args
                    if isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and EVENT_TYPE_SHAPE.match(arg.value)
                ]
    return found


def test_the_workflows_write_every_event_type_and_no_other() -> None:
    literals = [
        found
        for path, module in _source("workflows")
        for found in _written_as_strings(path, module)
    ]
    assert literals == [], "event types written as strings, not EventType members"
    assert written() == set(EventType)  # nothing in the vocabulary that nobody writes


# --- every event type handled where it must be --------------------------------------------------


def test_the_shop_hears_of_every_step_or_is_kept_out_of_it_on_purpose() -> None:
    assert not set(TIMELINE) & NOT_FOR_THE_SHOP
    assert set(TIMELINE) | NOT_FOR_THE_SHOP == written()


def test_every_step_told_as_awaiting_action_says_what_it_waits_for() -> None:
    assert set(AWAITS) == told_as(ShopEventType.AWAITING_ACTION)


def test_every_step_that_waits_for_a_person_flags_the_order_for_the_operators() -> None:
    for step, waiting_for in AWAITS.items():
        if waiting_for in WAITS_FOR_A_PERSON:
            assert FLAGS[step]["needs_action"], step
        assert waiting_for in WaitingFor


def test_the_status_page_the_shop_and_the_metrics_agree_on_delays_endings_and_delivery() -> None:
    assert set(status_page.DELAYS) == told_as(ShopEventType.DELAYED)
    assert set(status_page.ENDINGS) == told_as(ShopEventType.CANCELLED)
    assert set(DELIVERY_STEPS) == told_as(ShopEventType.DELIVERED)
    assert set(DELIVERY_STEPS) <= set(status_page.HISTORY)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_step_the_status_page_shows_has_its_words(locale: str) -> None:
    words = MessageCatalog().phrases(locale)["event"]
    assert [step for step in status_page.HISTORY if step not in words] == []


def test_every_carrier_status_but_delivered_is_a_step_of_its_own() -> None:
    # Delivered ends the wait as `order.delivered`; every other status is `carrier.<status>`.
    assert {carrier_step(status) for status in rules.CARRIER_STATUS} == {
        step for step in EventType if step.value.startswith("carrier.")
    }


# --- actions, errors ----------------------------------------------------------------------------


def test_every_action_is_an_update_with_its_rule_and_its_form() -> None:
    updates = workflow._Definition.must_from_class(OrderWorkflow).updates
    assert set(updates) == set(Action)  # the update's name is the action's value
    assert set(rules.allowed_actions(_facts())) == set(Action)
    assert set(OPERATOR_ACTIONS) == set(Action)
    form = (ROOT / "starter/console/templates/console/act.html").read_text()
    assert [action for action in Action if f"action == '{action}'" not in form] == []


def test_every_return_action_is_an_update_with_its_rule() -> None:
    updates = workflow._Definition.must_from_class(ReturnWorkflow).updates
    assert set(ReturnAction) <= set(updates)  # beside them: `assessed`, the API's own
    facts = rules.ReturnSituation(True, False, False, False)
    assert set(rules.allowed_return_actions(facts)) == set(ReturnAction)


def test_every_error_an_activity_raises_on_purpose_has_its_type_from_the_vocabulary() -> None:
    tree = _source("activities")
    literals = [
        f"{path.name}:{node.lineno}"
        for path, module in tree
        for node in ast.walk(module)
        if isinstance(node, ast.keyword)
        and node.arg == "type"
        and isinstance(node.value, ast.Constant)
    ]
    assert literals == [], "ApplicationError types written as strings, not ErrorType members"
    raised = _named(ErrorType, tree)  # type: ignore[arg-type]
    # NoAnswer is the workflows' own: a provider silent past the policy's wait (no activity's).
    assert raised == set(ErrorType) - {ErrorType.NO_ANSWER}
    assert ErrorType.NO_ANSWER in _named(ErrorType, _source("workflows"))  # type: ignore[arg-type]


# --- SQL ------------------------------------------------------------------------------------------

# `type = 'order.confirmed'`, `type IN ('order.delivered', 'order.collected')`
SQL_TYPE = re.compile(r"\btype\s*(?:=\s*'([^']+)'|IN\s*\(([^)]+)\))", re.IGNORECASE)


def test_the_triggers_and_indexes_read_the_timeline_by_its_event_types() -> None:
    sources = [*sorted((ROOT / "schema/migrations/versions").glob("*.py"))]
    literals = set()
    for path in sources:
        for single, listed in SQL_TYPE.findall(path.read_text()):
            literals |= {single} if single else {v.strip(" '") for v in listed.split(",")}
    literals.discard("")
    # The triggers that keep `order_facts` read these (a test that finds none proves nothing).
    assert {"order.confirmed", "order.delivered", "sla.silence_breached"} <= literals
    assert sorted(literals - set(EventType)) == []
