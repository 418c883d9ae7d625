"""Patches with a plan (workflows/patches.py): every `workflow.patched(...)` the workflows ask
for is listed, with a stored history whose order took the new path — so replay guards both
paths of every patch, and the list says when each may go."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import pytest

from schema.vocabulary import PatchId
from tests.test_workflow import HISTORIES
from workflows.patches import PATCHES, Patch

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def _asked_for() -> list[ast.expr]:
    """The argument of every `workflow.patched(...)` call in workflows/."""
    return [
        node.args[0]
        for path in WORKFLOWS.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("patched", "deprecate_patch")
    ]


def _markers(history: Path) -> set[str]:
    """The patch ids the history's markers record."""
    found = set()
    for event in json.loads(history.read_text())["events"]:
        details = event.get("markerRecordedEventAttributes", {}).get("details", {})
        for payload in details.get("patch-data", {}).get("payloads", []):
            found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def test_every_patch_the_workflows_ask_for_is_listed_once() -> None:
    asked = _asked_for()
    assert asked, "no workflow.patched call found: the scan is broken"
    ids = []
    for argument in asked:
        assert isinstance(argument, ast.Attribute), ast.unparse(argument)  # a PatchId member
        assert ast.unparse(argument.value) == "PatchId", ast.unparse(argument)
        ids.append(PatchId[argument.attr])
    listed = [patch.id for patch in PATCHES]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(ids) == set(PatchId)


@pytest.mark.parametrize("patch", PATCHES, ids=lambda patch: patch.id.value)
def test_every_patch_has_a_stored_history_of_its_new_path(patch: Patch) -> None:
    history = HISTORIES / patch.history
    assert history.exists(), f"{patch.id}: {patch.history} is not in tests/histories/"
    assert patch.id.value in _markers(history), f"{patch.history} never took {patch.id}'s path"
