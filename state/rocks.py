"""RocksDB :class:`~millstream.state.backend.StateBackend` on rocksdict (raw mode: bytes in, bytes out).

One store directory per job. Notes on rocksdict 0.3.29 that shaped this module:

* Every RocksDB failure surfaces as a plain ``Exception`` ("Corruption: ...", "IO error: ...");
  all calls here translate them into :mod:`millstream.state.errors` types naming the path.
* ``Rdict.items()`` stops silently when the underlying iterator hits an error (it never checks the
  iterator status), which would turn a corrupt block into silently missing state. Scans here drive
  ``RdictIter`` by hand and check ``status()`` at the end.
* ``Snapshot.items()/iter()`` do not apply the snapshot (the read options are rebuilt without it),
  so a rocksdict snapshot only isolates point reads. :meth:`RocksDBBackend.snapshot` therefore pins
  a RocksDB *iterator* instead: an iterator reads one implicit snapshot taken at its creation, for
  every seek, which gives a consistent view for both gets and scans.

Durability: writes use the WAL; ``write_batch(sync=True)`` fsyncs it, which also makes every earlier
unsynced write durable. ``RocksDBBackend.scratch(path)`` opens a throw-away store (WAL off, deleted
on open and on close) for the write-back cache's spill area.
"""

from __future__ import annotations

import os
import shutil
import weakref
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from .errors import StateClosedError, StateCorruptedError, StateError, StateFormatError, StateIOError
from .errors import translate_rocksdb_error as _translate
from .format import FORMAT_KEY, check_format, format_record
from .keys import prefix_end

__all__ = ["RocksDBBackend"]

# Files whose presence without CURRENT means a damaged store rather than an empty directory.
_DATA_FILE_SUFFIXES = (".sst", ".log", ".blob")
# Files RocksDB or rocksdict may leave in a directory before CURRENT exists.
_HARMLESS = {"LOCK", "IDENTITY", "rocksdict-config.json"}


def _looks_like_data(name: str) -> bool:
    return name.startswith("MANIFEST-") or (name[:1].isdigit() and name.endswith(_DATA_FILE_SUFFIXES))


class _Cursor:
    """Holds a RocksDB iterator so that :meth:`RocksDBBackend.close` can release it.

    A live rocksdict iterator keeps the database (and its LOCK file) open after ``close()``; the
    backend therefore tracks every cursor and drops their iterators before closing.
    """

    __slots__ = ("it", "__weakref__")

    def __init__(self, it: Any) -> None:
        self.it: Any = it


def _drain(cursor: _Cursor, end: bytes | None, path: str) -> Iterator[tuple[bytes, bytes]]:
    # `end` is enforced by the iterator's read options; checking it here as well keeps the loop
    # correct should a cursor have no upper bound. The iterator is never kept in a local across a
    # `yield` or into a traceback, so closing the backend (or dropping the error) really releases
    # it: a live rocksdict iterator keeps the whole database and its LOCK open.
    it: Any = None
    try:
        while True:
            it = cursor.it
            if it is None:
                raise StateClosedError(path, "the store was closed during a scan")
            if not it.valid():
                it.status()
                cursor.it = it = None
                return
            key = it.key()
            if end is not None and key >= end:
                cursor.it = it = None
                return
            value = it.value()
            it.next()
            it = None
            yield key, value
    except StateError:
        cursor.it = it = None
        raise
    except Exception as exc:
        cursor.it = it = None
        raise _translate(exc, path) from exc


