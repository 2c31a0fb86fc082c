"""CachedStore: bounded memory, spill of dirty evictions, flush batches, and a dict-model property."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from millstream.state import (
    CachedStore,
    MemoryBackend,
    RocksDBBackend,
    StateBackend,
    StateError,
    StructCodec,
)
from millstream.state.keys import encode_i64, operator_prefix, state_key

from .conftest import Stores


def key(i: int, op: str = "count") -> bytes:
    return state_key(op, b"user%05d" % i, encode_i64(i * 60_000_000), "acc")


def commit(store: CachedStore[Any], backend: StateBackend) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Checkpoint the store into the backend; returns what the flush batch held."""
    batch = store.flush()
    puts, deletes = batch.materialize()
    backend.write_batch(batch.puts, batch.deletes, sync=True)
    store.commit_flush(batch)
    with pytest.raises(StateError, match="already committed"):
        list(batch.puts)
    return puts, deletes


def backend_items(backend: StateBackend, prefix: bytes = b"\x01") -> dict[bytes, bytes]:
    return dict(backend.scan_prefix(prefix))


def test_state_10x_the_bound_reads_back_correctly_with_bounded_memory(stores: Stores) -> None:
    backend = stores.open()
    store: CachedStore[Any] = CachedStore(backend, max_entries=100, spill=stores.scratch(), name="count")
    for i in range(1000):
        store.put(key(i), (i, i * 2))
        assert store.cached_entries <= 100
    assert backend_items(backend) == {}  # nothing reaches the durable store before a checkpoint
    assert store.spilled > 0
    for i in reversed(range(1000)):
        assert store.get(key(i)) == (i, i * 2)
        assert store.cached_entries <= 100
    assert [k for k, _ in store.scan_prefix(operator_prefix("count"))] == [key(i) for i in range(1000)]
    commit(store, backend)
    assert len(backend_items(backend)) == 1000
    # after the checkpoint, reads come from the backend, still within the bound
    for i in range(0, 1000, 7):
        assert store.get(key(i)) == (i, i * 2)
        assert store.cached_entries <= 100


def test_dirty_eviction_is_not_lost_and_stays_out_of_the_backend(stores: Stores) -> None:
    backend = stores.open()
    codec = StructCodec("<qq")
    store: CachedStore[Any] = CachedStore(
        backend, codec=codec, max_entries=10, spill=stores.scratch(), name="count"
    )
    for i in range(10):
        store.put(key(i), (i, 0))
    commit(store, backend)
    store.put(key(0), (0, 99))  # dirty, then pushed out by 50 reads of other keys
    store.delete(key(1))  # a dirty tombstone, pushed out too
    for i in range(100, 150):
        assert store.get(key(i)) is None
    assert store.cached_entries <= 10
    assert backend.get(key(0)) == codec.encode((0, 0))  # backend still holds the checkpoint
    assert backend.get(key(1)) == codec.encode((1, 0))
    assert store.get(key(0)) == (0, 99)  # read back from the spill
    assert store.get(key(1), "gone") == "gone"
    assert dict(store.scan_prefix(operator_prefix("count")))[key(0)] == (0, 99)
    assert key(1) not in dict(store.scan_prefix(operator_prefix("count")))
    puts, deletes = commit(store, backend)
    assert dict(puts) == {key(0): codec.encode((0, 99))}
    assert deletes == [key(1)]
    assert backend.get(key(0)) == codec.encode((0, 99)) and backend.get(key(1)) is None


def test_flush_returns_exactly_the_changes(stores: Stores) -> None:
    backend = stores.open()
    store: CachedStore[Any] = CachedStore(backend, max_entries=8, spill=stores.scratch(), name="op")
    for i in range(20):
        store.put(key(i), [i])
    commit(store, backend)
    assert store.flush().materialize() == ([], [])  # nothing changed since the commit
    store.abort_flush(store._inflight)  # type: ignore[arg-type]
    for i in range(20):  # cycle everything through the spill
        if i % 3 == 0:
            store.put(key(i), [i, "changed"])
        elif i % 3 == 1:
            store.delete(key(i))
        else:
            store.get(key(i))
    store.put(key(500), "new")
    store.delete(key(501))  # deleting an absent key is still recorded (harmless)
    batch = store.flush()
    puts, deletes = batch.materialize()
    assert sorted(k for k, _ in puts) == sorted([key(i) for i in range(0, 20, 3)] + [key(500)])
    assert sorted(deletes) == sorted([key(i) for i in range(1, 20, 3)] + [key(501)])
    assert dict((k, store.codec.decode(v)) for k, v in puts)[key(3)] == [3, "changed"]
    assert list(batch.puts) == puts  # re-iterable
    backend.write_batch(batch.puts, batch.deletes)
    store.commit_flush(batch)
    assert store.flush().materialize() == ([], [])


def test_abort_keeps_changes_and_changes_during_a_flush_go_to_the_next(stores: Stores) -> None:
    backend = stores.open()
    store: CachedStore[Any] = CachedStore(backend, max_entries=4, spill=stores.scratch(), name="op")
    for i in range(10):
        store.put(key(i), i)
    batch = store.flush()
    with pytest.raises(StateError, match="in flight"):
        store.flush()
    store.abort_flush(batch)  # e.g. the checkpoint write failed with ENOSPC
    assert backend_items(backend) == {}
    batch = store.flush()
    # while the batch is being written, the job goes on: updates and evictions
    for i in range(10):
        store.put(key(i), i + 100)
    store.put(key(99), 99)
    puts, _ = batch.materialize()
    assert {k: store.codec.decode(v) for k, v in puts} == {key(i): i for i in range(10)}
    backend.write_batch(batch.puts, batch.deletes)
    store.commit_flush(batch)
    assert {k: store.codec.decode(v) for k, v in backend_items(backend).items()} == {
        key(i): i for i in range(10)
    }
    for i in range(10):
        assert store.get(key(i)) == i + 100
    commit(store, backend)
    assert {k: store.codec.decode(v) for k, v in backend_items(backend).items()} == {
        **{key(i): i + 100 for i in range(10)},
        key(99): 99,
    }
    with pytest.raises(StateError, match="not the one in flight"):
        store.commit_flush(batch)


