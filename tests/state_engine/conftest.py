"""Helpers shared by the state tests. The kill -9 harness: a job script runs in a real subprocess writing exactly-once
JSON-lines files; it is SIGKILLed at random instants after observed progress or at a checkpoint protocol step
(``MILLSTREAM_CRASH_AT``), restarted until it finishes, and its committed rows are read back for a verifier."""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
import pytest


class KilledJob:
    """One job (script + arguments + its output prefix) that tests kill and restart."""

    def __init__(self, script: str, args: list[str], out: str, timeout: float = 180.0) -> None:
        self.script = script
        self.args = args
        self.out = out
        self.timeout = timeout

    def start(self, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the job in a new process."""
        env = dict(os.environ)
        env.update(env_extra or {})
        return subprocess.Popen([sys.executable, "-P", self.script, *self.args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def outputs(self) -> int:
        """How many output files are committed."""
        return len(glob.glob(self.out + "-c*"))

    def wait_for_new_output(self, before: int, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
        """Wait until the job commits another output file (progress since it started), or ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outputs() > before:
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.005)  # polling a condition: the job runs in another process
        return False

    def kill_repeatedly(self, kills: int, rng: random.Random, max_delay: float = 0.01) -> int:
        """Start the job and SIGKILL it up to `kills` times, each at a random instant after it made progress;
        returns how many kills hit a running job (fewer if it finished first)."""
        hit = 0
        attempts = 0
        while hit < kills and attempts < 3 * kills:
            attempts += 1
            before = self.outputs()
            proc = self.start()
            if self.wait_for_new_output(before, proc):
                time.sleep(rng.uniform(0.0, max_delay))  # a random instant after progress: a kill, not a wait
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                hit += 1
            elif proc.returncode != 0:
                raise AssertionError(f"job failed: {proc.stderr.read().decode()[-3000:] if proc.stderr else ''}")
            else:
                break  # finished before the kill
        return hit

    def crash_at(self, step: int, nth: int) -> None:
        """Run the job until it enters protocol `step` of its `nth` checkpoint and kills itself there."""
        proc = self.start({"MILLSTREAM_CRASH_AT": f"{step}:{nth}"})
        _, err = proc.communicate(timeout=self.timeout)
        assert proc.returncode == -signal.SIGKILL, f"the crash point was not reached: {err.decode()[-2000:]}"

    def finish(self) -> str:
        """Run the job to its end; returns its log (stderr)."""
        proc = self.start()
        _, err = proc.communicate(timeout=self.timeout)
        assert proc.returncode == 0, err.decode()[-3000:]
        return err.decode()

    def committed_rows(self) -> list[Any]:
        """Every committed output row, in file order; fails on a torn line."""
        rows = []
        for name in sorted(glob.glob(self.out + "-c*")):
            with open(name) as f:
                for line in f:
                    assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                    rows.append(json.loads(line))
        return rows


@pytest.fixture
def killed_job() -> type[KilledJob]:
    """The `KilledJob` harness."""
    return KilledJob



def _append_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


async def _until(cond: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.01)  # polling a condition of the running job


@pytest.fixture
def append_jsonl() -> Any:
    """``append_jsonl(path, rows)``: append rows to a JSON-lines file (input a watching source picks up)."""
    return _append_jsonl


@pytest.fixture
def until() -> Any:
    """``await until(cond, what)``: wait until `cond()` holds in a job running on this event loop; fails
    naming `what` after 60 s."""
    return _until
