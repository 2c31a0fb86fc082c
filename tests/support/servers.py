"""The test servers the fixtures start (Cloud Storage, Pub/Sub, Prism, Beam's worker pool): building their Go
binaries with tests/infra/go-build.sh, picking a port, waiting until one is ready, stopping one.

Outside CI a missing prerequisite (a Go toolchain, a JDK) skips the tests that need a server, naming why; in
CI (``CI`` set to anything but "" / "0" / "false" / "no") it fails them.

Example::

    >>> port = free_port()
    >>> 0 < port < 65536
    True
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

__all__ = [
    "GO_BUILD",
    "build_go_server",
    "free_port",
    "in_ci",
    "read_ready_line",
    "run_infra",
    "start_server",
    "terminate",
    "unavailable",
    "wait_for_port",
]

#: The one builder of the tests' Go servers (targets gcs, pubsub, prism).
GO_BUILD = Path(__file__).resolve().parents[1] / "infra" / "go-build.sh"
_BUILD_TIMEOUT_S = 900.0  # a cold module cache downloads ~600 MB of Go modules
_NO_TOOLCHAIN = 3  # go-build.sh's exit code when Go (or apache-beam, for Prism's version) is missing


def in_ci() -> bool:
    """Whether the tests run under CI, where a server's tests must run and never skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the tests of a server whose prerequisite is missing locally; fail them in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: these tests must run, they may not be skipped)", pytrace=False)
    pytest.skip(reason)


def run_infra(
    script: Path, *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a test-infrastructure shell script (a builder, an installer, the broker's control script) to its
    end, its output captured as text; the caller judges the exit code (each script documents its own)."""
    return subprocess.run(
        ["bash", str(script), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def start_server(
    argv: Sequence[str],
    log: IO[bytes],
    *,
    ready_line: bool = False,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a test server with its output appended to `log`.

    With `ready_line` the server prints ``... listening on HOST:PORT`` on stdout (read it with
    `read_ready_line`) and is given ``-exit-on-stdin-eof``'s pipe: stdin stays open in this process, so the
    server exits when pytest dies. It runs in its own session, so a Ctrl-C in the terminal does not reach it
    before the fixtures' teardown stops it."""
    kwargs: dict[str, Any] = (
        {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "start_new_session": True}
        if ready_line
        else {"stdout": log}
    )
    return subprocess.Popen(list(argv), stderr=log, env=env, cwd=cwd, **kwargs)


def build_go_server(target: str, what: str) -> Path:
    """Build (or reuse from the cache) the binary of go-build.sh `target`; skip the test without a Go
    toolchain locally, fail it in CI or when the build fails. `what` names the server in messages."""
    try:
        proc = run_infra(
            GO_BUILD,
            target,
            timeout=_BUILD_TIMEOUT_S,
            env=dict(os.environ, PYTHON=sys.executable),  # Prism's version is this interpreter's apache-beam
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building {what} took over {_BUILD_TIMEOUT_S:.0f} s", pytrace=False)
    if proc.returncode == _NO_TOOLCHAIN:
        unavailable(f"cannot build {what} (CI must provide Go >= 1.26): {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"building {what} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    binary = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(binary, os.X_OK):
        pytest.fail(f"go-build.sh {target} reported {binary}, which is not an executable", pytrace=False)
    return binary


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (a server started next binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_ready_line(proc: subprocess.Popen[bytes], deadline: float) -> str | None:
    """Wait for the server's first stdout line, ``... listening on HOST:PORT``; None when the process exits,
    the deadline (a `time.monotonic()` value) passes, or the line says something else."""
    assert proc.stdout is not None
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not sel.select(timeout=min(remaining, 0.5)):
                if proc.poll() is not None:
                    return None
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:  # stdout closed: the process is exiting
                proc.wait()
                return None
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode()
    return line if "listening on " in line else None


def wait_for_port(
    port: int, what: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until 127.0.0.1:`port` accepts connections; fails naming `what` at the deadline or when `proc`
    exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s") from exc
        time.sleep(0.05)  # polling a port with a deadline


def terminate(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a server: signal it, wait, escalate to SIGKILL when it lingers; close the pipes we hold."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