def test_without_spill_dirty_entries_stay_and_clean_ones_are_evicted(stores: Stores) -> None:
    backend = stores.open()
    store: CachedStore[Any] = CachedStore(backend, max_entries=10)
    for i in range(50):
        store.put(key(i), i)
    assert store.cached_entries == 50  # dirty entries cannot leave memory without a spill area
    commit(store, backend)
    assert store.cached_entries <= 10
    for i in range(50):
        assert store.get(key(i)) == i
        assert store.cached_entries <= 10


def test_unencodable_value_fails_at_flush_and_changes_nothing() -> None:
    backend = MemoryBackend()
    store: CachedStore[Any] = CachedStore(backend, codec=StructCodec("<qq"), max_entries=10)
    store.put(key(1), (1, 2))
    store.put(key(2), "not two ints")
    with pytest.raises(TypeError, match="user00002"):
        store.flush()
    store.put(key(2), (3, 4))
    puts, _ = store.flush().materialize()
    assert len(puts) == 2


def test_restart_sees_only_the_last_checkpoint(tmp_path: Path) -> None:
    backend = RocksDBBackend(tmp_path / "db")
    spill = RocksDBBackend.scratch(tmp_path / "spill")
    store: CachedStore[Any] = CachedStore(backend, max_entries=5, spill=spill, name="op")
    for i in range(20):
        store.put(key(i), "checkpointed")
    commit(store, backend)
    for i in range(20):
        store.put(key(i), "lost")  # spilled, never checkpointed
    store.put(key(50), "lost")
    backend.close()  # the process dies here (the spill is discarded with it)
    spill.close()
    backend = RocksDBBackend(tmp_path / "db")
    spill = RocksDBBackend.scratch(tmp_path / "spill")
    store = CachedStore(backend, max_entries=5, spill=spill, name="op")
    assert dict(store.scan_prefix(b"\x01")) == {key(i): "checkpointed" for i in range(20)}
    assert store.get(key(50)) is None
    backend.close()
    spill.close()


# -- property: random operations through the cache behave like a dict --------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 30), st.integers()),
        st.tuples(st.just("delete"), st.integers(0, 30), st.none()),
        st.tuples(st.just("get"), st.integers(0, 30), st.none()),
        st.tuples(st.just("scan"), st.integers(0, 3), st.none()),
        st.tuples(st.just("commit"), st.none(), st.none()),
        st.tuples(st.just("abort"), st.none(), st.none()),
        st.tuples(st.just("flush-then-put"), st.integers(0, 30), st.integers()),
    ),
    min_size=40,
    max_size=160,
)


def pkey(i: int) -> bytes:
    # groups of 10 keys share a prefix so scans have boundaries to respect
    return state_key("op", b"%d" % (i // 10), b"%02d" % i, "v")


def run_model(
    ops_list: list[tuple[str, Any, Any]], backend: StateBackend, spill: StateBackend | None, bound: int
) -> None:
    store: CachedStore[Any] = CachedStore(backend, max_entries=bound, spill=spill, name="m")
    model: dict[bytes, Any] = {}
    committed: dict[bytes, Any] = {}
    for op, arg, value in ops_list:
        if op == "put":
            store.put(pkey(arg), value)
            model[pkey(arg)] = value
        elif op == "delete":
            store.delete(pkey(arg))
            model.pop(pkey(arg), None)
        elif op == "get":
            assert store.get(pkey(arg), "absent") == model.get(pkey(arg), "absent")
        elif op == "scan":
            prefix = state_key("op", b"%d" % arg, b"", "")[: -len(b"\x00\x01" * 2)]
            expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
            assert list(store.scan_prefix(prefix)) == expected
        elif op in ("commit", "abort"):
            batch = store.flush()
            if op == "commit":
                backend.write_batch(batch.puts, batch.deletes)
                store.commit_flush(batch)
                committed = dict(model)
            else:
                store.abort_flush(batch)
        else:  # a change made while a flush is in flight belongs to the next flush
            batch = store.flush()
            store.put(pkey(arg), value)
            backend.write_batch(batch.puts, batch.deletes)
            store.commit_flush(batch)
            committed = dict(model)
            model[pkey(arg)] = value
        # the durable store only ever holds the last committed state
        assert {k: store.codec.decode(v) for k, v in backend.scan_prefix(b"\x01")} == committed
        if spill is not None:
            assert store.cached_entries <= bound
    assert dict(store.scan_prefix(b"\x01")) == model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(1, 6), st.booleans())
def test_cache_equals_dict_model_memory(
    ops_list: list[tuple[str, Any, Any]], bound: int, with_spill: bool
) -> None:
    run_model(ops_list, MemoryBackend(), MemoryBackend() if with_spill else None, bound)


def test_cache_equals_dict_model_rocksdb(tmp_path: Path) -> None:
    # One real store for all examples (opening RocksDB per example would dominate the run time).
    backend = RocksDBBackend(tmp_path / "db")
    spill = RocksDBBackend.scratch(tmp_path / "spill")

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops, st.integers(1, 6))
    def check(ops_list: list[tuple[str, Any, Any]], bound: int) -> None:
        backend.delete_prefix(b"\x01")  # each example starts from an empty store
        run_model(ops_list, backend, spill, bound)

    try:
        check()
    finally:
        backend.close()
        spill.close()
