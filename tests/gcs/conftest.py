"""Real Cloud Storage API server fixtures: fake-gcs-server (v1.56.1, in memory) on loopback.

`gcs_server` (session) builds `tests/infra/gcs` once (cached under MILLSTREAM_CACHE by content hash, like the
Pub/Sub server), runs it on a free 127.0.0.1 port and points google-cloud-storage at it through
STORAGE_EMULATOR_HOST (inherited by subprocesses). `gcs_bucket` (function) gives each test a fresh bucket.
In CI (CI=true) a missing Go toolchain fails the tests instead of skipping them.
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

_BUILD_SCRIPT = Path(__file__).resolve().parent.parent / "infra" / "gcs" / "build.sh"
_BUILD_TIMEOUT_S = 900.0
_READY_TIMEOUT_S = 60.0


class GcsServer:
    """A running gcs-server process; `url` is what STORAGE_EMULATOR_HOST is set to."""

    def __init__(self, binary: Path, log_path: Path) -> None:
        self.binary = binary
        self.log_path = log_path
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start on a free port and wait for the ready line."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        proc = subprocess.Popen(
            [str(self.binary), "-exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        line = _read_ready_line(proc, time.monotonic() + _READY_TIMEOUT_S)
        if line is None:
            _terminate(proc)
            raise RuntimeError(
                f"gcs-server did not become ready; log {self.log_path}:\n"
                f"{self.log_path.read_text(errors='replace')[-4000:]}"
            )
        self._proc = proc
        self.url = "http://" + line.rsplit(" ", 1)[-1]

    def close(self) -> None:
        """Stop the server; safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self) -> Any:
        """A google-cloud-storage client bound to this server."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="millstream-test", credentials=AnonymousCredentials())


class GcsBucket:
    """A fresh bucket: `name`, `url(path)` -> gs://name/path, `put`, `get`, `names`."""

    def __init__(self, server: GcsServer) -> None:
        self.client = server.client()
        self.name = f"b-{uuid.uuid4().hex[:12]}"
        self.bucket = self.client.create_bucket(self.name)

    def url(self, path: str = "") -> str:
        """gs://BUCKET/path."""
        return f"gs://{self.name}/{path}"

    def put(self, name: str, data: bytes | str) -> int:
        """Upload an object; returns its generation."""
        blob = self.bucket.blob(name)
        blob.upload_from_string(data.encode() if isinstance(data, str) else data)
        return int(blob.generation)

    def get(self, name: str) -> bytes:
        """An object's bytes."""
        return bytes(self.bucket.blob(name).download_as_bytes())

    def names(self, prefix: str = "") -> list[str]:
        """Every object name under prefix, sorted."""
        return sorted(b.name for b in self.client.list_blobs(self.name, prefix=prefix))


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """The session's gcs-server with STORAGE_EMULATOR_HOST pointing at it; always stopped at the end."""
    binary = _build_server()
    server = GcsServer(binary, tmp_path_factory.mktemp("gcs") / "gcs-server.log")
    atexit.register(server.close)
    mp = pytest.MonkeyPatch()
    from millstream.connectors.files import schemes

    try:
        server.start()
        mp.setenv("STORAGE_EMULATOR_HOST", server.url)
        schemes._INSTANCES.clear()  # a client made before points elsewhere
        yield server
    finally:
        server.close()
        mp.undo()
        schemes._INSTANCES.clear()
        atexit.unregister(server.close)


@pytest.fixture
def gcs_bucket(gcs_server: GcsServer) -> GcsBucket:
    """A fresh, uniquely named bucket on the session's server."""
    return GcsBucket(gcs_server)


def _build_server() -> Path:
    """Build (or reuse) the server binary; skip without Go locally, fail without it in CI."""
    if shutil.which("go") is None:
        msg = "Go toolchain not found on PATH: needed to build the GCS test server (tests/infra/gcs)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; CI must provide Go >= 1.26", pytrace=False)
        pytest.skip(msg)
    try:
        proc = subprocess.run(
            ["bash", str(_BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the GCS test server took over {_BUILD_TIMEOUT_S:.0f}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"building the GCS test server failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    binary = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(binary, os.X_OK):
        pytest.fail(f"build.sh reported {binary}, which is not an executable", pytrace=False)
    return binary


def _read_ready_line(proc: subprocess.Popen[bytes], deadline: float) -> str | None:
    """Wait for the "listening on" line; None if the process exits (or times out) first."""
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
            if not chunk:
                proc.wait()
                return None
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode()
    return line if "listening on " in line else None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, escalate to SIGKILL; close the pipes."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
