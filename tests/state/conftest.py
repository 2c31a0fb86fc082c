"""Fixtures for the state tests: one opener per backend kind, reopening the same store each call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from millstream.state import MemoryBackend, RocksDBBackend, StateBackend

Opener = Callable[[], StateBackend]


class Stores:
    """Opens (and reopens) one store of a given kind; closes whatever is still open at teardown."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.path = str(root / "db")
        self.data: dict[bytes, bytes] = {}
        self.opened: list[StateBackend] = []

    def open(self) -> StateBackend:
        backend: StateBackend
        if self.kind == "memory":
            backend = MemoryBackend(self.data, path="memory-store")
        else:
            backend = RocksDBBackend(self.path)
        self.opened.append(backend)
        return backend

    def scratch(self, name: str = "spill") -> StateBackend:
        backend: StateBackend
        if self.kind == "memory":
            backend = MemoryBackend(path=f"memory-{name}")
        else:
            backend = RocksDBBackend.scratch(self.root / name)
        self.opened.append(backend)
        return backend

    def close_all(self) -> None:
        for backend in self.opened:
            backend.close()


@pytest.fixture(params=["memory", "rocksdb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    s = Stores(request.param, tmp_path)
    yield s
    s.close_all()
