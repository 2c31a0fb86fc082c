"""A second SIGTERM/SIGINT cancels within a bounded time even while a synchronous DoFn blocks the loop.

The documented guarantee (README, "Signals and blocking user code"): the job ends within
CANCEL_BOUND_S of the second signal, as long as the blocking user code returns to Python between its
blocking calls (time.sleep, socket and file I/O all do). The job here blocks 300 ms per element in
batches of 50 (15 s per batch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest

from millstream.daemon.supervise import EXIT_CANCELLED

from support.jobs import cli_command, start_job, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKING_JOB = os.path.join(HERE, "blocking_job.py")
CANCEL_BOUND_S = 5.0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_cancels_a_job_blocked_in_user_code_within_the_bound(
    tmp_path: Any, signum: int
) -> None:
    marker = str(tmp_path / "started")
    log_path = str(tmp_path / "run.log")
    env = {"MARKER": marker, "OUT": str(tmp_path / "out" / "rows")}
    args = cli_command(
        "run",
        BLOCKING_JOB,
        "--batch_size=50",
        "--no_progress",
        f"--state_dir={tmp_path / 'state'}",
        f"--jobs_dir={tmp_path / 'jobs'}",
    )
    with open(log_path, "wb") as log:
        proc = start_job(args, cwd=str(tmp_path), env_extra=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(marker), "the DoFn to start blocking", proc=proc, log_path=log_path)
        proc.send_signal(signum)  # drain: waits for the batch in progress
        # two signals sent at once would merge into one pending signal: the second follows the first's receipt
        wait_for(
            lambda: "received while user code blocks" in open(log_path).read(),
            "the first signal's receipt",
            proc=proc,
            log_path=log_path,
        )
        proc.send_signal(signum)
        sent = time.monotonic()
        code = proc.wait(timeout=60)
        latency = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = open(log_path).read()
    print(f"cancel latency after the second signal: {latency:.3f} s")
    assert code == EXIT_CANCELLED, output[-3000:]
    assert latency < CANCEL_BOUND_S, f"the second signal took {latency:.1f} s\n{output[-3000:]}"
    assert "interrupting" in output
    assert "Traceback" not in output
