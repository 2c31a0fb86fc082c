"""Exactly-once under kill -9 on Cloud Storage: the file kill -9 job (tests/files/kill_files_job.py) reads a CSV
replay from gs:// (byte-range splits of a plain object + a gzip object) and writes sharded text, JSON-lines
and CSV to gs://; it is SIGKILLed at every checkpoint step and at random instants, restarted until it
finishes, and the objects it ends with (Beam's batch names, merged from the per-checkpoint objects) must hold
each row exactly once, whole, with headers; no per-checkpoint or temporary object may be left."""

from __future__ import annotations

import gzip
import json
import os
import random
import re

import pytest

from support.kill9 import KilledJob, script_command

pytestmark = [pytest.mark.gcs, pytest.mark.crash]

JOB = os.path.join(os.path.dirname(__file__), "..", "files", "kill_files_job.py")
# a completed bounded run leaves Beam's batch names only (the per-checkpoint objects are merged into them)
FINAL = re.compile(r"/(text|json|csv)-\d{5}-of-\d{5}\.(txt|json|csv)$")


def make_input(bucket, plain: int, gz: int) -> list[tuple[str, int]]:
    rows = [(f"a{i}", i * 7 % 1000) for i in range(plain)]
    more = [(f"b{i}", i % 13) for i in range(gz)]
    bucket.put("in/a.csv", "id,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    bucket.put("in/b.csv.gz", gzip.compress(("id,v\n" + "".join(f"{k},{v}\n" for k, v in more)).encode()))
    return rows + more


def committed(bucket, sink: str, header: str | None) -> list[str]:
    lines = []
    assert not bucket.names(f"out/{sink}-c"), "per-checkpoint objects left after completion"
    names = bucket.names(f"out/{sink}-")
    assert names, f"no output of {sink}"
    for name in names:
        assert FINAL.search(name), name
        text = bucket.get(name).decode()
        assert text.endswith("\n"), f"torn object {name}"
        got = text.splitlines()
        if header is not None:
            assert got[0] == header, f"{name} starts with {got[0]!r}"
            got = got[1:]
        lines.extend(got)
    return lines


def check_exactly_once(bucket, rows: list[tuple[str, int]]) -> None:
    assert sorted(committed(bucket, "text", "id:v")) == sorted(f"{k}:{v}" for k, v in rows)
    json_rows = [json.loads(line) for line in committed(bucket, "json", None)]
    assert sorted((r["id"], r["v"]) for r in json_rows) == sorted(rows)
    assert sorted(committed(bucket, "csv", "id,v2")) == sorted(f"{k},{v * 2}" for k, v in rows)
    assert [n for n in bucket.names("out/") if "millstream-tmp" in n] == []


def job(bucket, state: str) -> KilledJob:
    """The replay job on gs://, whose progress is the set of checkpoints with committed objects."""
    return KilledJob(
        script_command(JOB, bucket.url("in/*.csv*"), bucket.url("out"), f"--state_dir={state}"),
        lambda: checkpoints_committed(bucket),
        progress_timeout=90,
        poll_s=0.01,
    )


def checkpoints_committed(bucket) -> set[str]:
    return {m.group(1) for n in bucket.names("out/") if (m := re.search(r"-c(\d{8})-", n))}


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_crash_at_every_checkpoint_step(gcs_bucket, tmp_path, step):
    """1-2: pausing/draining; 3: sinks sealed (temporary objects uploaded), not durable; 4: writing it;
    5: durable, objects not committed (recovery commits them); 6: committed, not resumed (a replayed commit)."""
    rows = make_input(gcs_bucket, 200_000, 50_000)
    state = str(tmp_path / "state")
    j = job(gcs_bucket, state)
    j.crash_at(step, 2)
    j.finish()
    check_exactly_once(gcs_bucket, rows)


def test_random_kills_lose_and_duplicate_nothing(gcs_bucket, tmp_path):
    rows = make_input(gcs_bucket, 300_000, 30_000)
    state = str(tmp_path / "state")
    j = job(gcs_bucket, state)
    hit = j.kill_repeatedly(6, random.Random(17), 0.05, attempts=6, progress=(1, 2), rerun_finished=True)
    j.finish()
    check_exactly_once(gcs_bucket, rows)
    assert hit >= 4, f"only {hit} of 6 kills hit a running job"
