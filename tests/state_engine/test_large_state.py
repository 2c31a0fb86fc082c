"""State much larger than the memory bound: results stay correct and the process's memory stays bounded.

The job (`large_state_job.py`, fixed windows kept for late data, so every (key, window) stays in the state)
runs in a subprocess twice on the same input: with ``--state_cache_entries`` twenty times smaller than the
state, and without a bound. The bounded run must produce exactly the expected rows, evict, and peak at far
less memory than the unbounded one (which holds all of the ~320 MiB of accumulators).
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from support.jobs import run_job, script_command

JOB = os.path.join(os.path.dirname(__file__), "large_state_job.py")
EVENTS = 40_000
KEYS = 1_000  # per 10 s window: 40 windows x 1000 keys = 40,000 (key, window) entries
CACHE = 2_000


def make_input(path: str) -> dict[tuple[str, float], tuple[int, int]]:
    expected: dict[tuple[str, float], tuple[int, int]] = {}
    with open(path, "w") as f:
        for i in range(EVENTS):
            k, t, v = f"k{i % KEYS}", round(i / 100, 3), i % 100
            f.write(json.dumps({"k": k, "t": t, "v": v}) + "\n")
            c, s = expected.get((k, t // 10 * 10), (0, 0))
            expected[(k, t // 10 * 10)] = (c + 1, s + v)
    return expected


def run(tmp: Any, name: str, cache: int) -> tuple[list[list[Any]], int, str]:
    out = str(tmp / name / "rows")
    proc = run_job(
        script_command(
            JOB,
            "fixed",
            str(tmp / "in.jsonl"),
            out,
            f"--state_dir={tmp / name / 'state'}",
            "--checkpoint_interval=0.5",
            f"--state_cache_entries={cache}",
        ),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = []
    for path in sorted(glob.glob(out + "*")):
        with open(path) as f:
            rows.extend(json.loads(line) for line in f)
    peak = re.search(r"peak_rss_kib=(\d+)", proc.stderr)
    assert peak is not None, proc.stderr[-2000:]
    return rows, int(peak.group(1)) // 1024, proc.stderr


def test_state_twenty_times_the_cache_is_correct_and_memory_is_bounded(tmp_path: Any) -> None:
    expected = make_input(str(tmp_path / "in.jsonl"))
    assert len(expected) == 20 * CACHE
    rows, bounded_mib, log = run(tmp_path, "bounded", CACHE)
    assert sorted(rows) == sorted([k, w, c, s, 0] for (k, w), (c, s) in expected.items())
    evicted = re.search(r"(\d+) entries evicted", log)
    assert evicted is not None and int(evicted.group(1)) >= len(expected) - CACHE, log[-2000:]
    unbounded_rows, unbounded_mib, _ = run(tmp_path, "unbounded", 0)
    assert sorted(unbounded_rows) == sorted(rows)
    # The accumulators alone are ~320 MiB; bounded, a twentieth of them is in memory at a time (plus the
    # pane batch of a firing). RocksDB's own memory (block cache, memtables: up to ~150 MiB as configured)
    # is the same in both runs; usually it stays small here.
    print(f"peak RSS: {bounded_mib} MiB bounded, {unbounded_mib} MiB unbounded")
    assert bounded_mib + 100 < unbounded_mib, (bounded_mib, unbounded_mib)
