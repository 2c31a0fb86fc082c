"""Beam's Prism runner for the tests: built from Go by tests/infra/prism/build.sh (cached), started once per
session as a job server, plus a separate SDK worker-pool process for ``--environment_type=EXTERNAL``.

Outside CI a missing Go toolchain skips these tests with the reason; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

ROOT = Path(__file__).resolve().parents[2]

# The tests' helpers, importable under a fixed name (tests are collected in importlib mode: no sys.path).
_spec = importlib.util.spec_from_file_location("_ms_prism_loading", Path(__file__).with_name("loading.py"))
assert _spec is not None and _spec.loader is not None
_loading = importlib.util.module_from_spec(_spec)
sys.modules["_ms_prism_loading"] = _loading
_spec.loader.exec_module(_loading)
BUILD = ROOT / "tests" / "infra" / "prism" / "build.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port with a deadline, not waiting for an outcome
    raise RuntimeError(f"{what} did not listen on port {port} within {deadline_s} s")


@pytest.fixture(scope="session")
def prism_binary() -> str:
    """The Prism binary for the installed apache-beam version (built on first use)."""
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, env=env)
    if proc.returncode == 3 and os.environ.get("CI") != "true":
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, f"building prism failed:\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def prism_endpoint(prism_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Prism job server: ``localhost:PORT`` for ``--job_endpoint``."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("prism") / "prism.log", "wb")
    proc = subprocess.Popen(
        [prism_binary, "--job_port", str(port), "--serve_http=false"], stdout=log, stderr=log
    )
    try:
        _wait_for_port(port, proc, "prism")
        yield f"localhost:{port}"
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A separate SDK worker-pool process (Beam's worker_pool_main): ``localhost:PORT`` for EXTERNAL mode."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("pool") / "pool.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        stdout=log,
        stderr=log,
        cwd=str(ROOT),
        # the pool starts each worker as `python -c ...` from PATH: it must be this interpreter (millstream, beam)
        env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")),
    )
    try:
        _wait_for_port(port, proc, "the worker pool")
        yield f"localhost:{port}"
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(params=["LOOPBACK", "EXTERNAL"])
def prism_flags(request: pytest.FixtureRequest, prism_endpoint: str) -> list[str]:
    """Flags that run a pipeline on Prism, with the SDK harness in-process or in the worker pool."""
    flags = [
        "--runner=PortableRunner",
        f"--job_endpoint={prism_endpoint}",
        f"--environment_type={request.param}",
    ]
    if request.param == "EXTERNAL":
        flags.append(f"--environment_config={request.getfixturevalue('worker_pool')}")
    return flags
