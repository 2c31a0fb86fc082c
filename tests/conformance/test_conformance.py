"""millstream's reducer against the Beam oracle's conformance cases, pane for pane.

Every case under ``cases/`` (Beam's ported trigger transcripts, 200 random scenarios, 24 processing-time
scenarios, the subtleties, and millstream's own cases) is run directly on the reducer by ``driver.py``:

* with ``beam_python_compat=True`` the output must equal the oracle's exactly (every field, step included):
  the reducer reproduces Beam's Python SDK, quirks included;
* by default (the semantics policy's three deviations on) the output must equal the oracle's output with
  the reviewed patch of ``deviations.json`` applied: per case, the exact extra/missing panes and changed
  fields, each tagged with the deviation that explains it (see ``review_deviations.py``);
* the transcripts also pass Beam's own transcript rules (``transcript_check``), bad_* ones failing as
  Beam requires.
"""

from __future__ import annotations

import copy
import glob
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from support.loading import load_module

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
SETS = ("beam_transcripts", "random", "random_processing_time", "subtleties", "millstream")


def _load(name: str) -> Any:
    """A module of this suite (also run as scripts, so not a package) by its file name."""
    return load_module(Path(HERE) / f"{name}.py", f"millstream_conformance_{name}")


driver = _load("driver")
compare = _load("compare")
review = _load("review_deviations")

with open(os.path.join(HERE, "deviations.json")) as _f:
    DEVIATIONS: dict[str, dict[str, Any]] = json.load(_f)

ALL_CASES = sorted(
    f"{s}/{os.path.basename(p)[:-5]}" for s in SETS for p in glob.glob(os.path.join(CASES, s, "*.json"))
)


