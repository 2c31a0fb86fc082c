"""Exactly-once under kill -9 on Cloud Storage: the file kill -9 job (tests/files/kill_files_job.py) reads a CSV
replay from gs:// (byte-range splits of a plain object + a gzip object) and writes sharded text, JSON-lines
and CSV to gs://; it is SIGKILLed at every checkpoint step and at random instants, restarted until it
finishes, and the objects it ends with (Beam's batch names, merged from the per-checkpoint objects) must hold
each row exactly once, whole, with headers; no per-checkpoint or temporary object may be left."""

from __future__ import annotations

import random

import pytest

from support.file_replay import BucketStore, check_exactly_once, make_input, replay_job

pytestmark = [pytest.mark.gcs, pytest.mark.crash]


def check(store: BucketStore, rows: list[tuple[str, int]]) -> None:
    """Exactly once, and no temporary object left."""
    check_exactly_once(store, rows)
    assert [n for n in store.names("out/") if "millstream-tmp" in n] == []


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_crash_at_every_checkpoint_step(gcs_bucket, tmp_path, step):
    """1-2: pausing/draining; 3: sinks sealed (temporary objects uploaded), not durable; 4: writing it;
    5: durable, objects not committed (recovery commits them); 6: committed, not resumed (a replayed commit)."""
    store = BucketStore(gcs_bucket)
    rows = make_input(store, 200_000, 50_000)
    j = replay_job(store, str(tmp_path / "state"), progress_timeout=90, poll_s=0.01)
    j.crash_at(step, 2)
    j.finish()
    check(store, rows)


def test_random_kills_lose_and_duplicate_nothing(gcs_bucket, tmp_path):
    store = BucketStore(gcs_bucket)
    rows = make_input(store, 300_000, 30_000)
    j = replay_job(store, str(tmp_path / "state"), progress_timeout=90, poll_s=0.01)
    hit = j.kill_repeatedly(6, random.Random(17), 0.05, attempts=6, progress=(1, 2), rerun_finished=True)
    j.finish()
    check(store, rows)
    assert hit >= 4, f"only {hit} of 6 kills hit a running job"
