"""Exactly-once under kill -9 for the file sinks: a bounded CSV replay (byte-range splits + a gzip file) into
sharded text, JSON-lines and CSV files is SIGKILLed at random instants and at the checkpoint steps around the
commit, restarted until it finishes, and every sink's committed output must hold each input row exactly once,
in whole lines, with each file's header."""

from __future__ import annotations

import glob
import gzip
import json
import os
import random
import re

import pytest

from support.kill9 import KilledJob, script_command

pytestmark = pytest.mark.crash

JOB = os.path.join(os.path.dirname(__file__), "kill_files_job.py")
# a completed bounded run leaves Beam's batch names only (the per-checkpoint files are merged into them)
FINAL = re.compile(r"/(text|json|csv)-\d{5}-of-\d{5}(\.txt|\.json|\.csv)?$")


def make_input(directory: str, plain: int, gz: int) -> list[tuple[str, int]]:
    os.makedirs(directory, exist_ok=True)
    rows = [(f"a{i}", i * 7 % 1000) for i in range(plain)]
    more = [(f"b{i}", i % 13) for i in range(gz)]
    with open(os.path.join(directory, "a.csv"), "w") as f:
        f.write("id,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    with gzip.open(os.path.join(directory, "b.csv.gz"), "wt") as f:
        f.write("id,v\n" + "".join(f"{k},{v}\n" for k, v in more))
    return rows + more


def committed(out: str, sink: str, header: str | None) -> list[str]:
    lines = []
    assert not glob.glob(os.path.join(out, sink + "-c*")), "per-checkpoint files left after completion"
    names = sorted(glob.glob(os.path.join(out, sink + "-*")))
    assert names, f"no output of {sink}"
    for name in names:
        assert FINAL.search(name), name
        with open(name) as f:
            text = f.read()
        assert text.endswith("\n"), f"torn file {name}"
        got = text.splitlines()
        if header is not None:
            assert got[0] == header, f"{name} starts with {got[0]!r}"
            got = got[1:]
        lines.extend(got)
    return lines


def check_exactly_once(out: str, rows: list[tuple[str, int]]) -> None:
    assert sorted(committed(out, "text", "id:v")) == sorted(f"{k}:{v}" for k, v in rows)
    json_rows = [json.loads(line) for line in committed(out, "json", None)]
    assert sorted((r["id"], r["v"]) for r in json_rows) == sorted(rows)
    assert sorted(committed(out, "csv", "id,v2")) == sorted(f"{k},{v * 2}" for k, v in rows)


def job(pattern: str, out: str, state: str) -> KilledJob:
    """The replay job, whose progress is the set of checkpoints with committed output."""
    return KilledJob(
        script_command(JOB, pattern, out, f"--state_dir={state}"),
        lambda: checkpoints_committed(out),
        timeout=120,
    )


def checkpoints_committed(out: str) -> set[str]:
    """The checkpoint ids that have committed output files so far."""
    if not os.path.isdir(out):
        return set()
    return {m.group(1) for n in os.listdir(out) if (m := re.search(r"-c(\d{8})-", n))}


def test_random_kills_during_a_replay_lose_and_duplicate_nothing(tmp_path):
    rows = make_input(str(tmp_path / "in"), 600_000, 60_000)
    pattern, out, state = str(tmp_path / "in" / "*.csv*"), str(tmp_path / "out"), str(tmp_path / "state")
    j = job(pattern, out, state)
    # Kill at a random instant of a random checkpoint cycle (1 or 2), once the job has made progress since
    # restart; a run that completes is started again (it recomputes its output afresh).
    hit = j.kill_repeatedly(10, random.Random(11), 0.05, attempts=10, progress=(1, 2), rerun_finished=True)
    j.finish()
    check_exactly_once(out, rows)
    assert hit >= 8, f"only {hit} of 10 kills hit a running job"


@pytest.mark.parametrize("step", [3, 4, 5])
def test_crash_around_the_commit(tmp_path, step):
    """3: sinks sealed, checkpoint not durable (discard); 4: writing it; 5: durable, files not yet renamed
    (recovery must rename every shard)."""
    # large enough that the replay outlives several 50 ms checkpoint intervals on an idle machine
    rows = make_input(str(tmp_path / "in"), 200_000, 50_000)
    pattern, out, state = str(tmp_path / "in" / "*.csv*"), str(tmp_path / "out"), str(tmp_path / "state")
    j = job(pattern, out, state)
    j.crash_at(step, 2)
    j.finish()
    check_exactly_once(out, rows)
