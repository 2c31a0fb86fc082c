"""The README's Beam compatibility table is the truth: every row marked supported names the tests that test it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Beam compatibility", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("|---")]
    # cells split on unescaped pipes (`\|` appears inside code spans)
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[1:]]


def test_the_table_has_a_tested_by_column() -> None:
    rows = _rows()
    assert len(rows) > 20
    bad = [r[0] for r in rows if len(r) != 3]
    assert not bad, f"rows without exactly (feature, status, tested by): {bad}"


def test_every_supported_row_names_existing_test_modules() -> None:
    problems = []
    for feature, status, tested_by in _rows():
        paths = re.findall(r"`(tests/[^`]+\.py)`", tested_by)
        if "supported" in status and not paths:
            problems.append(f"{feature}: marked supported but names no test module")
        problems += [f"{feature}: {p} does not exist" for p in paths if not (ROOT / p).is_file()]
    assert not problems, "\n".join(problems)
