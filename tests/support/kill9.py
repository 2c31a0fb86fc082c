"""The kill -9 harness: a job runs in a real subprocess and is SIGKILLed at random instants after observed
progress, or kills itself at a checkpoint protocol step (``MILLSTREAM_CRASH_AT=step:nth``); it is restarted
until it finishes, and the test then verifies its committed output (exactly once).

Progress is what the job has committed so far, as a set of names (output files or objects): a kill waits
until names not seen before the start appear, so every restart recovers from a newer checkpoint.

Example::

    >>> import glob
    >>> job = KilledJob(script_command("job.py", "out/rows"), lambda: set(glob.glob("out/rows-c*")))
    >>> job.timeout
    180.0
"""

from __future__ import annotations

import glob
import json
import random
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from support.jobs import script_command, start_job, stderr_tail

__all__ = ["JsonLinesJob", "KilledJob", "script_command"]


class KilledJob:
    """One job (its command line and environment) that a test kills and restarts."""

    def __init__(
        self,
        argv: Sequence[str],
        progress: Callable[[], set[str]],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 180.0,
        progress_timeout: float = 60.0,
        poll_s: float = 0.005,
    ) -> None:
        self.argv = list(argv)
        #: What the job has committed so far (names); more of it is progress.
        self.progress = progress
        self.env = env
        #: Deadline of a run to its end (`crash_at`, `finish`).
        self.timeout = timeout
        #: Deadline of the progress a kill waits for.
        self.progress_timeout = progress_timeout
        #: How often progress is polled (reading it may cost a request).
        self.poll_s = poll_s

    def start(self, env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the job in a new process (stderr piped for failure messages)."""
        return start_job(self.argv, env=self.env, env_extra=env_extra)

    def wait_for_progress(self, before: set[str], proc: subprocess.Popen[bytes], count: int = 1) -> bool:
        """Wait until `count` new names appear since `before`; False if the job ended first. Fails when the
        deadline passes without progress."""
        deadline = time.monotonic() + self.progress_timeout
        while True:
            if len(self.progress() - before) >= count:
                return True
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(
                    f"the job made no progress for {self.progress_timeout} s: {stderr_tail(proc)}"
                )
            time.sleep(self.poll_s)  # polling a condition: the job runs in another process

    def kill_repeatedly(
        self,
        kills: int,
        rng: random.Random,
        max_delay: float = 0.01,
        *,
        attempts: int | None = None,
        progress: tuple[int, int] = (1, 1),
        rerun_finished: bool = False,
        streaming: bool = False,
    ) -> int:
        """Start the job and SIGKILL it, each time at a random instant (up to `max_delay` s) after it committed
        a random number (in `progress`) of new names, until `kills` kills hit it or `attempts` (default
        3 x `kills`) starts were made; returns how many kills hit a running job.

        A run that ends by itself must succeed; then the loop stops, unless `rerun_finished` (a completed
        bounded job computes its output afresh when started again). A `streaming` job never ends: each
        start must progress and still run when the kill comes."""
        hit = 0
        for _ in range(3 * kills if attempts is None else attempts):
            if hit >= kills:
                break
            before = self.progress()
            proc = self.start()
            if self.wait_for_progress(before, proc, rng.randint(*progress)):
                time.sleep(rng.uniform(0.0, max_delay))  # a random instant after progress: a kill, not a wait
            elif streaming:
                raise AssertionError(f"the streaming job ended: {stderr_tail(proc)}")
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                hit += proc.returncode == -signal.SIGKILL
                continue
            if streaming or proc.returncode != 0:
                raise AssertionError(f"the job ended ({proc.returncode}): {stderr_tail(proc)}")
            if not rerun_finished:
                break
        return hit

    def crash_at(self, step: int, nth: int, env_extra: dict[str, str] | None = None) -> None:
        """Run the job until it enters protocol `step` of its `nth` checkpoint and kills itself there."""
        self.crash_with({"MILLSTREAM_CRASH_AT": f"{step}:{nth}", **(env_extra or {})})

    def crash_with(self, env_extra: dict[str, str]) -> None:
        """Run the job with a crash-point setting in its environment; it must kill itself (SIGKILL)."""
        proc = self.start(env_extra)
        _, err = proc.communicate(timeout=self.timeout)
        assert proc.returncode == -signal.SIGKILL, f"the crash point was not reached: {err.decode()[-2000:]}"

    def finish(self) -> str:
        """Run the job to its end, which must succeed; returns its log (stderr)."""
        proc = self.start()
        _, err = proc.communicate(timeout=self.timeout)
        assert proc.returncode == 0, err.decode()[-3000:]
        return err.decode()


class JsonLinesJob(KilledJob):
    """A job script writing exactly-once JSON-lines files ``<out>-c*`` (the state tests' jobs)."""

    def __init__(self, script: str, args: list[str], out: str, timeout: float = 180.0) -> None:
        super().__init__(script_command(script, *args), self.committed_files, timeout=timeout)
        self.script = script
        self.args = args
        self.out = out

    def committed_files(self) -> set[str]:
        """The committed output files."""
        return set(glob.glob(self.out + "-c*"))

    def outputs(self) -> int:
        """How many output files are committed."""
        return len(self.committed_files())

    def committed_rows(self) -> list[Any]:
        """Every committed output row, in file order; fails on a torn line."""
        rows = []
        for name in sorted(glob.glob(self.out + "-c*")):
            with open(name) as f:
                for line in f:
                    assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                    rows.append(json.loads(line))
        return rows
