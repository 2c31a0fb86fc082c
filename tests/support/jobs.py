"""The one way tests launch millstream processes: a job script (`python -P job.py ...`) or the `millstream`
command, with the environment they need, and waits on conditions with deadlines.

Tests that use these runners get the `subprocess` marker automatically (tests/conftest.py).
``-P`` keeps the test's working directory off the child's path, so it imports the installed package.

Example::

    >>> out = cli("--help")
    >>> out.returncode
    0
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["DEADLINE_S", "cli", "cli_command", "run_job", "script_command", "start_job", "wait_for"]

#: The default deadline of a wait: it only turns a hang into a failure.
DEADLINE_S = 30.0
_POLL_S = 0.02


def script_command(script: str, *args: str) -> list[str]:
    """The command line of a job script run by this interpreter."""
    return [sys.executable, "-P", script, *args]


def cli_command(*args: str) -> list[str]:
    """The command line of `millstream ARGS...` run by this interpreter."""
    return [sys.executable, "-P", "-m", "millstream.daemon.cli", *args]


def _env(env: dict[str, str] | None, env_extra: dict[str, str] | None) -> dict[str, str]:
    out = dict(os.environ if env is None else env)
    out.update(env_extra or {})
    return out


def start_job(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    cwd: str | None = None,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start a process (by default its stderr is piped for failure messages, its stdout discarded); `env`
    replaces the environment, `env_extra` adds to it."""
    return subprocess.Popen(list(argv), env=_env(env, env_extra), cwd=cwd, stdout=stdout, stderr=stderr)


def run_job(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a process to completion and capture its output as text."""
    return subprocess.run(
        list(argv), env=_env(env, env_extra), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def cli(
    *args: str, cwd: str | None = None, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `millstream ARGS...` to completion."""
    return run_job(cli_command(*args), cwd=cwd, env=env, timeout=timeout)


def stderr_tail(proc: subprocess.Popen[bytes], chars: int = 3000) -> str:
    """The end of a finished process's piped stderr ("" when it was not piped)."""
    if proc.stderr is None:
        return ""
    return proc.stderr.read().decode(errors="replace")[-chars:]


def wait_for(
    predicate: Callable[[], Any],
    what: str,
    timeout: float = DEADLINE_S,
    proc: subprocess.Popen[Any] | None = None,
    log_path: str | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail naming `what` at the deadline or
    when `proc` ends first, with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            log = open(log_path).read() if log_path else ""
            raise AssertionError(
                f"the job exited ({proc.returncode}) while waiting for {what}\n{log[-3000:]}"
            )
        if time.monotonic() > deadline:
            log = open(log_path).read() if log_path else ""
            raise AssertionError(f"timed out waiting for {what}\n{log[-3000:]}")
        time.sleep(_POLL_S)  # polling a condition in another process
