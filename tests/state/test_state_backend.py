"""One backend suite, run against MemoryBackend and RocksDBBackend (real RocksDB files)."""

from __future__ import annotations

import errno
import os
import subprocess
import textwrap
from pathlib import Path

import msgpack
import pytest
import rocksdict

from millstream.state import (
    RocksDBBackend,
    StateClosedError,
    StateCorruptedError,
    StateError,
    StateFormatError,
    StateIOError,
    StateLockedError,
)
from millstream.state.errors import translate_rocksdb_error
from millstream.state.format import FORMAT_KEY, MAGIC, SUPPORTED_VERSIONS

from .conftest import Stores
from support.jobs import code_command
from support.kill9 import KilledJob


def user_items(backend, prefix: bytes = b"\x01") -> list[tuple[bytes, bytes]]:
    return list(backend.scan_prefix(prefix))


# -- parametrised over both backends --------------------------------------------------------------


def test_get_put_delete(stores: Stores) -> None:
    b = stores.open()
    assert b.get(b"\x01a") is None
    b.put(b"\x01a", b"1")
    b.put(b"\x01b", b"")
    assert b.get(b"\x01a") == b"1"
    assert b.get(b"\x01b") == b""  # empty value is a value, not absence
    b.put(b"\x01a", b"2")
    assert b.get(b"\x01a") == b"2"
    b.delete(b"\x01a")
    b.delete(b"\x01never")
    assert b.get(b"\x01a") is None
    assert user_items(b) == [(b"\x01b", b"")]


def test_prefix_scan_order_and_boundaries(stores: Stores) -> None:
    b = stores.open()
    keys = [
        b"\x01a",
        b"\x01aa\xff",
        b"\x01ab",
        b"\x01ab\x00",
        b"\x01ab\x00\x00",
        b"\x01ab\xff",
        b"\x01ab\xff\xff",
        b"\x01ac",
        b"\x01b",
        b"\x01\xff\xff",
        b"\x02",
    ]
    b.write_batch([(k, k[::-1]) for k in reversed(keys)])
    got = [k for k, _ in b.scan_prefix(b"\x01ab")]
    assert got == [b"\x01ab", b"\x01ab\x00", b"\x01ab\x00\x00", b"\x01ab\xff", b"\x01ab\xff\xff"]
    assert all(v == k[::-1] for k, v in b.scan_prefix(b"\x01ab"))
    # a prefix ending in 0xff has no simple successor: must still stop at the boundary
    assert [k for k, _ in b.scan_prefix(b"\x01ab\xff")] == [b"\x01ab\xff", b"\x01ab\xff\xff"]
    assert [k for k, _ in b.scan_prefix(b"\x01\xff")] == [b"\x01\xff\xff"]
    assert [k for k, _ in b.scan_prefix(b"\x01")] == sorted(keys[:-1])
    assert list(b.scan_prefix(b"\x01zz")) == []
    assert [k for k, _ in b.scan_range(b"\x01ab\x00", b"\x01ab\xff")] == [b"\x01ab\x00", b"\x01ab\x00\x00"]
    assert [k for k, _ in b.scan_range(b"\x01b", None)] == [b"\x01b", b"\x01\xff\xff", b"\x02"]


def test_scan_is_a_cut_at_call_time(stores: Stores) -> None:
    b = stores.open()
    b.write_batch([(b"\x01%03d" % i, b"old") for i in range(10)])
    it = b.scan_prefix(b"\x01")
    b.put(b"\x01005", b"new")
    b.put(b"\x01050", b"added")
    b.delete(b"\x01000")
    assert list(it) == [(b"\x01%03d" % i, b"old") for i in range(10)]


def test_write_batch_is_atomic_and_deletes_come_first(stores: Stores) -> None:
    b = stores.open()
    b.write_batch([(b"\x01x", b"1"), (b"\x01y", b"1")])

    def failing():
        yield b"\x01a", b"1"
        yield b"\x01b", b"2"
        raise RuntimeError("input broke mid-batch")

    with pytest.raises(RuntimeError):
        b.write_batch(failing(), [b"\x01x"])
    assert user_items(b) == [(b"\x01x", b"1"), (b"\x01y", b"1")]  # nothing applied

    b.write_batch([(b"\x01y", b"2"), (b"\x01z", b"3")], [b"\x01x", b"\x01y"], sync=True)
    assert user_items(b) == [(b"\x01y", b"2"), (b"\x01z", b"3")]
    b.close()
    b = stores.open()
    assert user_items(b) == [(b"\x01y", b"2"), (b"\x01z", b"3")]


