"""Exactly-once under kill -9: a real subprocess is SIGKILLed at random instants and at every numbered step
of the checkpoint protocol, restarted until it finishes, and its committed output is compared with an
independent computation: nothing lost, nothing duplicated, nothing torn."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

JOB = os.path.join(os.path.dirname(__file__), "kill_job.py")


def make_input(path: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = i * 0.05 - rng.random() * 2.0  # ~20 events per second of event time, up to 2 s out of order
        events.append({"k": f"k{rng.randrange(7)}", "t": round(max(t, 0.0), 3), "v": rng.randrange(100)})
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return events


def expected(events: list[dict]) -> list[list]:
    sums: dict[tuple[str, int], int] = {}
    for e in events:
        key = (e["k"], int(e["t"] // 10 * 10))
        sums[key] = sums.get(key, 0) + e["v"]
    return sorted([k, s, v] for (k, s), v in sums.items())


def job(killed_job: Any, tmp_path: Any, interval: str) -> Any:
    out = str(tmp_path / "out" / "sums")
    args = [
        str(tmp_path / "in.jsonl"),
        out,
        f"--state_dir={tmp_path / 'state'}",
        f"--checkpoint_interval={interval}",
        "--batch_size=40",
    ]
    return killed_job(JOB, args, out, timeout=120)


def test_random_kills_lose_and_duplicate_nothing(tmp_path: Any, killed_job: Any) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 150_000, seed=1)
    hit = job(killed_job, tmp_path, "0.02").kill_repeatedly(20, random.Random(7))
    j = job(killed_job, tmp_path, "0.05")
    j.finish()
    rows = j.committed_rows()
    assert sorted(rows) == expected(events)
    assert len(rows) == len({(r[0], r[1]) for r in rows}), "a (key, window) result was written twice"
    assert hit == 20, f"only {hit} kills hit a running job"


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_crash_at_each_protocol_step(tmp_path: Any, killed_job: Any, step: int) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 30000, seed=step)
    j = job(killed_job, tmp_path, "0.05")
    j.crash_at(step, 2)
    j.finish()
    rows = j.committed_rows()
    assert sorted(rows) == expected(events)


@pytest.mark.soak
def test_soak_many_random_kills(tmp_path: Any, killed_job: Any) -> None:
    """Kills of one long replay: MILLSTREAM_SOAK_KILLS (20 in `make test`, 200 in `make soak`)."""
    kills = int(os.environ.get("MILLSTREAM_SOAK_KILLS", "20"))
    events = make_input(str(tmp_path / "in.jsonl"), 7500 * kills, seed=kills)
    hit = job(killed_job, tmp_path, "0.02").kill_repeatedly(kills, random.Random(kills))
    j = job(killed_job, tmp_path, "0.05")
    j.finish()
    rows = j.committed_rows()
    assert sorted(rows) == expected(events)
    assert hit == kills, f"only {hit} kills hit a running job"
