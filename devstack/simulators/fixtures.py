"""The carriers' recorded requests and answers (devstack/fixtures/<carrier>/*.json), written
from each provider's documentation (its `source`): one source of truth for an API's shape.
The simulators build their answers from them; the contract tests (tests/providers/) check
the adapters against them."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@functools.cache
def _load(carrier: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / carrier / f"{name}.json").read_text())
    return loaded


def fixture(carrier: str, name: str) -> dict[str, Any]:
    """A fresh copy of one fixture: `{"source", "request", "response", …}`."""
    return copy.deepcopy(_load(carrier, name))


def answer(carrier: str, name: str) -> Any:
    """The fixture's answer, to fill in."""
    return fixture(carrier, name)["response"]
