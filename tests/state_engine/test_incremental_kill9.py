"""Exactly-once under kill -9 with state evicted from memory (incremental checkpoints, spill area).

`large_state_job.py` runs with a memory bound far below its state (--state_cache_entries=100 for ~300 keys
and their windows), so entries are evicted to the spill area and read back all the time. The process is
SIGKILLed at random instants and at steps of the checkpoint protocol, restarted until it finishes, and its
committed output is compared with an independent computation: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import json
import os
import random
import re
from typing import Any

import pytest

JOB = os.path.join(os.path.dirname(__file__), "large_state_job.py")
GAP = 5.0


def make_input(path: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = i * 0.05 - rng.random() * 2.0  # ~20 events per second, up to 2 s out of order
        events.append({"k": f"k{rng.randrange(300)}", "t": round(max(t, 0.0), 3), "v": rng.randrange(100)})
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return events


def totals(mode: str, events: list[dict[str, Any]]) -> dict[tuple[str, float], tuple[int, int]]:
    """(key, window or session start) -> (count, sum)."""
    out: dict[tuple[str, float], tuple[int, int]] = {}
    if mode != "sessions":
        for e in events:
            key = (e["k"], float(e["t"] // 10 * 10))
            c, s = out.get(key, (0, 0))
            out[key] = (c + 1, s + e["v"])
        return out
    by_key: dict[str, list[tuple[float, int]]] = {}
    for e in events:
        by_key.setdefault(e["k"], []).append((e["t"], e["v"]))
    for k, items in by_key.items():
        items.sort()
        start, last, c, s = items[0][0], items[0][0], 0, 0
        for t, v in items:
            if t - last >= GAP:  # Beam's sessions merge proto-windows [t, t + gap) that overlap
                out[(k, start)] = (c, s)
                start, c, s = t, 0, 0
            last = t
            c += 1
            s += v
        out[(k, start)] = (c, s)
    return out


def check(mode: str, rows: list[list[Any]], events: list[dict[str, Any]]) -> None:
    """Every window's panes exactly once: indexes 0..n-1, counts and sums adding up to the input."""
    panes: dict[tuple[str, float], list[tuple[int, int, int]]] = {}
    for k, start, c, s, index in rows:
        panes.setdefault((k, float(start)), []).append((index, c, s))
    expected = totals(mode, events)
    assert set(panes) == set(expected)
    for key, got in panes.items():
        assert sorted(i for i, _, _ in got) == list(range(len(got))), f"{key}: pane indexes {got}"
        assert (sum(c for _, c, _ in got), sum(s for _, _, s in got)) == expected[key], key
        if mode != "general":
            assert len(got) == 1


def job(killed_job: Any, tmp_path: Any, mode: str, interval: float = 0.05) -> Any:
    """The large-state job in `mode` on tmp_path/in.jsonl, memory-bound to 100 entries, for the harness."""
    out = str(tmp_path / "out" / "rows")
    args = [
        mode,
        str(tmp_path / "in.jsonl"),
        out,
        f"--state_dir={tmp_path / 'state'}",
        f"--checkpoint_interval={interval}",
        "--batch_size=40",
        "--state_cache_entries=100",
    ]
    return killed_job(JOB, args, out)


@pytest.mark.parametrize("mode", ["fixed", "sessions", "general"])
def test_random_kills_with_evicted_state_lose_and_duplicate_nothing(
    tmp_path: Any, killed_job: Any, mode: str
) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 20000, seed=len(mode))
    j = job(killed_job, tmp_path, mode)
    hit = j.kill_repeatedly(5, random.Random(11), max_delay=0.03)
    log = j.finish()
    assert hit >= 3, f"only {hit} kills hit a running job"
    check(mode, j.committed_rows(), events)
    evicted = re.search(r"(\d+) entries evicted", log)
    assert evicted is not None and int(evicted.group(1)) > 0, "the last run evicted nothing"


@pytest.mark.parametrize("step", [3, 4, 5])
def test_crash_at_checkpoint_steps_with_evicted_state(tmp_path: Any, killed_job: Any, step: int) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 8000, seed=step)
    j = job(killed_job, tmp_path, "fixed")
    j.crash_at(step, 3)
    j.finish()
    check("fixed", j.committed_rows(), events)
