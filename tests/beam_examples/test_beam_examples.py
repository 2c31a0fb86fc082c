"""Beam's own example and snippet tests, run on millstream (`import millstream as beam` in a rewritten copy).

Every test must pass except the listed exclusions (manifest.EXCLUDED) and known failures (known_failures.txt,
each with its reason). A known failure that starts passing fails this suite until it is removed from the list,
and the README's compatibility table must state the counts measured here.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import beam_examples_manifest as manifest
import beam_examples_suite as suite
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, suite.Outcome]:
    modules, _ = manifest.selected_modules(suite.beam_examples_dir())
    results = suite.run_suite(tmp_path_factory.mktemp("beam_examples"), modules)
    return {o.ident: o for o in results}


def test_every_exclusion_names_existing_tests() -> None:
    from fnmatch import fnmatch

    _, excluded = manifest.selected_modules(suite.beam_examples_dir())
    unused = [p for p in manifest.EXCLUDED if not any(fnmatch(m, p) for m in excluded)]
    assert not unused, f"exclusions that match no Beam test module (remove them): {unused}"


def test_beam_tests_pass_except_known_failures(outcomes: dict[str, suite.Outcome]) -> None:
    known = manifest.known_failures()
    unexpected = [
        f"{o.ident}: {o.message}" for o in outcomes.values() if o.status == "failed" and o.ident not in known
    ]
    assert not unexpected, "Beam example tests failing on millstream:\n" + "\n".join(unexpected)


def test_known_failures_still_fail(outcomes: dict[str, suite.Outcome]) -> None:
    fixed = [
        ident
        for ident in manifest.known_failures()
        if ident not in outcomes or outcomes[ident].status != "failed"
    ]
    assert not fixed, "listed in known_failures.txt but no longer failing (remove them): " + ", ".join(fixed)


def test_readme_states_the_measured_counts(outcomes: dict[str, suite.Outcome]) -> None:
    counts = Counter(o.status for o in outcomes.values())
    _, excluded = manifest.selected_modules(suite.beam_examples_dir())
    measured = (counts["passed"], counts["failed"], counts["skipped"], len(excluded))
    found = re.search(
        r"(\d+) passed, (\d+) failed, (\d+) skipped; (\d+) test modules excluded", README.read_text()
    )
    assert found, "README's compatibility table lacks the Beam example suite's counts"
    stated = tuple(int(g) for g in found.groups())
    assert stated == measured, (
        f"README states {stated} (passed, failed, skipped, excluded); measured {measured}"
    )
