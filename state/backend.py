"""The durable keyed-state protocol and its in-memory implementation.

A backend maps ``bytes`` keys to ``bytes`` values, ordered by key (plain unsigned byte order), so
prefix and range scans visit keys in order. Writes that must land together (a checkpoint) go through
:meth:`StateBackend.write_batch`, which is atomic: after a crash either the whole batch is there or
none of it. :meth:`StateBackend.snapshot` gives a read view frozen at the time of the call.

Two implementations: :class:`MemoryBackend` here (tests, non-durable runs, spill area of small
jobs) and :class:`millstream.state.rocks.RocksDBBackend` (durable, one directory per job).
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Protocol, runtime_checkable

from .errors import StateClosedError
from .format import FORMAT_KEY, check_format, format_record
from .keys import prefix_end

__all__ = ["ReadView", "StateBackend", "MemoryBackend"]


@runtime_checkable
class ReadView(Protocol):
    """A consistent, read-only view of a backend (see :meth:`StateBackend.snapshot`)."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the view, or None."""
        ...

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        ...

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs with ``start <= key < end`` (no upper bound if None), in order."""
        ...

    def close(self) -> None:
        """Release the view (idempotent)."""
        ...


@runtime_checkable
class StateBackend(Protocol):
    """Durable keyed state: point reads/writes, ordered scans, atomic batches, snapshots.

    Scans are consistent as of the moment the iterator is created: writes made while iterating are
    not seen. Keys starting with ``millstream.state.keys.META`` (0x00) are reserved.
    """

    @property
    def path(self) -> str:
        """Where the store lives (a directory, or a label for in-memory stores); used in errors."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Set one key (not synced; use :meth:`write_batch` for durable, atomic groups)."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove one key (absent keys are fine)."""
        ...

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        ...

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs with ``start <= key < end`` (no upper bound if None), in order."""
        ...

    def delete_prefix(self, prefix: bytes) -> None:
        """Remove every key starting with ``prefix`` (not part of any batch; for scratch areas)."""
        ...

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), sync: bool = False
    ) -> None:
        """Apply all ``deletes``, then all ``puts``, atomically; ``sync`` waits for the disk.

        Both iterables are consumed before anything becomes visible; if either raises, nothing is
        written. A key in both ends up with its put value.
        """
        ...

    def snapshot(self) -> ReadView:
        """A read view of the current contents, unaffected by later writes; close it when done."""
        ...

    def close(self) -> None:
        """Release the store (idempotent); later calls raise StateClosedError."""
        ...


class _SortedKeys:
    """Sorted key index of a dict, maintained lazily: new keys are sorted in when a scan needs them."""

    __slots__ = ("keys", "pending", "stale")

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.keys: list[bytes] = sorted(data)
        self.pending: list[bytes] = []
        self.stale = 0

    def current(self, data: dict[bytes, bytes]) -> list[bytes]:
        if self.pending or self.stale:
            # Two sorted runs: timsort merges them in linear time; then drop duplicates and keys
            # deleted since (a key deleted and re-added is in both runs).
            merged = self.keys + sorted(self.pending) if self.pending else self.keys
            merged.sort()
            out: list[bytes] = []
            prev = None
            for k in merged:
                if k != prev and k in data:
                    out.append(k)
                prev = k
            self.keys = out
            self.pending = []
            self.stale = 0
        return self.keys


def _range_items(
    data: dict[bytes, bytes], keys: list[bytes], start: bytes, end: bytes | None
) -> list[tuple[bytes, bytes]]:
    lo = bisect.bisect_left(keys, start)
    hi = len(keys) if end is None else bisect.bisect_left(keys, end)
    # Materialised so the result is a consistent cut even if the caller writes while iterating.
    return [(k, data[k]) for k in keys[lo:hi]]


def _guarded(
    items: list[tuple[bytes, bytes]], closed: Callable[[], bool], path: str
) -> Iterator[tuple[bytes, bytes]]:
    # Same contract as RocksDB scans: once the store (or view) is closed, an open scan raises.
    for item in items:
        if closed():
            raise StateClosedError(path, "the store was closed during a scan")
        yield item


