"""A bounded run that completed is never recovered: running a batch program again computes and writes its
output afresh (whether or not its earlier output was removed), while an interrupted run resumes from its last
checkpoint. Real subprocesses, files and RocksDB state."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from typing import Any

from millstream.engine.runtime.checkpoint.coordinator import Step

from support.jobs import run_job, script_command

HERE = os.path.dirname(__file__)
JOB = os.path.join(HERE, "batch_rerun_job.py")


def _input(tmp_path: Any) -> tuple[str, list[list[Any]]]:
    src = tmp_path / "events.jsonl"
    events = [{"k": f"k{i % 7}", "t": (i * 13) % 600} for i in range(3000)]
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    counts = Counter((e["k"], e["t"] // 60 * 60) for e in events)
    return str(src), sorted([k, w, n] for (k, w), n in counts.items())


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_job(script_command(JOB, *args), env_extra=env)


FINAL = "Q1-00000-of-00001.jsonl"  # Beam's batch name: a completed bounded run leaves only it


def _names(out: str) -> list[str]:
    """The visible output files."""
    return sorted(name for name in os.listdir(out) if name.startswith("Q1"))


def _rows(out: str) -> list[list[Any]]:
    """Every row of every visible output file (per-checkpoint or final)."""
    rows = []
    for name in sorted(os.listdir(out)):
        if name.startswith("Q1"):
            with open(os.path.join(out, name)) as f:
                rows.extend(json.loads(line) for line in f)
    return sorted(rows)


def test_a_batch_program_run_three_times_writes_its_full_output_once_each_time(tmp_path: Any) -> None:
    src, expected = _input(tmp_path)
    out = str(tmp_path / "out")
    flags = [f"--state_dir={tmp_path / 'state'}", "--batch_size=100"]
    for remove in ("remove", "remove", "keep"):
        done = _run([src, out, remove, *flags])
        assert done.returncode == 0, done.stderr[-3000:]
        assert _rows(out) == expected, f"run after '{remove}' wrote the wrong output"
        assert _names(out) == [FINAL]


def test_an_interrupted_bounded_run_started_again_writes_its_output_once(tmp_path: Any) -> None:
    src, expected = _input(tmp_path)
    out = str(tmp_path / "out")
    flags = [f"--state_dir={tmp_path / 'state'}", "--batch_size=100"]
    # killed after its final checkpoint is durable, before the sink commits it: the next start finishes it
    killed = _run([src, out, "keep", *flags], {"MILLSTREAM_CRASH_AT": f"{int(Step.COMMIT_SINKS)}:1"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert _rows(out) == []
    again = _run([src, out, "keep", *flags])
    assert again.returncode == 0, again.stderr[-3000:]
    assert _rows(out) == expected
    assert _names(out) == [FINAL], "the restart finished the commit of checkpoint 1 under the batch name"
    # that run was completed by the restart: the next one computes afresh, and again writes everything once;
    # a row no run computes, added to the completed run's file, shows whether that file was replaced (inode
    # numbers cannot: a freed one is handed out again)
    with open(os.path.join(out, FINAL), "a") as f:
        f.write(json.dumps(["not computed by any run", 0, 0]) + "\n")
    third = _run([src, out, "keep", *flags])
    assert third.returncode == 0, third.stderr[-3000:]
    assert _names(out) == [FINAL]
    assert _rows(out) == expected, "the completed run's file was replaced afresh"
