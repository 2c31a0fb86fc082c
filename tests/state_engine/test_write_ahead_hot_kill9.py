"""Exactly-once under kill -9 while the entries held in memory are written ahead of the next checkpoint.

Between checkpoints each incremental node writes its changed in-memory entries into the store in slices, as
versions of the coming checkpoint, and marks them unchanged (`IncrementalNodes._write_hot_ahead`); the
checkpoint then writes only what changed again. `large_state_job.py` runs with that threshold lowered to one
entry (``MILLSTREAM_WRITE_AHEAD_HOT_MIN``), is killed at the snapshot and durable-write steps of a checkpoint
whose node had entries written ahead, and at random instants, and its committed output is compared with an
uninterrupted run's (write-ahead off) and with an independent computation.
"""

from __future__ import annotations

import os
import random
import re
import signal
from typing import Any

import pytest

from tests.state_engine.test_incremental_kill9 import JOB, check, make_input

HOT = re.compile(r"checkpoint (\d+): (\d+) entries held in memory were written ahead")
OFF = str(10**12)


def job(
    killed_job: Any, tmp_path: Any, mode: str, cache: int, name: str = "killed", log_path: str | None = None
) -> Any:
    out = str(tmp_path / name / "out" / "rows")
    args = [
        mode,
        str(tmp_path / "in.jsonl"),
        out,
        f"--state_dir={tmp_path / name / 'state'}",
        "--checkpoint_interval=0.25",
        "--batch_size=40",
        f"--state_cache_entries={cache}",
    ]
    return killed_job(JOB, args, out, log_path=log_path)


def uninterrupted(killed_job: Any, tmp_path: Any, mode: str, cache: int) -> list[Any]:
    """The committed rows of a run that is never killed and writes nothing ahead (not even while a checkpoint
    pauses the sources: `IncrementalNodes.catch_up`)."""
    names = ("MILLSTREAM_WRITE_AHEAD_HOT_MIN", "MILLSTREAM_WRITE_AHEAD_MIN", "MILLSTREAM_CATCH_UP_MIN")
    saved = {k: os.environ.get(k) for k in names}
    for k in names:
        os.environ[k] = OFF
    try:
        j = job(killed_job, tmp_path, mode, cache, name="reference")
        log = j.finish()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert not HOT.search(log), "the reference run wrote entries ahead"
    return sorted(j.committed_rows())


@pytest.fixture(autouse=True)
def _write_hot_entries_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_HOT_MIN", "1")


@pytest.mark.parametrize("step", [3, 4])
@pytest.mark.parametrize(
    ("mode", "cache"), [("fixed", 100_000), ("sessions", 100_000), ("fixed", 100), ("sessions", 100)]
)
def test_crash_after_hot_entries_were_written_ahead(
    tmp_path: Any, killed_job: Any, step: int, mode: str, cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cache > 1000:
        monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", OFF)  # everything is in memory: only hot entries
    # all in memory, the job runs faster: more input, so the kill comes at its third checkpoint and the
    # restarted run lasts long enough to write ahead
    events = make_input(str(tmp_path / "in.jsonl"), 150000 if cache > 1000 else 60000, seed=step)
    j = job(killed_job, tmp_path, mode, cache)
    proc = j.start({"MILLSTREAM_CRASH_AT": f"{step}:3"})
    _, err = proc.communicate(timeout=j.timeout)
    log = err.decode()
    assert proc.returncode == -signal.SIGKILL, f"the crash point was not reached: {log[-2000:]}"
    hot = {int(c): int(n) for c, n in HOT.findall(log)}
    assert hot and max(hot) >= 2 and hot[max(hot)] > 0, (
        f"nothing held in memory was written ahead: {log[-2000:]}"
    )
    log = j.finish()
    assert HOT.search(log), "the restarted run wrote nothing ahead"
    rows = sorted(j.committed_rows())
    check(mode, rows, events)
    assert rows == uninterrupted(killed_job, tmp_path, mode, cache)


@pytest.mark.parametrize("cache", [100_000, 100])
def test_random_kills_while_writing_hot_entries_ahead(tmp_path: Any, killed_job: Any, cache: int) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 150000, seed=9)
    # every run's log, the killed ones' too: the last run may have too little input left to write ahead
    j = job(killed_job, tmp_path, "fixed", cache, log_path=str(tmp_path / "runs.log"))
    hit = j.kill_repeatedly(5, random.Random(5), max_delay=0.15)
    log = j.finish()
    assert hit >= 3, f"only {hit} kills hit a running job"
    assert HOT.search(log), "no run wrote entries held in memory ahead"
    rows = sorted(j.committed_rows())
    check("fixed", rows, events)
    assert rows == uninterrupted(killed_job, tmp_path, "fixed", cache)


@pytest.mark.parametrize("mode", ["fixed", "sessions", "general"])
def test_hot_entries_written_ahead_with_evicted_state(tmp_path: Any, killed_job: Any, mode: str) -> None:
    """No kill: entries written ahead, then evicted as unchanged and read back, or deleted and given state again
    (a deletion in the spill area must not hide the newer record written ahead), give the same output."""
    events = make_input(str(tmp_path / "in.jsonl"), 20000, seed=8)
    j = job(killed_job, tmp_path, mode, 100)
    log = j.finish()
    assert HOT.search(log), "nothing held in memory was written ahead"
    rows = sorted(j.committed_rows())
    check(mode, rows, events)
    if mode != "general":  # (early count-triggered panes may split differently; check() verifies them)
        assert rows == uninterrupted(killed_job, tmp_path, mode, 100)