def test_snapshot_isolation(stores: Stores) -> None:
    b = stores.open()
    b.write_batch([(b"\x01%04d" % i, b"v0") for i in range(600)])  # > one snapshot scan chunk
    snap = b.snapshot()
    b.write_batch([(b"\x01%04d" % i, b"v1") for i in range(0, 600, 2)], [b"\x010001", b"\x010003"])
    b.put(b"\x01zzz", b"new")
    assert snap.get(b"\x010000") == b"v0"
    assert snap.get(b"\x010001") == b"v0"
    assert snap.get(b"\x01zzz") is None
    assert b.get(b"\x010000") == b"v1"
    assert b.get(b"\x010001") is None
    # two scans of one snapshot, interleaved, both see the frozen contents
    s1 = snap.scan_prefix(b"\x01")
    s2 = snap.scan_prefix(b"\x010")
    got1, got2 = [], []
    for a, c in zip(s1, s2):
        got1.append(a)
        got2.append(c)
    got1.extend(s1)
    got2.extend(s2)
    expected = [(b"\x01%04d" % i, b"v0") for i in range(600)]
    assert got1 == expected
    assert got2 == expected
    assert list(snap.scan_range(b"\x010598", None)) == expected[598:]
    snap.close()
    with pytest.raises(StateClosedError):
        snap.get(b"\x010000")


def test_reopen_persists_and_closed_backend_raises(stores: Stores) -> None:
    b = stores.open()
    b.put(b"\x01k", b"v")
    b.write_batch([(b"\x01m", b"w")], sync=True)
    b.close()
    b.close()  # idempotent
    with pytest.raises(StateClosedError) as info:
        b.get(b"\x01k")
    assert info.value.path == b.path
    with pytest.raises(StateClosedError):
        b.put(b"\x01k", b"v")
    b2 = stores.open()
    assert user_items(b2) == [(b"\x01k", b"v"), (b"\x01m", b"w")]


def test_close_ends_open_scans_and_snapshots_and_releases_the_store(stores: Stores) -> None:
    b = stores.open()
    b.write_batch([(b"\x01%04d" % i, b"v") for i in range(1000)])
    snap = b.snapshot()
    scan = b.scan_prefix(b"\x01")
    assert next(scan) == (b"\x010000", b"v")
    b.close()
    with pytest.raises(StateClosedError):
        next(scan)  # not a silent end of the scan
    with pytest.raises(StateClosedError):
        snap.get(b"\x010001")
    with pytest.raises(StateClosedError):
        list(snap.scan_prefix(b"\x01"))
    b2 = stores.open()  # the open scan and snapshot no longer hold the store (RocksDB's LOCK)
    assert b2.get(b"\x010001") == b"v"


def test_delete_prefix(stores: Stores) -> None:
    b = stores.open()
    b.write_batch([(b"\x01a1", b""), (b"\x01a2", b""), (b"\x01b", b""), (b"\x01\xff\xff1", b"")])
    b.delete_prefix(b"\x01a")
    b.delete_prefix(b"\x01\xff\xff")
    assert [k for k, _ in user_items(b)] == [b"\x01b"]


def test_format_version_mismatch_is_a_typed_error(stores: Stores) -> None:
    b = stores.open()
    b.put(FORMAT_KEY, msgpack.packb({"magic": MAGIC, "version": 99}))
    b.put(b"\x01k", b"v")
    b.close()
    with pytest.raises(StateFormatError) as info:
        stores.open()
    err = info.value
    assert err.found == 99
    assert err.supported == SUPPORTED_VERSIONS
    assert err.path in str(err) and "99" in str(err) and "newer" in str(err)


def test_foreign_store_without_format_record_is_rejected(stores: Stores) -> None:
    if stores.kind == "memory":
        stores.data[b"\x01k"] = b"v"
    else:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        raw = rocksdict.Rdict(stores.path, options)
        raw[b"\x01k"] = b"v"
        raw.close()
    with pytest.raises(StateFormatError, match="not a millstream state store"):
        stores.open()


# -- RocksDB only: files, locks, OS errors ----------------------------------------------------------


def _filled_store(path: Path, n: int = 20_000) -> None:
    b = RocksDBBackend(path)
    b.write_batch([(b"\x01%06d" % i, os.urandom(40)) for i in range(n)], sync=True)
    b.close()
    # force the memtable into an SST file so there is one to damage
    options = rocksdict.Options(raw_mode=True)
    raw = rocksdict.Rdict(str(path), options)
    raw.flush()
    raw.close()


def _one(path: Path, pattern: str) -> Path:
    found = sorted(path.glob(pattern))
    assert found, f"no {pattern} in {path}"
    return found[0]