def _case(case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    s, name = case.split("/")
    with open(os.path.join(CASES, s, name + ".json")) as f:
        spec = json.load(f)
    with open(os.path.join(CASES, s, "expected", name + ".json")) as f:
        expected = json.load(f)
    return spec, expected


def apply_patch(expected: list[dict[str, Any]], patch: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle's panes with a reviewed deviation patch applied (every patch entry must apply)."""
    panes = copy.deepcopy(expected)
    for m in patch["missing"]:
        assert m["pane"] in panes, f"patch removes a pane the oracle does not have: {m['pane']}"
        panes.remove(m["pane"])
    for c in patch["changed"]:
        (pane,) = [
            p for p in panes if (p["key"], p["window"], p["index"]) == (c["key"], c["window"], c["index"])
        ]
        for field, (old, new) in c["fields"].items():
            assert compare.values_equal(field, old, pane.get(field)), (c, pane)
            pane[field] = new
    panes.extend(x["pane"] for x in patch["extra"])
    return panes


def test_cases_are_all_there() -> None:
    """All 250 oracle cases plus ours are present (a lost file must not shrink the suite silently)."""
    counts = {s: len(glob.glob(os.path.join(CASES, s, "*.json"))) for s in SETS}
    assert counts["beam_transcripts"] == 17
    assert counts["random"] == 200
    assert counts["random_processing_time"] == 24
    assert counts["subtleties"] == 9
    assert counts["millstream"] >= 1


@pytest.mark.parametrize("case", ALL_CASES)
def test_python_compat_mode_equals_oracle(case: str) -> None:
    """Without the deviations the reducer is Beam's Python SDK, pane for pane, every field."""
    spec, expected = _case(case)
    actual = driver.canonical_result(spec, driver.run_scenario(spec, beam_python_compat=True))
    assert actual["num_events"] == expected["num_events"]
    assert compare.compare(expected["panes"], actual["panes"]) == []


@pytest.mark.parametrize("case", ALL_CASES)
def test_default_mode_equals_oracle_plus_reviewed_deviations(case: str) -> None:
    """With the deviations on, the only differences are the reviewed ones of deviations.json."""
    spec, expected = _case(case)
    actual = driver.canonical_result(spec, driver.run_scenario(spec))
    patch = DEVIATIONS.get(case, {"extra": [], "missing": [], "changed": []})
    assert compare.compare(apply_patch(expected["panes"], patch), actual["panes"]) == []


@pytest.mark.parametrize("case", ALL_CASES)
def test_fast_paths_equal_general_reducer(case: str) -> None:
    """create_reducer (fast paths where they apply) and the general Reducer agree on every case."""
    from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer

    spec, _ = _case(case)
    fast = driver.canonical_result(spec, driver.run_scenario(spec))["panes"]
    general = driver.canonical_result(spec, driver.run_scenario(spec, reducer_factory=Reducer))["panes"]
    assert fast == general


ALLOWED_REASONS = {
    "final_pane",
    "final_pane_earlier",
    "expired_session_not_merged",
    "hold_released",
    "pt_timer_not_watermark",
    "pt_trigger_not_finished",
}


@pytest.mark.parametrize("case", sorted(DEVIATIONS))
def test_each_deviation_is_explained(case: str) -> None:
    """Each patch entry is of a reviewed kind and has the shape that kind implies."""
    spec, _ = _case(case)
    patch = DEVIATIONS[case]
    sessions = spec["window"]["type"] == "sessions"
    for x in patch["extra"] + patch["missing"]:
        assert x["reason"] in ALLOWED_REASONS
        p = x["pane"]
        if x["reason"] == "final_pane":
            # the window's one final pane, at the step where the watermark passed end + lateness
            assert p["is_last"] and p["timing"] in ("ON_TIME", "LATE")
            assert p["step"] == review.expiry_step(spec, p["window"])
        elif x["reason"] == "pt_trigger_not_finished":
            # a later pane of a window that deviation 3 left unfinished (never a pane the oracle has)
            assert x in patch["extra"] and review.unfinished_by_pt(patch["changed"], p)
        else:
            assert x["reason"] == "expired_session_not_merged" and sessions
    for c in patch["changed"]:
        assert c["reason"] in ALLOWED_REASONS
        if c["reason"] == "hold_released":
            assert set(c["fields"]) <= {"timing", "nonspeculative_index", "timestamp"}
        elif c["reason"] == "pt_timer_not_watermark":
            # fired by a processing-time timer before the watermark reached the window's end: EARLY, and
            # not final (the oracle took the timer's time for the watermark)
            assert review.is_pt_timing_change(spec, c["window"], _step_of(case, c), c["fields"])
        elif c["reason"] == "final_pane_earlier":
            # the pane now comes at expiry, earlier than the oracle's processing-time firing
            new_step = c["fields"]["step"][1]
            assert new_step == review.expiry_step(spec, c["window"]) and new_step < c["fields"]["step"][0]
            assert spec["trigger"] != "Default"
        else:
            assert c["reason"] == "expired_session_not_merged" and sessions


def _step_of(case: str, change: dict[str, Any]) -> int:
    """The oracle's step of the pane a change applies to (unchanged by a pt_timer_not_watermark change)."""
    _, expected = _case(case)
    (pane,) = [
        p
        for p in expected["panes"]
        if (p["key"], p["window"], p["index"]) == (change["key"], change["window"], change["index"])
    ]
    return int(pane["step"])


def test_deviation_list_is_current() -> None:
    """deviations.json is exactly what the reducer produces now (regenerate and review when it changes)."""
    assert review.run_all() == DEVIATIONS


def test_deviation_summary() -> None:
    """The reviewed list: how many cases each deviation touches (pinned, so growth gets noticed)."""
    reasons: dict[str, int] = {}
    for patch in DEVIATIONS.values():
        for x in patch["extra"] + patch["missing"] + patch["changed"]:
            reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    assert len(DEVIATIONS) == 76
    assert reasons == {
        "final_pane": 347,
        "expired_session_not_merged": 10,
        "hold_released": 2,
        "final_pane_earlier": 13,
        "pt_timer_not_watermark": 30,
        "pt_trigger_not_finished": 18,
    }
    # deviation 3 touches only processing-time cases
    d3 = {
        case
        for case, patch in DEVIATIONS.items()
        for x in patch["extra"] + patch["changed"]
        if x["reason"].startswith("pt_")
    }
    assert d3 and all(case.startswith("random_processing_time/") for case in d3)
    # deviation 2 shows in millstream's own case (the oracle's cases never observe it)
    d2 = DEVIATIONS["millstream/d2_merged_session_hold_released"]["changed"]
    assert d2 == [
        {
            "key": "b",
            "window": [0, 15],
            "index": 0,
            "fields": {"nonspeculative_index": [-1, 0], "timing": ["EARLY", "LATE"]},
            "reason": "hold_released",
        }
    ]


# ---------------------------------------------------------------- Beam's transcript rules


def _pane_matches(pane: dict[str, Any], exp: dict[str, Any]) -> bool:
    for k, v in exp.items():
        if k == "timestamp_floor":
            ts = pane["timestamp"]
            if not isinstance(ts, (int, float)) or math.floor(ts) != v:
                return False
        elif k == "early":
            if (pane["timing"] == "EARLY") != v:
                return False
        elif k == "late":
            if (pane["timing"] == "LATE") != v:
                return False
        elif pane.get(k) != v:
            return False
    return True


def transcript_mismatch(spec: dict[str, Any], result: dict[str, Any]) -> str | None:
    """Beam's transcript harness rules; returns the error text, or None when the output passes."""
    n = result["num_events"]
    panes = list(result["panes"])
    covered: set[int] = set()
    for block in spec["transcript_check"]["expect"]:
        steps = set(block["steps"])
        covered |= steps
        actual = [p for p in panes if p["step"] in steps]
        for exp in block["panes"]:
            for cand in actual:
                if _pane_matches(cand, exp):
                    actual.remove(cand)
                    break
            else:
                return f"Unmatched output {json.dumps(exp)} after steps {sorted(steps)}"
        if actual:
            return f"Unexpected output after steps {sorted(steps)}: {json.dumps(actual)}"
    stray = [p for p in panes if p["step"] not in covered and p["step"] < n]
    if stray:
        return f"Unexpected output: {json.dumps(stray)}"
    return None


TRANSCRIPTS = [c for c in ALL_CASES if c.startswith("beam_transcripts/")]


@pytest.mark.parametrize("compat", [False, True], ids=["default", "compat"])
@pytest.mark.parametrize("case", TRANSCRIPTS)
def test_beam_transcript_rules(case: str, compat: bool) -> None:
    """The transcripts hold under Beam's own rules; the bad_* ones fail with the error Beam expects."""
    spec, _ = _case(case)
    result = driver.canonical_result(spec, driver.run_scenario(spec, beam_python_compat=compat))
    error = transcript_mismatch(spec, result)
    expected_error = spec["transcript_check"].get("expected_error")
    if expected_error:
        assert error is not None and re.search(expected_error, error)
    else:
        assert error is None
