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

import asyncio
import glob
import random
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from support.jobs import log_tail, script_command, start_job, stderr_tail, until
from support.outputs import committed_json_rows

__all__ = ["JsonLinesJob", "KilledJob", "script_command"]


class KilledJob:
    """One job (its command line and environment) that a test kills and restarts.

    Used as a context manager, it kills on exit every process it started that still runs (also a stopped
    one), so a failing test leaves no job behind. The blocking waits have ``a``-prefixed async siblings
    for tests whose event loop must go on meanwhile (clients of a broker, a feeder task)."""

    def __init__(
        self,
        argv: Sequence[str],
        progress: Callable[[], set[str]] | None = None,
        *,
        env: dict[str, str] | None = None,
        log_path: str | None = None,
        timeout: float = 180.0,
        progress_timeout: float = 60.0,
        poll_s: float = 0.005,
    ) -> None:
        self.argv = list(argv)
        #: What the job has committed so far (names); more of it is progress. Needed by `kill_repeatedly`;
        #: a job whose progress is read asynchronously passes conditions to `until` / `akill_after` instead.
        self.progress = progress
        self.env = env
        #: Where the job's stderr is appended, across restarts (None: piped, read when a run fails).
        self.log_path = log_path
        #: Deadline of a run to its end (`crash_at`, `finish`, `drain`).
        self.timeout = timeout
        #: Deadline of the progress a kill waits for.
        self.progress_timeout = progress_timeout
        #: How often progress is polled (reading it may cost a request).
        self.poll_s = poll_s
        self._started: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> KilledJob:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(
        self, env_extra: dict[str, str] | None = None, *, stdout: int = subprocess.DEVNULL
    ) -> subprocess.Popen[bytes]:
        """Start the job in a new process (stderr piped for failure messages, or appended to `log_path`;
        `stdout=subprocess.PIPE` for a job that reports its progress there)."""
        if self.log_path is None:
            proc = start_job(self.argv, env=self.env, env_extra=env_extra, stdout=stdout)
        else:
            with open(self.log_path, "ab") as log:  # the child holds its own descriptor
                proc = start_job(self.argv, env=self.env, env_extra=env_extra, stdout=stdout, stderr=log)
        self._started.append(proc)
        return proc

    def stop(self) -> None:
        """Kill every process of this job that still runs (a stopped one is continued first)."""
        for proc in self._started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()

    def tail(self, proc: subprocess.Popen[bytes], chars: int = 3000) -> str:
        """The end of the job's log: its log file, or the piped stderr of `proc` once it ended."""
        return log_tail(self.log_path, chars) if self.log_path else stderr_tail(proc, chars)

    def log(self) -> str:
        """The whole log file of every run so far ("" without `log_path`)."""
        if self.log_path is None:
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, proc: subprocess.Popen[bytes]) -> bool:
        """SIGKILL `proc` now; True when the kill hit it running (not after it had ended by itself)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return proc.returncode == -signal.SIGKILL

    def wait_for_progress(self, before: set[str], proc: subprocess.Popen[bytes], count: int = 1) -> bool:
        """Wait until `count` new names appear since `before`; False if the job ended first. Fails when the
        deadline passes without progress."""
        progress = self._progress()
        deadline = time.monotonic() + self.progress_timeout
        while True:
            if len(progress() - before) >= count:
                return True
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.kill(proc)
                raise AssertionError(
                    f"the job made no progress for {self.progress_timeout} s: {self.tail(proc)}"
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
            before = self._progress()()
            proc = self.start()
            if self.wait_for_progress(before, proc, rng.randint(*progress)):
                time.sleep(rng.uniform(0.0, max_delay))  # a random instant after progress: a kill, not a wait
            elif streaming:
                raise AssertionError(f"the streaming job ended: {self.tail(proc)}")
            if proc.poll() is None:
                hit += self.kill(proc)
                continue
            if streaming or proc.returncode != 0:
                raise AssertionError(f"the job ended ({proc.returncode}): {self.tail(proc)}")
            if not rerun_finished:
                break
        return hit

    def crash_at(self, step: int, nth: int, env_extra: dict[str, str] | None = None) -> str:
        """Run the job until it enters protocol `step` of its `nth` checkpoint and kills itself there; returns
        the run's log."""
        return self.crash_with(_crash_env(step, nth, env_extra))

    def crash_with(self, env_extra: dict[str, str]) -> str:
        """Run the job with a crash-point setting in its environment; it must kill itself (SIGKILL). Returns
        the run's log."""
        return self._expect_end(self.start(env_extra), -signal.SIGKILL, "the crash point was not reached")

    def finish(self) -> str:
        """Run the job to its end, which must succeed; returns its log (stderr)."""
        return self._expect_end(self.start(), 0, "the job failed")

    def drain(self, proc: subprocess.Popen[bytes]) -> str:
        """Ask a running job to drain (SIGTERM), which must end it successfully; returns its log."""
        proc.send_signal(signal.SIGTERM)
        return self._expect_end(proc, 0, "the drained job failed")

    async def acrash_at(self, step: int, nth: int, env_extra: dict[str, str] | None = None) -> str:
        """`crash_at` while the event loop goes on running; returns the run's log."""
        proc = self.start(_crash_env(step, nth, env_extra))
        return await asyncio.to_thread(
            self._expect_end, proc, -signal.SIGKILL, "the crash point was not reached"
        )

    async def adrain(self, proc: subprocess.Popen[bytes]) -> str:
        """`drain` while the event loop goes on running; returns the job's log."""
        proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self._expect_end, proc, 0, "the drained job failed")

    async def aexit_code(self, proc: subprocess.Popen[bytes]) -> int:
        """The exit code of `proc`, waited for (up to `timeout`) while the event loop goes on running."""
        try:
            return await asyncio.to_thread(proc.wait, self.timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(f"the job did not end in {self.timeout} s: {self.tail(proc)}") from None

    async def until(self, predicate: Callable[[], Any], what: str, proc: subprocess.Popen[bytes]) -> Any:
        """Wait (on the event loop) until `predicate` (plain or async) holds while `proc` runs; fails naming
        `what` with the end of the log when the job ends first or `progress_timeout` passes."""
        return await until(predicate, what, self.progress_timeout, proc, self.log_path, poll_s=self.poll_s)

    async def akill_after(
        self,
        proc: subprocess.Popen[bytes],
        progressed: Callable[[], Any],
        rng: random.Random,
        max_delay: float,
    ) -> None:
        """SIGKILL a running job at a random instant (up to `max_delay` s) after `progressed` holds; the kill
        must hit it running."""
        await self.until(progressed, "progress before the kill", proc)
        # a random instant after progress: a kill, not a wait
        await asyncio.sleep(rng.uniform(0.0, max_delay))
        assert self.kill(proc), f"the job ended ({proc.returncode}) before the kill: {self.tail(proc)}"

    def _progress(self) -> Callable[[], set[str]]:
        if self.progress is None:
            raise TypeError(f"KilledJob({self.argv[:3]}...) has no `progress` to wait for")
        return self.progress

    def _expect_end(self, proc: subprocess.Popen[bytes], code: int, what: str) -> str:
        """Wait (up to `timeout`) for `proc` to end with `code`; returns its log, fails with its end."""
        try:
            _, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(f"the job did not end in {self.timeout} s: {self.tail(proc)}") from None
        log = self.log() if self.log_path else err.decode(errors="replace")
        assert proc.returncode == code, f"{what} (exit {proc.returncode}): {log[-3000:]}"
        return log


def _crash_env(step: int, nth: int, env_extra: dict[str, str] | None) -> dict[str, str]:
    """The environment that makes a job kill itself on entering `step` of its `nth` checkpoint."""
    return {"MILLSTREAM_CRASH_AT": f"{step}:{nth}", **(env_extra or {})}


class JsonLinesJob(KilledJob):
    """A job script writing exactly-once JSON-lines files ``<out>-c*`` (the state tests' jobs)."""

    def __init__(
        self, script: str, args: list[str], out: str, timeout: float = 180.0, log_path: str | None = None
    ) -> None:
        super().__init__(
            script_command(script, *args), self.committed_files, timeout=timeout, log_path=log_path
        )
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
        return committed_json_rows(self.out)
