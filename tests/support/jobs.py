"""The one way tests launch millstream processes: a job script (`python -P job.py ...`) or the `millstream`
command, with the environment they need, and waits on conditions with deadlines.

Tests that reach these runners (directly, through a fixture or a helper) get the `subprocess` marker
automatically (tests/conftest.py, support/markers.py).
``-P`` keeps the test's working directory off the child's path, so it imports the installed package.

Example::

    >>> out = cli("--help")
    >>> out.returncode
    0
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEADLINE_S",
    "cli",
    "cli_command",
    "code_command",
    "installed_cli_command",
    "log_tail",
    "run_job",
    "run_on_terminal",
    "script_command",
    "start_job",
    "until",
    "wait_for",
]

#: The default deadline of a wait: it only turns a hang into a failure.
DEADLINE_S = 30.0
_POLL_S = 0.02


def script_command(script: str, *args: str) -> list[str]:
    """The command line of a job script run by this interpreter."""
    return [sys.executable, "-P", script, *args]


def code_command(code: str, *args: str) -> list[str]:
    """The command line of a job given as source text (`python -P -c CODE ARGS...`)."""
    return [sys.executable, "-P", "-c", code, *args]


def cli_command(*args: str) -> list[str]:
    """The command line of `millstream ARGS...` run by this interpreter."""
    return [sys.executable, "-P", "-m", "millstream.daemon.cli", *args]


def installed_cli_command(*args: str) -> list[str]:
    """The command line of the installed `millstream` script (the console entry point beside this
    interpreter) with ARGS: what a user types."""
    return [str(Path(sys.executable).with_name("millstream")), *args]


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
    preexec_fn: Callable[[], Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a process to completion and capture its output as text; `preexec_fn` runs in the child before
    it starts (e.g. to set a resource limit)."""
    return subprocess.run(
        list(argv),
        env=_env(env, env_extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def cli(
    *args: str,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run `millstream ARGS...` to completion."""
    return run_job(cli_command(*args), cwd=cwd, env=env, env_extra=env_extra, timeout=timeout)


def run_on_terminal(
    argv: Sequence[str],
    size: tuple[int, int],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 60.0,
) -> str:
    """Run a process to its end, which must succeed, with its stderr on a pseudo-terminal of `size` (rows,
    columns); returns everything it drew there."""
    master, slave = pty.openpty()
    rows, columns = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = start_job(argv, env=env, cwd=cwd, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    drawn = b"".join(chunks).decode(errors="replace")
    assert proc.wait(timeout=timeout) == 0, f"exit {proc.returncode}: {drawn[-3000:]}"
    return drawn


def stderr_tail(proc: subprocess.Popen[bytes], chars: int = 3000) -> str:
    """The end of a finished process's piped stderr ("" when it was not piped)."""
    if proc.stderr is None:
        return ""
    return proc.stderr.read().decode(errors="replace")[-chars:]


def log_tail(path: str | None, chars: int = 3000) -> str:
    """The end of a log file ("" when there is none yet)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


def _failure(
    what: str, deadline: float, proc: subprocess.Popen[Any] | None, log_path: str | None
) -> AssertionError | None:
    """The failure of a wait that has not succeeded yet: `proc` ended, or the deadline passed."""
    if proc is not None and proc.poll() is not None:
        return AssertionError(
            f"the job exited ({proc.returncode}) while waiting for {what}\n{log_tail(log_path)}"
        )
    if time.monotonic() > deadline:
        return AssertionError(f"timed out waiting for {what}\n{log_tail(log_path)}")
    return None


def wait_for(
    predicate: Callable[[], Any],
    what: str,
    timeout: float = DEADLINE_S,
    proc: subprocess.Popen[Any] | None = None,
    log_path: str | None = None,
    poll_s: float = _POLL_S,
) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail naming `what` at the deadline or
    when `proc` ends first, with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if failure := _failure(what, deadline, proc, log_path):
            raise failure
        time.sleep(poll_s)  # polling a condition in another process


async def until(
    predicate: Callable[[], Any],
    what: str,
    timeout: float = DEADLINE_S,
    proc: subprocess.Popen[Any] | None = None,
    log_path: str | None = None,
    poll_s: float = _POLL_S,
) -> Any:
    """`wait_for` on the running event loop, which goes on running meanwhile (a job or a feeder task on it);
    `predicate` may be a coroutine function (a condition read with an async client)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if failure := _failure(what, deadline, proc, log_path):
            raise failure
        await asyncio.sleep(poll_s)  # polling a condition of another process or task
