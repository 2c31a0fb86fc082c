"""Tool (not a test): list where millstream's reducer differs from the Beam oracle, as reviewable patches.

The three deviations of the semantics policy change some conformance outputs. This tool runs every case,
pairs our panes with the oracle's (compare.py's pairing) and writes, per differing case, the exact patch
that turns the oracle's panes into ours, each pane tagged with the deviation that explains it:

* ``final_pane``: an extra pane emitted when the window expired (deviation 1): ``is_last``, timing
  ON_TIME/LATE, emitted at the step where the watermark passed end + allowed lateness (or at the end);
* ``final_pane_earlier``: the oracle emits the data later (a processing-time timer after the window
  expired); we emit it in the final pane at expiry, so that pane moves to the expiry step;
* ``expired_session_not_merged``: a session expired (deviation 1 deletes its state); a later element
  whose proto-window still passes the lateness check starts a new session instead of merging into the
  expired one (Python keeps and merges expired sessions; Java does not);
* ``hold_released``: a field changed only because an expired window's or a merged session's watermark
  hold was released (deviation 1 or 2), which moves the output watermark: pane timing,
  nonspeculative index or the element-hold timestamp of another pane;
* ``pt_timer_not_watermark``: a pane fired by a processing-time timer while the input watermark was still
  at or before the window's max timestamp is EARLY (deviation 3); the oracle took the timer's time for the
  watermark and made it LATE (and, where that finished AfterWatermark, final);
* ``pt_trigger_not_finished``: a pane the oracle never emits because its window's trigger had finished
  at such a processing-time firing (deviation 3): the window's later early panes, its ON_TIME pane and
  data the oracle dropped as arriving after the trigger finished (for sessions: in the session that grew
  from that window).

Anything else is tagged ``UNEXPLAINED`` and must be investigated, not accepted.

    .venv/bin/python -P tests/conformance/review_deviations.py            # summary
    .venv/bin/python -P tests/conformance/review_deviations.py --write    # rewrite deviations.json
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
SETS = ("beam_transcripts", "random", "random_processing_time", "subtleties", "millstream")


def _load(name: str) -> Any:
    mod = f"millstream_conformance_{name}"
    if mod not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod, os.path.join(HERE, f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod] = module
        spec.loader.exec_module(module)
    return sys.modules[mod]


def expiry_step(spec: dict[str, Any], window: Any) -> int:
    """Index of the event after which the window is expired (watermark > end + lateness), else the end."""
    events = spec.get("events", [])
    if window == "GLOBAL":
        return len(events)
    limit = window[1] + spec.get("allowed_lateness", 0)
    for i, ev in enumerate(events):
        if "watermark" in ev and ev["watermark"] > limit:
            return i
    return len(events)


def watermark_at(spec: dict[str, Any], step: int) -> float:
    """The input watermark after the event at ``step`` (before the final advance to +infinity)."""
    wm = float("-inf")
    for ev in spec.get("events", [])[: step + 1]:
        if "watermark" in ev:
            wm = max(wm, ev["watermark"])
    return wm


def fired_by_processing_time(spec: dict[str, Any], step: int) -> bool:
    """True when the event at ``step`` advances processing time (or it is the end, which advances it too)."""
    events = spec.get("events", [])
    return step == len(events) or "processing_time" in events[step]


def is_pt_timing_change(spec: dict[str, Any], window: Any, step: int, fields: dict[str, Any]) -> bool:
    """The shape of a ``pt_timer_not_watermark`` change (deviation 3)."""
    if not set(fields) <= {"timing", "nonspeculative_index", "is_last"} or "step" in fields:
        return False
    if fields.get("timing") != ["LATE", "EARLY"] or fields.get("is_last", [True, False]) != [True, False]:
        return False
    end = float("inf") if window == "GLOBAL" else window[1]
    return fired_by_processing_time(spec, step) and watermark_at(spec, step) < end


def _overlaps(a: Any, b: Any) -> bool:
    if a == "GLOBAL" or b == "GLOBAL":
        return a == b
    return bool(a[0] < b[1] and b[0] < a[1])


def unfinished_by_pt(changed: list[dict[str, Any]], pane: dict[str, Any]) -> bool:
    """True when ``pane`` belongs to a window (or a session grown from it) that deviation 3 left unfinished."""
    return any(
        c["reason"] == "pt_timer_not_watermark"
        and "is_last" in c["fields"]
        and c["key"] == pane["key"]
        and _overlaps(c["window"], pane["window"])
        and (c["window"] != pane["window"] or pane["index"] > c["index"])
        for c in changed
    )


def case_patch(
    spec: dict[str, Any], expected: list[dict[str, Any]], actual: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The tagged patch from expected to actual panes, or None when they agree."""
    compare = _load("compare")
    pairs, missing, extra = compare.match_panes(expected, actual)
    changed = []
    actual_of = {}
    for e, a in pairs:
        fields = {
            f: [e.get(f), a.get(f)]
            for f in sorted(set(e) | set(a))
            if not compare.values_equal(f, e.get(f), a.get(f))
        }
        if fields:
            changed.append({"key": e["key"], "window": e["window"], "index": e["index"], "fields": fields})
            actual_of[id(changed[-1])] = a
    if not (changed or missing or extra):
        return None
    sessions = spec.get("window", {}).get("type") == "sessions"
    missing_windows = {json.dumps([p["key"], p["window"]]) for p in missing}
    for c in changed:
        f = c["fields"]
        a = actual_of[id(c)]
        if is_pt_timing_change(spec, c["window"], a["step"], f):
            c["reason"] = "pt_timer_not_watermark"
        elif "step" in f and a["is_last"] and a["step"] == expiry_step(spec, c["window"]):
            c["reason"] = "final_pane_earlier"
        elif set(f) <= {"timing", "nonspeculative_index", "timestamp"}:
            c["reason"] = "hold_released"
        elif sessions and missing_windows:
            c["reason"] = "expired_session_not_merged"
        else:
            c["reason"] = "UNEXPLAINED"
    tagged_extra = []
    for p in extra:
        if unfinished_by_pt(changed, p):
            reason = "pt_trigger_not_finished"
        elif (
            p["is_last"]
            and p["timing"] in ("ON_TIME", "LATE")
            and p["step"] == expiry_step(spec, p["window"])
        ):
            reason = "final_pane"
        elif sessions:
            reason = "expired_session_not_merged"
        else:
            reason = "UNEXPLAINED"
        tagged_extra.append({"reason": reason, "pane": p})
    tagged_missing = [
        {"reason": "expired_session_not_merged" if sessions else "UNEXPLAINED", "pane": p} for p in missing
    ]
    return {"extra": tagged_extra, "missing": tagged_missing, "changed": changed}


