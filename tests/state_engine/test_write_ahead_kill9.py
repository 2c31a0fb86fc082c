"""Exactly-once under kill -9 while spilled state is written ahead of the next checkpoint.

Between checkpoints the job moves its spilled rows into the store as versions of the coming checkpoint
(`StateTier.write_ahead`); they must stay invisible until that checkpoint's manifest commits, and a crash
before that must leave the previous checkpoint intact. `large_state_job.py` (300 keys, memory bound 100)
runs with the write-ahead threshold lowered to one row (``MILLSTREAM_WRITE_AHEAD_MIN``), is killed at the
snapshot and durable-write steps of a checkpoint that had rows written ahead, and at random instants, and
its committed output is compared with an independent computation.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from .test_incremental_kill9 import check, job, make_input

AHEAD = re.compile(r"checkpoint (\d+): (\d+) rows of spilled state were written ahead")


@pytest.fixture(autouse=True)
def _write_ahead_from_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", "1")


@pytest.mark.parametrize("step", [3, 4])
@pytest.mark.parametrize("mode", ["fixed", "sessions"])
def test_crash_after_rows_were_written_ahead(tmp_path: Any, killed_job: Any, step: int, mode: str) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 60000, seed=step)
    j = job(killed_job, tmp_path, mode, interval=0.25)
    log = j.crash_at(step, 3)
    ahead = {int(c): int(n) for c, n in AHEAD.findall(log)}
    assert ahead.get(max(ahead, default=0), 0) > 0 and len(ahead) >= 2, (
        f"nothing was written ahead: {log[-2000:]}"
    )
    log = j.finish()
    assert AHEAD.search(log), "the restarted run wrote nothing ahead"
    check(mode, j.committed_rows(), events)


def test_random_kills_while_writing_ahead(tmp_path: Any, killed_job: Any) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 120000, seed=7)  # a run long enough for 5 kills to hit
    j = job(killed_job, tmp_path, "fixed", interval=0.25)
    hit = j.kill_repeatedly(5, random.Random(5), max_delay=0.3)
    j.finish()
    assert hit >= 3, f"only {hit} kills hit a running job"
    check("fixed", j.committed_rows(), events)