def test_truncated_sst_fails_on_open(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _filled_store(path)
    sst = _one(path, "*.sst")
    os.truncate(sst, sst.stat().st_size // 2)
    with pytest.raises(StateCorruptedError) as info:
        RocksDBBackend(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value) and "size mismatch" in info.value.cause


def test_overwritten_sst_block_fails_on_read_and_with_verify_on_open(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _filled_store(path)
    sst = _one(path, "*.sst")
    with open(sst, "r+b") as fh:
        fh.seek(sst.stat().st_size // 3)
        fh.write(b"\xff" * 64)
    b = RocksDBBackend(path)  # the damage is inside a data block: found when read
    with pytest.raises(StateCorruptedError, match="checksum mismatch"):
        list(b.scan_prefix(b"\x01"))
    b.close()
    with pytest.raises(StateCorruptedError) as info:
        RocksDBBackend(path, verify=True)
    assert info.value.path == str(path)
    RocksDBBackend(path).close()  # the failed open released the store (and its LOCK)


@pytest.mark.parametrize(
    "damage, cause",
    [
        ("current_garbage", "CURRENT file corrupted"),
        ("current_missing", "CURRENT file missing"),
        ("manifest_overwritten", "MANIFEST"),
        ("manifest_truncated", "MANIFEST"),
    ],
)
def test_damaged_metadata_files_fail_on_open(tmp_path: Path, damage: str, cause: str) -> None:
    path = tmp_path / "db"
    _filled_store(path, 2_000)
    if damage == "current_garbage":
        (path / "CURRENT").write_text("garbage\n")
    elif damage == "current_missing":
        (path / "CURRENT").unlink()
    else:
        manifest = _one(path, "MANIFEST-*")
        if damage == "manifest_truncated":
            os.truncate(manifest, 10)
        else:
            with open(manifest, "r+b") as fh:
                fh.seek(manifest.stat().st_size // 2)
                fh.write(b"\x00\xff" * 16)
    with pytest.raises(StateCorruptedError) as info:
        RocksDBBackend(path)
    assert info.value.path == str(path)
    assert cause in info.value.cause


def test_second_open_is_locked(tmp_path: Path) -> None:
    b = RocksDBBackend(tmp_path / "db")
    with pytest.raises(StateLockedError) as info:
        RocksDBBackend(tmp_path / "db")
    assert info.value.path == str(tmp_path / "db")
    b.close()
    RocksDBBackend(tmp_path / "db").close()


def test_missing_store_without_create_and_foreign_directory(tmp_path: Path) -> None:
    with pytest.raises(StateIOError) as info:
        RocksDBBackend(tmp_path / "nope", create=False)
    assert info.value.errno == errno.ENOENT
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(StateFormatError, match="notes.txt"):
        RocksDBBackend(tmp_path / "foreign")
    with pytest.raises(StateFormatError):
        RocksDBBackend.scratch(tmp_path / "foreign")  # never deletes what is not a store
    assert (tmp_path / "foreign" / "notes.txt").exists()


def test_read_only_open_reads_and_refuses_writes(tmp_path: Path) -> None:
    b = RocksDBBackend(tmp_path / "db")
    b.write_batch([(b"\x01k", b"v")], sync=True)
    ro = RocksDBBackend(tmp_path / "db", read_only=True)  # while the writer holds the lock
    assert ro.get(b"\x01k") == b"v"
    with pytest.raises(StateError):
        ro.put(b"\x01k", b"x")
    ro.close()
    b.close()


def test_scratch_store_is_fresh_and_removed_on_close(tmp_path: Path) -> None:
    s = RocksDBBackend.scratch(tmp_path / "spill")
    s.write_batch([(b"\x01k", b"v")], sync=True)  # sync is ignored (no WAL), not an error
    s.close()
    assert not (tmp_path / "spill").exists()
    # a crashed run leaves its scratch directory behind: the next scratch() starts empty
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    leftover = rocksdict.Rdict(str(tmp_path / "spill"), options)
    leftover[b"\x01b"] = b"2"
    leftover.close()
    fresh = RocksDBBackend.scratch(tmp_path / "spill")
    assert list(fresh.scan_prefix(b"\x01")) == []
    fresh.close()


def test_rocksdb_error_translation_keeps_errno() -> None:
    enospc = Exception("IO error: No space left on device: While appending to file: /x/000012.log")
    err = translate_rocksdb_error(enospc, "/x")
    assert type(err) is StateIOError and err.errno == errno.ENOSPC and err.path == "/x"
    eacces = Exception("IO error: While open a file for appending: /x/LOG: Permission denied")
    assert translate_rocksdb_error(eacces, "/x").errno == errno.EACCES  # type: ignore[attr-defined]
    assert isinstance(translate_rocksdb_error(Exception("Corruption: bad block"), "/x"), StateCorruptedError)
    assert type(translate_rocksdb_error(Exception("Invalid argument: x"), "/x")) is StateError


_CRASH_WRITER = textwrap.dedent(
    """
    import sys
    from millstream.state import RocksDBBackend
    b = RocksDBBackend(sys.argv[1])
    n = 0
    while True:
        b.write_batch(
            [(b"\\x01%06d/%03d" % (n, i), b"%d" % n) for i in range(200)],
            [b"\\x01%06d/%03d" % (n - 1, i) for i in range(200)],
        )
        n += 1
        if n == 20:
            print("ready", flush=True)
    """
)


def test_batches_survive_kill_9_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with KilledJob(code_command(_CRASH_WRITER, str(path))) as writer:
        child = writer.start(stdout=subprocess.PIPE)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready", writer.tail(child)
        assert writer.kill(child), "the writer ended before the kill"
    b = RocksDBBackend(path)
    batches: dict[int, int] = {}
    for key, value in b.scan_prefix(b"\x01"):
        n = int(key[1:7])
        assert value == b"%d" % n
        batches[n] = batches.get(n, 0) + 1
    b.close()
    # every batch replaces the previous one: exactly one complete batch may survive
    assert len(batches) == 1, f"batches partially applied: {batches}"
    ((n, count),) = batches.items()
    assert n >= 19 and count == 200