def run_all() -> dict[str, dict[str, Any]]:
    """Patches of every differing case, keyed "set/name" (name without .json)."""
    driver = _load("driver")
    out = {}
    for s in SETS:
        for path in sorted(glob.glob(os.path.join(CASES, s, "*.json"))):
            name = os.path.basename(path)[:-5]
            with open(path) as f:
                spec = json.load(f)
            with open(os.path.join(CASES, s, "expected", name + ".json")) as f:
                expected = json.load(f)["panes"]
            actual = driver.canonical_result(spec, driver.run_scenario(spec))["panes"]
            patch = case_patch(spec, expected, actual)
            if patch is not None:
                out[f"{s}/{name}"] = patch
    return out


def main() -> int:
    """Print a summary; with --write, store the patches in deviations.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    patches = run_all()
    counts: dict[str, int] = {}
    for case, p in patches.items():
        tags = [x["reason"] for x in p["extra"] + p["missing"]] + [c["reason"] for c in p["changed"]]
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
        print(
            case,
            sorted(set(tags)),
            f"extra={len(p['extra'])} missing={len(p['missing'])} changed={len(p['changed'])}",
        )
    print(len(patches), "cases differ;", counts)
    if args.write:
        path = os.path.join(HERE, "deviations.json")
        with open(path, "w") as f:
            f.write("{\n")
            items = list(patches.items())
            for i, (case, p) in enumerate(items):
                f.write(f" {json.dumps(case)}: {{\n")
                for j, part in enumerate(("extra", "missing", "changed")):
                    rows = p[part]
                    f.write(f"  {json.dumps(part)}: [")
                    if rows:
                        f.write("\n" + ",\n".join("   " + json.dumps(r) for r in rows) + "\n  ")
                    f.write("]" + (",\n" if j < 2 else "\n"))
                f.write(" }" + (",\n" if i + 1 < len(items) else "\n"))
            f.write("}\n")
        print("wrote", path)
    return 1 if "UNEXPLAINED" in counts else 0


if __name__ == "__main__":
    sys.exit(main())
