"""Exactly-once under kill -9 for the file sinks: a bounded CSV replay (byte-range splits + a gzip file) into
sharded text, JSON-lines and CSV files is SIGKILLed at random instants and at the checkpoint steps around the
commit, restarted until it finishes, and every sink's committed output must hold each input row exactly once,
in whole lines, with each file's header."""

from __future__ import annotations

import random

import pytest

from support.file_replay import LocalStore, check_exactly_once, make_input, replay_job

pytestmark = pytest.mark.crash


def test_random_kills_during_a_replay_lose_and_duplicate_nothing(tmp_path):
    store = LocalStore(tmp_path)
    rows = make_input(store, 600_000, 60_000)
    j = replay_job(store, str(tmp_path / "state"), timeout=120)
    # Kill at a random instant of a random checkpoint cycle (1 or 2), once the job has made progress since
    # restart; a run that completes is started again (it recomputes its output afresh).
    hit = j.kill_repeatedly(10, random.Random(11), 0.05, attempts=10, progress=(1, 2), rerun_finished=True)
    j.finish()
    check_exactly_once(store, rows)
    assert hit >= 8, f"only {hit} of 10 kills hit a running job"


@pytest.mark.parametrize("step", [3, 4, 5])
def test_crash_around_the_commit(tmp_path, step):
    """3: sinks sealed, checkpoint not durable (discard); 4: writing it; 5: durable, files not yet renamed
    (recovery must rename every shard)."""
    store = LocalStore(tmp_path)
    # large enough that the replay outlives several 50 ms checkpoint intervals on an idle machine
    rows = make_input(store, 200_000, 50_000)
    j = replay_job(store, str(tmp_path / "state"), timeout=120)
    j.crash_at(step, 2)
    j.finish()
    check_exactly_once(store, rows)
