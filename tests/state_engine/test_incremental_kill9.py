"""Exactly-once under kill -9 with state evicted from memory (incremental checkpoints, spill area).

`large_state_job.py` runs with a memory bound far below its state (--state_cache_entries=100 for ~300 keys
and their windows), so entries are evicted to the spill area and read back all the time. The process is
SIGKILLed at random instants and at steps of the checkpoint protocol, restarted until it finishes, and its
committed output is compared with an independent computation: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
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


def committed_rows(out: str) -> list[list[Any]]:
    rows = []
    for name in sorted(glob.glob(out + "-c*")):
        with open(name) as f:
            for line in f:
                assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                rows.append(json.loads(line))
    return rows


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


def start(mode: str, src: str, out: str, state: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra or {})
    args = [sys.executable, "-P", JOB, mode, src, out, f"--state_dir={state}", "--checkpoint_interval=0.05",
            "--batch_size=40", "--state_cache_entries=100"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_new_output(out: str, before: int, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(glob.glob(out + "-c*")) > before:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)  # polling a condition: the job runs in another process
    return False


def finish(mode: str, src: str, out: str, state: str) -> str:
    proc = start(mode, src, out, state)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()[-3000:]
    return err.decode()


@pytest.mark.parametrize("mode", ["fixed", "sessions", "general"])
def test_random_kills_with_evicted_state_lose_and_duplicate_nothing(tmp_path: Any, mode: str) -> None:
    src = str(tmp_path / "in.jsonl")
    events = make_input(src, 20000, seed=len(mode))
    out = str(tmp_path / "out" / "rows")
    state = str(tmp_path / "state")
    rng = random.Random(11)
    hit = 0
    for _ in range(12):
        before = len(glob.glob(out + "-c*"))
        proc = start(mode, src, out, state)
        if wait_for_new_output(out, before, proc):
            time.sleep(rng.uniform(0.0, 0.03))  # a random instant after progress: a kill, not a wait
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hit += 1
            if hit == 5:
                break
        else:
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            break
    log = finish(mode, src, out, state)
    assert hit >= 3, f"only {hit} kills hit a running job"
    check(mode, committed_rows(out), events)
    evicted = re.search(r"(\d+) entries evicted", log)
    assert evicted is not None and int(evicted.group(1)) > 0, "the last run evicted nothing"


@pytest.mark.parametrize("step", [3, 4, 5])
def test_crash_at_checkpoint_steps_with_evicted_state(tmp_path: Any, step: int) -> None:
    src = str(tmp_path / "in.jsonl")
    events = make_input(src, 8000, seed=step)
    out = str(tmp_path / "out" / "rows")
    state = str(tmp_path / "state")
    proc = start("fixed", src, out, state, {"MILLSTREAM_CRASH_AT": f"{step}:3"})
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the crash point was not reached"
    finish("fixed", src, out, state)
    check("fixed", committed_rows(out), events)