class _MemoryView:
    """Snapshot of a :class:`MemoryBackend`: a private copy of its contents (O(n) to take)."""

    def __init__(self, path: str, data: dict[bytes, bytes], keys: list[bytes]) -> None:
        self._path = path
        self._data: dict[bytes, bytes] | None = dict(data)
        self._keys = list(keys)

    def _live(self) -> dict[bytes, bytes]:
        if self._data is None:
            raise StateClosedError(self._path, "the snapshot is closed")
        return self._data

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in the snapshot, or None."""
        return self._live().get(key)

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Snapshot entries under ``prefix``, in key order."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Snapshot entries in ``[start, end)``, in key order."""
        items = _range_items(self._live(), self._keys, start, end)
        return _guarded(items, lambda: self._data is None, self._path)

    def close(self) -> None:
        """Drop the copy."""
        self._data = None

    def __enter__(self) -> _MemoryView:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class MemoryBackend:
    """In-memory :class:`StateBackend`: a dict plus a lazily sorted key index.

    Passing the same ``data`` dict to a new instance after :meth:`close` behaves like reopening a
    store (the format record is checked the same way as on disk), which lets tests and non-durable
    runs exercise restore paths. Only one open backend may use a dict at a time. Scans after writes
    of new keys re-sort the index (linear merge); snapshots copy the dict.
    """

    def __init__(self, data: dict[bytes, bytes] | None = None, *, path: str = ":memory:") -> None:
        self._path = path
        self._data: dict[bytes, bytes] = {} if data is None else data
        if check_format(path, self._data.get(FORMAT_KEY), lambda: not self._data):
            self._data[FORMAT_KEY] = format_record()
        self._index = _SortedKeys(self._data)
        self._closed = False
        self._views: weakref.WeakSet[_MemoryView] = weakref.WeakSet()

    @property
    def path(self) -> str:
        """The label given at construction (``":memory:"`` by default)."""
        return self._path

    @property
    def data(self) -> dict[bytes, bytes]:
        """The underlying dict (pass it to a new MemoryBackend to "reopen")."""
        return self._data

    def _check(self) -> None:
        if self._closed:
            raise StateClosedError(self._path, "the store is closed")

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        if self._closed:
            self._check()
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Set one key."""
        self._check()
        if key not in self._data:
            self._index.pending.append(key)
        self._data[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        """Remove one key."""
        self._check()
        if self._data.pop(key, None) is not None:
            self._index.stale += 1

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in key order (a consistent cut taken now)."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Entries in ``[start, end)`` in key order (a consistent cut taken now)."""
        self._check()
        items = _range_items(self._data, self._index.current(self._data), start, end)
        return _guarded(items, lambda: self._closed, self._path)

    def delete_prefix(self, prefix: bytes) -> None:
        """Remove every key under ``prefix``."""
        self._check()
        keys = _range_items(self._data, self._index.current(self._data), prefix, prefix_end(prefix))
        for key, _ in keys:
            del self._data[key]
            self._index.stale += 1

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), sync: bool = False
    ) -> None:
        """Apply ``deletes`` then ``puts`` atomically (inputs are fully read before applying)."""
        self._check()
        dels = list(deletes)
        sets = [(k, bytes(v)) for k, v in puts]
        data = self._data
        for key in dels:
            if data.pop(key, None) is not None:
                self._index.stale += 1
        pending = self._index.pending
        for key, value in sets:
            if key not in data:
                pending.append(key)
            data[key] = value

    def snapshot(self) -> _MemoryView:
        """A private copy of the current contents (closed with the backend)."""
        self._check()
        view = _MemoryView(self._path, self._data, self._index.current(self._data))
        self._views.add(view)
        return view

    def close(self) -> None:
        """Mark closed (open scans and snapshots too); the dict stays available for a reopen."""
        self._closed = True
        for view in list(self._views):
            view.close()
        self._views.clear()

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
