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
