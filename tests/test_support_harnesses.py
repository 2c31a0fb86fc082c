"""The kill -9 harness of tests/support against tiny real job scripts: it kills only after observed progress,
reports a failing job with its stderr, fails at its deadline when nothing progresses, and checks that a
crash point was really reached."""

from __future__ import annotations

import glob
import random
import subprocess
from pathlib import Path

import pytest

from support.kill9 import KilledJob, script_command

PROGRESSING = """
import os, sys, time
out = sys.argv[1]
i = 0
while True:
    i += 1
    with open(f"{out}-c{os.getpid()}-{i}.tmp", "w") as f:
        f.write("x")
    os.rename(f"{out}-c{os.getpid()}-{i}.tmp", f"{out}-c{os.getpid()}-{i}")
    time.sleep(0.02)
"""


def job(tmp_path: Path, source: str, **kwargs: float) -> KilledJob:
    script = tmp_path / "job.py"
    script.write_text(source)
    out = str(tmp_path / "out")
    return KilledJob(script_command(str(script), out), lambda: set(glob.glob(out + "-c*")), **kwargs)


def test_kills_a_streaming_job_after_progress_each_time(tmp_path: Path) -> None:
    j = job(tmp_path, PROGRESSING)
    assert j.kill_repeatedly(3, random.Random(1), 0.01, progress=(2, 2), streaming=True) == 3
    pids = {Path(n).name.split("-")[1] for n in j.progress()}
    assert len(pids) == 3, "every killed run committed progress of its own first"


def test_a_failing_job_is_reported_with_its_stderr(tmp_path: Path) -> None:
    j = job(tmp_path, "import sys\nsys.exit('the job broke')\n")
    with pytest.raises(AssertionError, match="the job broke"):
        j.kill_repeatedly(2, random.Random(1))


def test_a_job_without_progress_fails_at_the_deadline_and_is_killed(tmp_path: Path) -> None:
    j = job(tmp_path, "import time\ntime.sleep(600)\n", progress_timeout=0.5)
    procs: list[subprocess.Popen[bytes]] = []
    start = j.start
    j.start = lambda env_extra=None: procs.append(start(env_extra)) or procs[-1]  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="made no progress"):
        j.kill_repeatedly(1, random.Random(1))
    assert procs and procs[0].poll() is not None


def test_a_crash_point_must_be_reached(tmp_path: Path) -> None:
    killer = job(
        tmp_path, "import os, signal\nif os.environ.get('CRASH'):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killer.crash_with({"CRASH": "1"})
    with pytest.raises(AssertionError, match="crash point was not reached"):
        killer.crash_with({})
    killer.finish()
