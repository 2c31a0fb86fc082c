"""Beam's Prism runner for the tests: built from Go by tests/infra/go-build.sh prism (cached), started once per
session as a job server, plus a separate SDK worker-pool process for ``--environment_type=EXTERNAL``.

Outside CI a missing Go toolchain skips these tests with the reason; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

from support.servers import (  # noqa: E402
    build_go_server,
    free_port,
    start_server,
    terminate,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prism_binary() -> str:
    """The Prism binary for the installed apache-beam version (built on first use)."""
    return str(build_go_server("prism", "Beam's Prism runner"))


@pytest.fixture(scope="session")
def prism_endpoint(prism_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Prism job server: ``localhost:PORT`` for ``--job_endpoint``."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("prism") / "prism.log", "wb")
    proc = start_server([prism_binary, "--job_port", str(port), "--serve_http=false"], log)
    try:
        wait_for_port(port, "prism", proc=proc)
        yield f"localhost:{port}"
    finally:
        terminate(proc)
        log.close()


@pytest.fixture(scope="session")
def worker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A separate SDK worker-pool process (Beam's worker_pool_main): ``localhost:PORT`` for EXTERNAL mode."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("pool") / "pool.log", "wb")
    proc = start_server(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
        log,
        cwd=str(ROOT),
        # the pool starts each worker as `python -c ...` from PATH: it must be this interpreter (millstream, beam)
        env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")),
    )
    try:
        wait_for_port(port, "the worker pool", proc=proc)
        yield f"localhost:{port}"
    finally:
        terminate(proc)
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
