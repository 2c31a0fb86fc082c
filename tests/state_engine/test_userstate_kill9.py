"""Beam's stateful DoFn examples under kill -9: bag + flush timer buffering and a per-key counter (see
`userstate_kill_job.py`) are SIGKILLed at random instants and at the checkpoint protocol's steps, restarted
until they finish, and the committed output is checked against the input: every id in exactly one flushed
batch, every key's running count exactly 1..n."""

from __future__ import annotations

import collections
import json
import os
import random
from typing import Any

import pytest

JOB = os.path.join(os.path.dirname(__file__), "userstate_kill_job.py")
BATCH = 7  # userstate_kill_job.BATCH


def make_input(path: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    with open(path, "w") as f:
        events = []
        for i in range(n):
            t = i * 0.05 - rng.random() * 2.0  # ~20 events per second of event time, up to 2 s out of order
            # keys come and go (each lives ~45 s of event time), so a key's last ids are flushed by its timer
            # alone: a timer lost in a restore would leave them in the bag forever
            events.append({"k": f"k{i // 300 + rng.randrange(3)}", "t": round(max(t, 0.0), 3), "id": i})
            f.write(json.dumps(events[-1]) + "\n")
    return events


def check(rows: list[Any], events: list[dict[str, Any]]) -> None:
    """Nothing lost, nothing duplicated: state (buffers, counts) and timers survived every kill exactly."""
    key_of = {e["id"]: e["k"] for e in events}
    per_key = collections.Counter(e["k"] for e in events)
    flushed: collections.Counter[int] = collections.Counter()
    counts: dict[str, list[int]] = collections.defaultdict(list)
    timer_flushes = 0
    for row in rows:
        if row[0] == "batch":
            _, key, ids = row
            assert 0 < len(ids) <= BATCH, row
            assert all(key_of[i] == key for i in ids), f"a batch of {key} holds another key's ids: {row}"
            flushed.update(ids)
            timer_flushes += len(ids) < BATCH
        else:
            counts[row[1]].append(row[2])
    lost = set(key_of) - set(flushed)
    assert not lost, f"{len(lost)} ids never flushed, e.g. {sorted(lost)[:5]}"
    dup = [i for i, c in flushed.items() if c > 1]
    assert not dup, f"{len(dup)} ids flushed twice, e.g. {dup[:5]}"
    assert timer_flushes > 0, "no batch was flushed by the timer"
    for key, n in per_key.items():
        assert sorted(counts[key]) == list(range(1, n + 1)), f"{key}: counts are not exactly 1..{n}"
    assert set(counts) == set(per_key)


def job(killed_job: Any, tmp_path: Any) -> Any:
    out = str(tmp_path / "out" / "rows")
    args = [
        str(tmp_path / "in.jsonl"),
        out,
        f"--state_dir={tmp_path / 'state'}",
        "--checkpoint_interval=0.02",
        "--batch_size=40",
    ]
    return killed_job(JOB, args, out, timeout=120)


def test_stateful_dofns_survive_random_kills(tmp_path: Any, killed_job: Any) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 60_000, seed=3)
    j = job(killed_job, tmp_path)
    hit = j.kill_repeatedly(10, random.Random(5))
    j.finish()
    assert hit >= 8, f"only {hit} kills hit a running job"
    check(j.committed_rows(), events)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_stateful_dofns_survive_a_crash_at_each_protocol_step(
    tmp_path: Any, killed_job: Any, step: int
) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 15_000, seed=step)
    j = job(killed_job, tmp_path)
    j.crash_at(step, 3)
    j.finish()
    check(j.committed_rows(), events)


def test_the_verifier_catches_a_lost_and_a_duplicated_id(tmp_path: Any, killed_job: Any) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 3000, seed=9)
    j = job(killed_job, tmp_path)
    j.finish()
    rows = j.committed_rows()
    check(rows, events)
    batch = next(i for i, r in enumerate(rows) if r[0] == "batch" and len(r[2]) > 1)
    lost = [*rows[:batch], [*rows[batch][:2], rows[batch][2][1:]], *rows[batch + 1 :]]
    with pytest.raises(AssertionError, match="never flushed"):
        check(lost, events)
    with pytest.raises(AssertionError, match="flushed twice"):
        check([*rows, rows[batch]], events)


@pytest.mark.soak
def test_soak_stateful_dofns_many_random_kills(tmp_path: Any, killed_job: Any) -> None:
    """Kills of the stateful DoFns: MILLSTREAM_SOAK_KILLS (20 in `make test`, 200 in `make soak`)."""
    kills = int(os.environ.get("MILLSTREAM_SOAK_KILLS", "20"))
    events = make_input(str(tmp_path / "in.jsonl"), 6000 * kills, seed=kills)
    j = job(killed_job, tmp_path)
    hit = j.kill_repeatedly(kills, random.Random(kills))
    j.finish()
    assert hit == kills, f"only {hit} kills hit a running job"
    check(j.committed_rows(), events)
