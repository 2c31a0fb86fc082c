"""Real Cloud Storage API server fixtures: fake-gcs-server (v1.56.1, in memory) on loopback.

`gcs_server` (session) builds `tests/infra/gcs` once (`tests/infra/go-build.sh gcs`: cached under
MILLSTREAM_CACHE by content hash), runs it on a free 127.0.0.1 port and points google-cloud-storage at it through
STORAGE_EMULATOR_HOST (inherited by subprocesses). `gcs_bucket` (function) gives each test a fresh bucket.
In CI (CI=true) a missing Go toolchain fails the tests instead of skipping them.
"""

from __future__ import annotations

import atexit
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from support.servers import build_go_server, read_ready_line, start_server, terminate

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
        proc = start_server([str(self.binary), "-exit-on-stdin-eof"], self._log, ready_line=True)
        line = read_ready_line(proc, time.monotonic() + _READY_TIMEOUT_S)
        if line is None:
            terminate(proc)
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
            terminate(proc)
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
    binary = build_go_server("gcs", "the GCS test server (tests/infra/gcs)")
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
