"""`StateTier.write_ahead` on a real RocksDB store: rows moved ahead of a checkpoint are invisible until its
batch commits, complete the checkpoint when it does, and are purged by a restore that never saw it."""

from __future__ import annotations

from typing import Any

from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier, live_entries
from millstream.state import MsgpackCodec, RocksDBBackend


def _tier(tmp_path: Any, backend: Any) -> tuple[StateTier, list[bytes]]:
    tier = StateTier("step", backend, SpillArea(str(tmp_path / "spill")), 10)
    keys = [tier.entry_key(b"n", tier.encode_key(f"k{i}")) for i in range(100)]
    tier.evict([(k, i) for i, k in enumerate(keys)])
    return tier, keys


def test_rows_written_ahead_join_their_checkpoint(tmp_path: Any) -> None:
    backend = RocksDBBackend(str(tmp_path / "db"))
    tier, keys = _tier(tmp_path, backend)
    assert tier.write_ahead(1, 64, retained=1) == 64
    assert live_entries(backend, "step", 0) == (None, [])  # checkpoint 0 knows nothing of them
    assert tier.take(keys[0]) == (0, False)  # a read finds what checkpoint 1 will hold
    ck = tier.checkpoint(1, 1, {"h": 1}, [], [])
    backend.write_batch(list(ck.puts()), list(ck.deletes()), sync=True)
    tier.committed(ck)
    assert ck.written == 1 + 100  # header, 64 rows written ahead and the 36 still spilled
    header, entries = live_entries(backend, "step", 1)
    codec = MsgpackCodec(allow_pickle=True)
    assert header == {"h": 1}
    assert sorted(codec.decode(payload) for _, _, payload in entries) == list(range(100))
    # the checkpoint left its sweep to the slices between checkpoints, which pay it without moving rows
    assert ck.sweep_budget == 0 and tier.sweep_debt > 0
    debt = tier.sweep_debt
    assert tier.write_ahead(2, 16, retained=1, move=False) == min(debt, 32)
    while tier.sweep_debt:
        tier.write_ahead(2, 16, retained=1, move=False)
    assert live_entries(backend, "step", 1)[1] == entries  # sweeping kept everything checkpoint 1 needs
    backend.close()


def test_restore_purges_rows_written_ahead_of_a_checkpoint_that_never_committed(tmp_path: Any) -> None:
    backend = RocksDBBackend(str(tmp_path / "db"))
    tier, _ = _tier(tmp_path, backend)
    assert tier.write_ahead(1, 4096, retained=1) == 100
    assert len(list(backend.scan_prefix(tier.prefix))) == 101  # the header version first, then the rows
    backend.close()  # the process dies before checkpoint 1's batch
    backend = RocksDBBackend(str(tmp_path / "db"))
    again = StateTier("step", backend, SpillArea(None), 10)
    assert again.restore(0) is None
    assert list(backend.scan_prefix(again.prefix)) == []
    backend.close()


def test_hot_entries_written_ahead_join_their_checkpoint_or_are_purged(tmp_path: Any) -> None:
    backend = RocksDBBackend(str(tmp_path / "db"))
    tier = StateTier("step", backend, SpillArea(str(tmp_path / "spill")), 1000)
    gone = tier.entry_key(b"n", tier.encode_key("gone"))
    assert (
        tier.write_ahead_hot(1, [b"n", "a", 1, b"n", "b", 2], [b"n", "c", tier.encode_value(3)], [gone], 1)
        == 4
    )
    assert tier.ahead_hot == 4 and tier.ahead_cid == 1
    assert live_entries(backend, "step", 0) == (None, [])  # invisible to the checkpoint before
    assert tier.take(tier.entry_key(b"n", tier.encode_key("b"))) == (2, False)  # what checkpoint 1 will hold
    # the checkpoint captures only what changed again ("a") and writes it over its version written ahead
    ck = tier.checkpoint(1, 1, {"h": 1}, [b"n", "a", 10], [])
    backend.write_batch(list(ck.puts()), list(ck.deletes()), sync=True)
    tier.committed(ck)
    assert ck.written == 1 + 4 + 1 and tier.ahead_hot == 0
    header, entries = live_entries(backend, "step", 1)
    codec = MsgpackCodec(allow_pickle=True)
    assert header == {"h": 1}
    assert sorted((codec.decode(k), codec.decode(v)) for _, k, v in entries) == [
        ("a", 10),
        ("b", 2),
        ("c", 3),
    ]
    # written ahead of checkpoint 2, which never commits: a restore of checkpoint 1 purges them
    tier.write_ahead_hot(2, [b"n", "b", 20, b"n", "d", 4], [], [], 1)
    backend.close()
    backend = RocksDBBackend(str(tmp_path / "db"))
    again = StateTier("step", backend, SpillArea(None), 1000)
    assert again.restore(1) == {"h": 1}
    _, entries = live_entries(backend, "step", 2)
    assert sorted((codec.decode(k), codec.decode(v)) for _, k, v in entries) == [
        ("a", 10),
        ("b", 2),
        ("c", 3),
    ]
    backend.close()
