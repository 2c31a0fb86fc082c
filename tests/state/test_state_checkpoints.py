"""CheckpointStore: atomic commits with manifests, retention, corruption handling, kill -9 recovery."""

from __future__ import annotations

import itertools
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest

from millstream.state import (
    CheckpointStore,
    Manifest,
    MsgpackCodec,
    RocksDBBackend,
    StateCorruptedError,
    StateFormatError,
)
from millstream.state.checkpoints import MANIFEST_PREFIX
from millstream.state.keys import encode_u64, state_key

from .conftest import Stores
from support.jobs import code_command
from support.kill9 import KilledJob


def commit(ck: CheckpointStore, cid: int, puts: Any = (), deletes: Any = (), **kw: Any) -> Manifest:
    kw.setdefault("fingerprint", "fp-1")
    kw.setdefault("wall_time_micros", cid * 1_000_000)
    return ck.commit(cid, puts, deletes, **kw)


def test_commit_latest_get_list(stores: Stores) -> None:
    backend = stores.open()
    ck = CheckpointStore(backend)
    assert ck.latest() is None and ck.list() == [] and ck.next_id() == 1
    m1 = commit(
        ck,
        1,
        [(b"\x01a", b"1"), (b"\x01b", b"22")],
        [b"\x01zz"],
        layout={"Count": {"codec": "struct:<qq", "version": 1}},
        metadata={"sources": {"clicks/0": (17, "offset")}, "sinks": [{"txn": "t-1"}], "big": 2**70},
    )
    assert (m1.puts, m1.deletes, m1.bytes_written) == (2, 1, len(b"\x01a1\x01b22\x01zz"))
    latest = ck.latest()
    assert latest == m1
    assert latest.metadata["sources"]["clicks/0"] == (17, "offset")  # tuples round-trip
    assert latest.layout == {"Count": {"codec": "struct:<qq", "version": 1}}
    assert (latest.fingerprint, latest.wall_time_micros) == ("fp-1", 1_000_000)
    assert backend.get(b"\x01a") == b"1"
    commit(ck, 5, [(b"\x01a", b"5")])
    assert [m.checkpoint_id for m in ck.list()] == [1, 5]
    assert ck.get(1) == m1 and ck.next_id() == 6
    with pytest.raises(KeyError):
        ck.get(2)
    backend.close()
    ck = CheckpointStore(stores.open())  # reopen: the latest checkpoint is restorable
    assert ck.latest().checkpoint_id == 5  # type: ignore[union-attr]


def test_ids_must_increase_and_reserved_keys_are_rejected(stores: Stores) -> None:
    backend = stores.open()
    ck = CheckpointStore(backend)
    commit(ck, 3)
    for bad in (3, 2, -1, 2**63):
        with pytest.raises(ValueError):
            commit(ck, bad)
    with pytest.raises(ValueError, match="reserved"):
        commit(ck, 4, [(b"\x01ok", b""), (MANIFEST_PREFIX + encode_u64(3), b"forged")])
    with pytest.raises(ValueError, match="reserved"):
        commit(ck, 4, deletes=[b"\x00format"])
    assert [m.checkpoint_id for m in ck.list()] == [3] and backend.get(b"\x01ok") is None


def test_failed_commit_writes_nothing(stores: Stores) -> None:
    backend = stores.open()
    ck = CheckpointStore(backend)

    def broken():
        yield b"\x01a", b"1"
        raise OSError("source of the batch failed")

    with pytest.raises(OSError):
        commit(ck, 1, broken())
    with pytest.raises(TypeError):
        commit(ck, 1, [(b"\x01a", b"1")], metadata={"x": object()})  # metadata must be plain data
    assert ck.latest() is None and backend.get(b"\x01a") is None


def test_retention_keeps_the_last_n_manifests(stores: Stores) -> None:
    backend = stores.open()
    ck = CheckpointStore(backend, keep=3)
    for cid in range(1, 8):
        commit(ck, cid, [(b"\x01k", b"%d" % cid)])
    assert [m.checkpoint_id for m in ck.list()] == [5, 6, 7]
    assert len(list(backend.scan_prefix(MANIFEST_PREFIX))) == 3
    with pytest.raises(KeyError):
        ck.get(4)
    assert ck.latest().checkpoint_id == 7 and backend.get(b"\x01k") == b"7"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        CheckpointStore(backend, keep=0)


