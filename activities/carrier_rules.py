"""Which carrier and service take a parcel: the rules in `data/carrier_rules.json`,
a rule per carrier API. Asked at validation (a parcel no rule takes waits for an operator
before anything is promised) and at every booking."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from schema.vocabulary import ErrorType

RULES = Path(__file__).resolve().parent / "data" / "carrier_rules.json"


@dataclass(frozen=True)
class CarrierChoice:
    carrier: str
    service: str
    weight_kg: float


GOODS_CLASS_RANK = {"general": 0, "bulky": 1, "fragile": 2}


def choose_carrier(
    *,
    country: str,
    method: str,
    skus: list[tuple[str, int]],
    speed: str = "standard",
    adapter: str = "sim",
    rules_file: Path = RULES,
) -> CarrierChoice:
    """Carrier and service by the rules in data: the carrier's API (settings' carrier; a rule
    without one is the simulated carrier's), region, method, speed, goods class, weight."""
    table = _rules(rules_file, rules_file.stat().st_mtime_ns)
    items = sum(quantity for _, quantity in skus)
    weight = round(items * table["weight_per_item_kg"], 2)
    classes = [
        next(
            (cls for prefix, cls in table["goods_classes"].items() if sku.startswith(prefix)),
            "general",
        )
        for sku, _ in skus
    ]
    goods = max(classes, key=GOODS_CLASS_RANK.__getitem__, default="general")
    wanted = {"country": country, "method": method, "speed": speed, "goods_class": goods}
    for rule in table["rules"]:
        if rule.get("adapter", "sim") != adapter:
            continue
        if all(rule[k] in (v, "*") for k, v in wanted.items()) and weight <= rule["max_weight_kg"]:
            return CarrierChoice(rule["carrier"], rule["service"], weight)
    raise ApplicationError(
        f"no carrier rule for {wanted} at {weight} kg with {adapter}",
        type=ErrorType.NO_CARRIER,
        non_retryable=True,
    )


@functools.lru_cache(maxsize=4)
def _rules(rules_file: Path, modified: int) -> dict[str, Any]:
    """The rules file, read once (again when it changes), not at every booking."""
    rules: dict[str, Any] = json.loads(rules_file.read_text())
    return rules
