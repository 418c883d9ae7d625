"""References a newcomer can follow: every "seed NNN", "rule N" and stage number the code
and its documents cite is written down in the repository (docs/seeds.md, docs/architecture.md),
the stages are numbered one way — as `Stage` orders them — and every document named exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from schema.contracts import Stage

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SEED_CITATION = re.compile(r"\b[Ss]eeds? ((?:\d{3}(?:, | and )?)+)")
RULE_CITATION = re.compile(r"\b[Rr]ules? (\d+)\b")
STAGE_CITATION = re.compile(r"^\"\"\"Stages? (\d+)(?:-(\d+))?:", re.MULTILINE)


def _tracked_texts() -> dict[str, str]:
    """Every file in git but the stored histories, the seed summaries' own page and data."""
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    texts = {}
    for name in listed:
        if name.endswith((".json", ".csv", ".png", ".pdf")) or name.startswith("docs/"):
            continue
        path = ROOT / name
        if path.is_file():
            texts[name] = path.read_text(errors="replace")
    return texts


def _architecture() -> str:
    return (DOCS / "architecture.md").read_text()


def test_every_seed_cited_is_summed_up() -> None:
    summed_up = set(re.findall(r"^## (\d{3})$", (DOCS / "seeds.md").read_text(), re.MULTILINE))
    cited = {
        (name, seed)
        for name, text in _tracked_texts().items()
        for found in SEED_CITATION.findall(text)
        for seed in re.findall(r"\d{3}", found)
    }
    assert summed_up == {"000", "001", "002", "003", "004"}
    assert {seed for _, seed in cited} == summed_up  # each is cited, and found here
    assert {(name, seed) for name, seed in cited if seed not in summed_up} == set()


def test_every_rule_cited_is_written_down() -> None:
    rules_section = _architecture().split("## Rules", 1)[1]
    written = set(re.findall(r"^(\d+)\. \*\*", rules_section, re.MULTILINE))
    assert written == {str(n) for n in range(1, 10)}
    cited = {
        (name, rule)
        for name, text in _tracked_texts().items()
        for rule in RULE_CITATION.findall(text)
    }
    assert {"1", "6", "8"} <= {rule for _, rule in cited}  # the scan finds the code's citations
    assert {(name, rule) for name, rule in cited if rule not in written} == set()


def test_the_stages_are_numbered_as_stage_orders_them() -> None:
    listed = re.findall(
        r"^(\d+)\. `(\w+)` — .*?`(workflows/\w+\.py)`", _architecture(), re.S | re.M
    )
    numbered = [(int(n), stage) for n, stage, _ in listed]
    lifecycle = [stage.value for stage in Stage if stage not in (Stage.COMPLETED, Stage.CANCELLED)]
    assert numbered == list(enumerate(lifecycle, start=1))
    # Each stage module's docstring names the numbers of the stages it runs.
    for n, _, module in listed:
        found = STAGE_CITATION.search((ROOT / module).read_text())
        if module == "workflows/order.py":  # intake: the first step of the lifecycle itself
            continue
        assert found is not None, f"{module} does not say which stages it runs"
        first, last = int(found[1]), int(found[2] or found[1])
        assert first <= int(n) <= last, f"{module} cites stages {first}-{last}, not {n}"


def test_every_document_named_exists() -> None:
    named = {
        (name, doc)
        for name, text in _tracked_texts().items()
        for doc in re.findall(r"[\w/.-]*[A-Za-z]\.md\b", text)
    }
    existing = {path.name for path in ROOT.rglob("*.md") if ".venv" not in path.parts}
    assert {(name, doc) for name, doc in named if Path(doc).name not in existing} == set()