def test_corrupt_latest_manifest_is_reported_and_fallback_is_explicit(stores: Stores) -> None:
    backend = stores.open()
    ck = CheckpointStore(backend)
    for cid in (1, 2, 3):
        commit(ck, cid)
    key3 = MANIFEST_PREFIX + encode_u64(3)
    crc, body = msgpack.unpackb(backend.get(key3))
    middle = len(body) // 2
    flipped = body[:middle] + bytes((body[middle] ^ 0x10,)) + body[middle + 1 :]
    backend.put(key3, msgpack.packb([crc, flipped]))  # one flipped bit in the body
    with pytest.raises(StateCorruptedError) as info:
        ck.latest()
    assert "checkpoint 3" in str(info.value) and "checksum" in str(info.value)
    assert info.value.path == backend.path
    fallback = ck.latest(allow_fallback=True)
    assert fallback is not None and fallback.checkpoint_id == 2 and fallback.skipped == (3,)
    assert [m.checkpoint_id for m in ck.list()] == [1, 2]
    assert [cid for cid, _ in ck.verify()] == [3]
    with pytest.raises(StateCorruptedError):
        ck.get(3)
    backend.put(key3, b"\xc1 not msgpack")
    assert "not decodable" in ck.verify()[0][1]
    # a record stored under the wrong id is also caught
    backend.put(key3, backend.get(MANIFEST_PREFIX + encode_u64(2)))  # type: ignore[arg-type]
    assert "records id 2" in ck.verify()[0][1]
    for cid in (1, 2):
        backend.put(MANIFEST_PREFIX + encode_u64(cid), b"junk")
    with pytest.raises(StateCorruptedError, match="no readable checkpoint manifest"):
        ck.latest(allow_fallback=True)


def test_unknown_manifest_version_is_a_format_error(stores: Stores) -> None:
    import zlib

    backend = stores.open()
    ck = CheckpointStore(backend)
    commit(ck, 1)
    body = msgpack.packb({"v": 2, "id": 1})
    backend.put(MANIFEST_PREFIX + encode_u64(1), msgpack.packb([zlib.crc32(body), body]))
    with pytest.raises(StateFormatError, match="version 2") as info:
        ck.latest()
    assert info.value.found == 2


def test_one_atomic_checkpoint_for_two_operators_and_source_positions(stores: Stores) -> None:
    backend = stores.open()
    codec = MsgpackCodec()
    counts = {state_key("Count", b"%d" % i, b"", "n"): i for i in range(10)}
    sums = {state_key("Sum", b"%d" % i, b"", "s"): float(i) for i in range(10)}
    ck = CheckpointStore(backend)
    manifest = ck.commit(
        1,
        [(k, codec.encode(v)) for k, v in itertools.chain(counts.items(), sums.items())],
        [],
        fingerprint="fp",
        wall_time_micros=0,
        metadata={"positions": {"file-0": 1234}},
    )
    assert manifest.puts == 20
    spill = stores.scratch()
    spill.put(state_key("Count", b"0", b"", "n"), codec.encode(999))  # after the checkpoint: not durable
    backend.close()
    backend = stores.open()
    ck = CheckpointStore(backend)
    restored = ck.latest()
    assert restored is not None and restored.metadata == {"positions": {"file-0": 1234}}
    assert {k: codec.decode(v) for k, v in backend.scan_prefix(b"\x01")} == {**counts, **sums}


_CHECKPOINTING_JOB = textwrap.dedent(
    """
    import sys
    from millstream.state import CheckpointStore, MsgpackCodec, RocksDBBackend
    from millstream.state.keys import state_key

    backend = RocksDBBackend(sys.argv[1])
    spill = RocksDBBackend.scratch(sys.argv[2])
    codec = MsgpackCodec()
    checkpoints = CheckpointStore(backend, keep=2)
    keys = [state_key("Count", b"k%03d" % i, b"", "n") for i in range(300)]
    cid = 0
    while True:
        cid += 1
        puts = [(k, codec.encode((cid, -cid))) for k in keys]
        checkpoints.commit(cid, puts, [], fingerprint="job",
                           wall_time_micros=cid, metadata={"offset": cid * 300})
        for k in keys[::2]:
            spill.put(k, codec.encode("uncheckpointed"))  # spilled, then lost with the process
        print(cid, flush=True)
    """
)


def test_kill_9_restores_exactly_the_last_checkpoint(tmp_path: Path) -> None:
    with KilledJob(code_command(_CHECKPOINTING_JOB, str(tmp_path / "db"), str(tmp_path / "spill"))) as job:
        child = job.start(stdout=subprocess.PIPE)
        assert child.stdout is not None
        reported = 0
        while reported < 5:
            line = child.stdout.readline()
            assert line, f"the job ended ({child.wait()}): {job.tail(child)}"
            reported = int(line)
        assert job.kill(child), "the job ended before the kill"
    backend = RocksDBBackend(tmp_path / "db")
    spill = RocksDBBackend.scratch(tmp_path / "spill")  # the dead run's spill is discarded
    try:
        manifest = CheckpointStore(backend).latest()
        assert manifest is not None and manifest.checkpoint_id >= reported
        cid = manifest.checkpoint_id
        assert manifest.metadata == {"offset": cid * 300}
        codec = MsgpackCodec()
        values = {k: codec.decode(v) for k, v in backend.scan_prefix(b"\x01")}
        assert len(values) == 300
        assert set(values.values()) == {(cid, -cid)}
    finally:
        backend.close()
        spill.close()