class _RocksView:
    """Consistent read view: one RocksDB iterator pinned at creation, re-seeked for every read.

    Scans read in chunks and re-seek between chunks, so several scans (and gets) may be
    interleaved on one view; a view is meant for one thread.
    """

    _CHUNK = 256

    def __init__(self, backend: RocksDBBackend, cursor: _Cursor) -> None:
        self._backend = backend
        self._cursor = cursor

    def _live(self) -> Any:
        it = self._cursor.it
        if it is None:
            raise StateClosedError(self._backend.path, "the snapshot (or its store) is closed")
        return it

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` as of the snapshot, or None."""
        it = self._live()
        try:
            it.seek(key)
            if it.valid():
                value: bytes | None = it.value() if it.key() == key else None
                return value
            it.status()
            return None
        except Exception as exc:
            it = None  # do not let the traceback keep the iterator (and the store) alive
            raise _translate(exc, self._backend.path) from exc

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Snapshot entries under ``prefix``, in key order."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Snapshot entries in ``[start, end)``, in key order."""
        self._live()
        return self._scan(start, end)

    def _scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        path = self._backend.path
        position = start
        while True:
            it: Any = self._live()
            chunk: list[tuple[bytes, bytes]] = []
            try:
                it.seek(position)
                while it.valid() and len(chunk) < self._CHUNK:
                    key = it.key()
                    if end is not None and key >= end:
                        break
                    chunk.append((key, it.value()))
                    it.next()
                else:
                    if not it.valid():
                        it.status()
            except Exception as exc:
                it = None
                raise _translate(exc, path) from exc
            it = None
            yield from chunk
            if len(chunk) < self._CHUNK:
                return
            position = chunk[-1][0] + b"\x00"  # the smallest key after the last one read

    def close(self) -> None:
        """Release the pinned iterator (and with it the memtables/files it holds)."""
        self._cursor.it = None

    def __enter__(self) -> _RocksView:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RocksDBBackend:
    """Durable :class:`~millstream.state.backend.StateBackend` in one RocksDB directory.

    ``create``: make the store when missing (else :class:`StateIOError` with ENOENT).
    ``read_only``: open without taking the lock (inspection while a job runs); writes fail.
    ``verify``: read every entry once at open so damaged blocks fail now, not at first use.
    ``block_cache_bytes`` / ``write_buffer_bytes`` bound RocksDB's own memory.

    Opening checks the format record (:mod:`millstream.state.format`) and fails with a typed error
    naming the path: :class:`StateCorruptedError` (damaged files), :class:`StateFormatError`
    (foreign store or unknown version), :class:`StateLockedError` (in use), :class:`StateIOError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        read_only: bool = False,
        verify: bool = False,
        block_cache_bytes: int = 64 << 20,
        write_buffer_bytes: int = 32 << 20,
        _scratch: bool = False,
    ) -> None:
        self._path = os.path.abspath(os.fspath(path))
        self._scratch = _scratch
        self._db: Any = None
        self._cursors: weakref.WeakSet[_Cursor] = weakref.WeakSet()
        self._check_directory(create, read_only)
        options = Options(raw_mode=True)
        options.create_if_missing(create and not read_only)
        options.set_keep_log_file_num(2)
        options.set_max_background_jobs(2)
        options.set_write_buffer_size(write_buffer_bytes)
        options.set_compression_type(DBCompressionType.lz4())
        table = BlockBasedOptions()
        table.set_block_cache(Cache(block_cache_bytes))
        table.set_bloom_filter(10, False)  # cheap negative point reads (cache misses, spill probes)
        options.set_block_based_table_factory(table)
        access = AccessType.read_only(False) if read_only else AccessType.read_write()
        try:
            self._db = Rdict(self._path, options, access_type=access)
        except Exception as exc:
            raise _translate(exc, self._path) from exc
        self._write_options = WriteOptions()
        self._write_options_sync = WriteOptions()
        self._write_options_sync.sync = True
        if _scratch:
            # Scratch contents never need to survive a crash; RocksDB rejects sync without a WAL.
            self._write_options.disable_wal = True  # type: ignore[assignment,method-assign]
            self._write_options_sync = self._write_options
        try:
            self._check_format(read_only)
            if verify:
                for _ in self.scan_range(b"", None):
                    pass
        except BaseException:
            self.close()
            raise

    @classmethod
    def scratch(cls, path: str | os.PathLike[str], **kwargs: Any) -> RocksDBBackend:
        """A fresh throw-away store at ``path`` (any previous one there is deleted; WAL off).

        Used as the write-back cache's spill area: its contents never need to survive a crash,
        and :meth:`close` deletes the directory.
        """
        target = os.path.abspath(os.fspath(path))
        cls._destroy_dir(target)
        return cls(target, create=True, _scratch=True, **kwargs)

    @staticmethod
    def _destroy_dir(path: str) -> None:
        if not os.path.exists(path):
            return
        entries = os.listdir(path)
        if (
            entries
            and "CURRENT" not in entries
            and not all(
                _looks_like_data(e) or e in _HARMLESS or e.startswith(("LOG", "OPTIONS-")) for e in entries
            )
        ):
            raise StateFormatError(path, "refusing to delete a directory that is not a RocksDB store")
        shutil.rmtree(path)

    @property
    def path(self) -> str:
        """The store directory (absolute)."""
        return self._path

    def _check_directory(self, create: bool, read_only: bool) -> None:
        path = self._path
        if os.path.exists(os.path.join(path, "CURRENT")):
            return
        if os.path.isdir(path):
            entries = os.listdir(path)
            if any(_looks_like_data(e) for e in entries):
                raise StateCorruptedError(path, "CURRENT file missing but RocksDB data files present")
            foreign = [e for e in entries if e not in _HARMLESS and not e.startswith(("LOG", "OPTIONS-"))]
            if foreign:
                raise StateFormatError(
                    path, f"not a state store: directory holds other files ({', '.join(sorted(foreign)[:3])})"
                )
        elif os.path.exists(path):
            raise StateFormatError(path, "not a state store: path is not a directory")
        if read_only or not create:
            raise StateIOError(path, "no state store here", errno=2)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StateIOError(
                path, f"cannot create store directory: {exc.strerror}", errno=exc.errno
            ) from exc

    def _check_format(self, read_only: bool) -> None:
        record = self.get(FORMAT_KEY)

        def empty() -> bool:
            return next(iter(self.scan_range(b"", None)), None) is None

        if check_format(self._path, record, empty) and not read_only:
            self.write_batch([(FORMAT_KEY, format_record())], sync=not self._scratch)

    def _live(self) -> Any:
        db = self._db
        if db is None:
            raise StateClosedError(self._path, "the store is closed")
        return db

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        try:
            value: bytes | None = self._db.get(key)
            return value
        except Exception as exc:
            if self._db is None:
                raise StateClosedError(self._path, "the store is closed") from exc
            raise _translate(exc, self._path) from exc

    def put(self, key: bytes, value: bytes) -> None:
        """Set one key (WAL, no fsync)."""
        try:
            self._db.put(key, value, self._write_options)
        except Exception as exc:
            self._live()
            raise _translate(exc, self._path) from exc

    def delete(self, key: bytes) -> None:
        """Remove one key."""
        try:
            self._db.delete(key, self._write_options)
        except Exception as exc:
            self._live()
            raise _translate(exc, self._path) from exc

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in key order, as of this call."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Entries in ``[start, end)`` in key order, as of this call."""
        db = self._live()
        try:
            options = ReadOptions()
            if end is not None:
                options.set_iterate_upper_bound(end)
            it = db.iter(options)  # created now: the scan sees the store as of this call
            it.seek(start)
        except Exception as exc:
            raise _translate(exc, self._path) from exc
        cursor = _Cursor(it)
        self._cursors.add(cursor)
        return _drain(cursor, end, self._path)

    def delete_prefix(self, prefix: bytes) -> None:
        """Remove every key under ``prefix`` with one range tombstone."""
        db = self._live()
        end = prefix_end(prefix)
        try:
            if end is None:
                keys = [k for k, _ in self.scan_prefix(prefix)]
                self.write_batch((), keys)
            else:
                db.delete_range(prefix, end, self._write_options)
        except StateError:
            raise
        except Exception as exc:
            raise _translate(exc, self._path) from exc

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), sync: bool = False
    ) -> None:
        """Apply ``deletes`` then ``puts`` in one RocksDB WriteBatch (``sync``: fsync the WAL)."""
        db = self._live()
        batch = WriteBatch(raw_mode=True)
        delete = batch.delete
        for key in deletes:
            delete(key)
        put = batch.put
        for key, value in puts:
            put(key, value)
        try:
            db.write(batch, self._write_options_sync if sync else self._write_options)
        except Exception as exc:
            raise _translate(exc, self._path) from exc

    def snapshot(self) -> _RocksView:
        """A read view frozen now (gets and scans); close it to release what it pins."""
        db = self._live()
        try:
            cursor = _Cursor(db.iter(ReadOptions()))
        except Exception as exc:
            raise _translate(exc, self._path) from exc
        self._cursors.add(cursor)
        return _RocksView(self, cursor)

    def approximate_bytes(self) -> int:
        """RocksDB's estimate of live data plus memtables (for the state-size metric)."""
        db = self._live()
        total = 0
        for prop in ("rocksdb.estimate-live-data-size", "rocksdb.cur-size-all-mem-tables"):
            total += db.property_int_value(prop) or 0
        return int(total)

    def close(self) -> None:
        """Close the store (idempotent); a scratch store is deleted.

        Open scans and snapshots are released; using them afterwards raises StateClosedError.
        """
        db, self._db = self._db, None
        if db is None:
            return
        for cursor in list(self._cursors):
            cursor.it = None
        self._cursors.clear()
        try:
            db.close()
        except Exception as exc:
            raise _translate(exc, self._path) from exc
        finally:
            if self._scratch:
                shutil.rmtree(self._path, ignore_errors=True)

    def __enter__(self) -> RocksDBBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
