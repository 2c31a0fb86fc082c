"""Bounded write-back cache in front of a backend, with a spill area for dirty evictions.

Invariant: **the durable store only ever holds complete checkpoints.** Nothing this cache does
writes to the backend; the caller takes the dirty state with :meth:`CachedStore.flush`, writes it
(together with other operators' batches, source positions and the manifest) in ONE atomic batch
(:meth:`millstream.state.checkpoints.CheckpointStore.commit`), then reports the outcome with
:meth:`CachedStore.commit_flush` or :meth:`CachedStore.abort_flush`. So after ``kill -9`` the backend
is exactly the last checkpoint.

Memory is bounded by ``max_entries`` cached values (decoded Python objects; encoding happens only
on eviction and flush, never per access). When the bound is exceeded the least recently used
entries are evicted in chunks of ``max_entries // 16``:

* clean entries (equal to the backend) are dropped;
* dirty entries are *spilled*: written, in one unsynced batch, to a separate scratch backend
  (``spill``, normally :meth:`millstream.state.rocks.RocksDBBackend.scratch`: its own directory, WAL
  off, deleted on open and close). The spill is never part of a checkpoint and is discarded on
  recovery, so spilled-but-uncheckpointed state can never become visible as committed state; yet
  it stays readable: a cache miss probes the spill before the backend. This is what lets state
  (and the changes between two checkpoints) be much larger than memory.
* without a spill area, dirty entries are not evicted (only clean ones are); the cache then grows
  beyond ``max_entries`` by the number of entries dirtied since the last checkpoint.

Spill generations. Spill keys are ``seg(name) + generation (4 bytes) + key``. ``flush`` freezes the
generations spilled so far and starts a new one, so evictions that happen while a flushed batch is
being written go to the new generation and never disturb the batch being read. Reads probe the
live generations newest first. ``commit_flush`` drops the frozen generations (one range delete
each); ``abort_flush`` keeps them, so nothing is lost when a checkpoint write fails (e.g. ENOSPC)
and the next flush includes everything again.

Cost of a checkpoint: the batch holds every key changed since the previous checkpoint, encoded;
the spilled part is streamed from the spill area into the backend's write batch (RocksDB builds
the batch in native memory, not as Python objects).

Entry states (``_state``, only for entries that are not clean): ``DIRTY`` (changed, not yet in a
flush), ``PENDING`` (captured by the in-flight flush), or a generation number ``g >= 0`` (equal to
what spill generation ``g`` holds). Deletions are cached as a tombstone, so repeated reads of absent
keys and blind deletes cost no backend access.

Mutable values: a value obtained with :meth:`get` and mutated in place is not marked dirty; call
:meth:`put` with it. A value must be encodable by the codec; an unencodable one fails at eviction or
flush (``TypeError`` naming the key) and leaves the cache unchanged. Not thread-safe.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from .backend import StateBackend
from .codecs import MSGPACK, Codec
from .errors import StateCorruptedError, StateError
from .keys import encode_segments

__all__ = ["CachedStore", "FlushBatch"]

V = TypeVar("V")

DIRTY = -1
PENDING = -2

_MISS: Any = object()
_ABSENT: Any = object()  # cached "no value": a clean miss or a dirty delete
_TOMBSTONE = b"\x00"
_VALUE_TAG = b"\x01"


class _Reiterable(Iterable[Any]):
    """An iterable that re-runs a generator function on every ``iter()``."""

    def __init__(self, fn: Callable[[], Iterator[Any]]) -> None:
        self._fn = fn

    def __iter__(self) -> Iterator[Any]:
        return self._fn()


def _tagged(source: Iterable[tuple[bytes, Any]], rank: int) -> Iterator[tuple[bytes, int, Any]]:
    for key, payload in source:
        yield key, rank, payload


def _merge_first(sources: Sequence[Iterable[tuple[bytes, Any]]]) -> Iterator[tuple[bytes, int, Any]]:
    """Merge key-sorted sources; for a key present in several, keep the lowest-rank source's entry."""
    if len(sources) == 1:
        yield from _tagged(sources[0], 0)
        return
    last: bytes | None = None
    # (key, rank) is unique, so payloads are never compared.
    for key, rank, payload in heapq.merge(*[_tagged(s, i) for i, s in enumerate(sources)]):
        if key != last:
            last = key
            yield key, rank, payload


class FlushBatch:
    """The state changes captured by :meth:`CachedStore.flush`, ready for one atomic write.

    ``puts`` and ``deletes`` are re-iterable; iterate them (e.g. pass them to
    ``CheckpointStore.commit``) before calling ``commit_flush``/``abort_flush`` on the store.
    """

    def __init__(
        self,
        store: CachedStore[Any],
        puts: list[tuple[bytes, bytes]],
        deletes: list[bytes],
        captured: set[bytes],
        frozen: tuple[int, ...],
    ) -> None:
        self._store = store
        self._puts = puts
        self._deletes = deletes
        self._captured = captured
        self._finished = False
        self.frozen_generations = frozen
        """Spill generations whose contents belong to this batch."""

    @property
    def in_memory_entries(self) -> int:
        """Entries captured from the cache (the spilled part is counted only by iterating)."""
        return len(self._puts) + len(self._deletes)

    @property
    def puts(self) -> Iterable[tuple[bytes, bytes]]:
        """``(key, encoded value)`` pairs to write."""
        return _Reiterable(self._iter_puts)

    @property
    def deletes(self) -> Iterable[bytes]:
        """Keys to delete."""
        return _Reiterable(self._iter_deletes)

    def materialize(self) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """``(puts, deletes)`` as lists (reads the whole spilled part into memory)."""
        return list(self.puts), list(self.deletes)

    def _spilled(self) -> Iterator[tuple[bytes, bytes]]:
        if self._finished:
            # Its spill generations are gone (commit) or belong to the next flush (abort).
            raise StateError(self._store._backend.path, "this flush batch was already committed or aborted")
        if not self.frozen_generations:
            return
        captured = self._captured
        sources = [self._store._spill_scan(g, b"") for g in reversed(self.frozen_generations)]
        for key, _rank, raw in _merge_first(sources):
            if key not in captured:
                yield key, raw

    def _iter_puts(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self._puts
        for key, raw in self._spilled():
            if raw[:1] == _VALUE_TAG:
                yield key, raw[1:]

    def _iter_deletes(self) -> Iterator[bytes]:
        yield from self._deletes
        for key, raw in self._spilled():
            if raw[:1] == _TOMBSTONE:
                yield key


class CachedStore(Generic[V]):
    """Write-back cache of decoded values over ``backend`` (see the module docstring).

    ``codec`` encodes values for the backend and the spill; ``max_entries`` bounds cached
    entries; ``spill`` is a scratch backend for dirty evictions (None: keep dirty entries in
    memory until flushed); ``name`` separates the spill areas of caches sharing one scratch
    backend (names must differ) and appears in errors.
    """

    def __init__(
        self,
        backend: StateBackend,
        *,
        codec: Codec[V] = MSGPACK,
        max_entries: int = 100_000,
        spill: StateBackend | None = None,
        name: str = "",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._backend = backend
        self._codec = codec
        self._encode = codec.encode
        self._decode = codec.decode
        self._max = max_entries
        self._chunk = max(1, max_entries // 16)
        self._spill = spill
        self._name = name
        self._spill_prefix = encode_segments(name.encode())
        self._cache: OrderedDict[bytes, Any] = OrderedDict()
        self._state: dict[bytes, int] = {}
        self._spill_gens: list[int] = []  # generations holding entries, oldest first
        self._cur_gen = 0
        self._inflight: FlushBatch | None = None
        self.misses = 0
        """Reads that went to the spill area or the backend."""
        self.evictions = 0
        """Entries evicted from memory."""
        self.spilled = 0
        """Entries written to the spill area."""
        if spill is not None:
            spill.delete_prefix(self._spill_prefix)  # leftovers of an earlier cache of this name

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: bytes, default: Any = None) -> V | Any:
        """The value of ``key`` (cache, then spill, then backend), or ``default``."""
        cache = self._cache
        value = cache.get(key, _MISS)
        if value is _MISS:
            value = self._load(key)
        else:
            cache.move_to_end(key)
        return default if value is _ABSENT else value

    def _gen_prefix(self, gen: int) -> bytes:
        return self._spill_prefix + gen.to_bytes(4, "big")

    def _decode_checked(self, key: bytes, raw: bytes, where: str) -> Any:
        try:
            return self._decode(raw)
        except Exception as exc:
            raise StateCorruptedError(
                self._backend.path,
                f"cannot decode {where} value of key {key!r} with codec {self._codec.name}: {exc}",
            ) from exc

    def _load(self, key: bytes) -> Any:
        self.misses += 1
        value: Any = _MISS
        if self._spill_gens:
            spill = self._spill
            assert spill is not None
            for gen in reversed(self._spill_gens):
                raw = spill.get(self._gen_prefix(gen) + key)
                if raw is not None:
                    value = (
                        _ABSENT if raw[:1] == _TOMBSTONE else self._decode_checked(key, raw[1:], "spilled")
                    )
                    self._state[key] = gen
                    break
        if value is _MISS:
            raw = self._backend.get(key)
            value = _ABSENT if raw is None else self._decode_checked(key, raw, "stored")
        self._cache[key] = value
        if len(self._cache) > self._max:
            self._evict()
        return value

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, V]]:
        """``(key, value)`` for every live key under ``prefix`` in key order, as of this call.

        Merges dirty cached entries, the spill and the backend; does not fill the cache. Costs
        O(entries not clean) to collect the dirty part, plus the scan itself.
        """
        cache = self._cache
        dirty = sorted((k, cache[k]) for k, st in self._state.items() if st < 0 and k.startswith(prefix))
        sources: list[Iterable[tuple[bytes, Any]]] = [dirty]
        for gen in reversed(self._spill_gens):
            sources.append(self._spill_scan(gen, prefix))
        sources.append(self._backend.scan_prefix(prefix))
        return self._scan(sources)

    def _scan(self, sources: Sequence[Iterable[tuple[bytes, Any]]]) -> Iterator[tuple[bytes, V]]:
        backend_rank = len(sources) - 1
        for key, rank, payload in _merge_first(sources):
            if rank == 0:
                if payload is not _ABSENT:
                    yield key, payload
            elif rank == backend_rank:
                yield key, self._decode_checked(key, payload, "stored")
            elif payload[:1] == _VALUE_TAG:
                yield key, self._decode_checked(key, payload[1:], "spilled")

    def _spill_scan(self, gen: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        spill = self._spill
        assert spill is not None
        gen_prefix = self._gen_prefix(gen)
        # The spill iterator is created now (not at first next()), so the scan is a cut as of
        # this call even if the caller writes (and evicts) before iterating.
        source = spill.scan_prefix(gen_prefix + prefix)
        cut = len(gen_prefix)
        return ((skey[cut:], raw) for skey, raw in source)

    # -- writes ------------------------------------------------------------------------------

    def put(self, key: bytes, value: V) -> None:
        """Set ``key`` to ``value`` (in memory; durable with the next committed flush)."""
        cache = self._cache
        cache[key] = value
        cache.move_to_end(key)
        self._state[key] = DIRTY
        if len(cache) > self._max:
            self._evict()

    def delete(self, key: bytes) -> None:
        """Delete ``key`` (a cached tombstone; durable with the next committed flush)."""
        cache = self._cache
        cache[key] = _ABSENT
        cache.move_to_end(key)
        self._state[key] = DIRTY
        if len(cache) > self._max:
            self._evict()

    def delete_prefix(self, prefix: bytes) -> int:
        """Delete every live key under ``prefix``; returns how many were deleted."""
        keys = [k for k, _ in self.scan_prefix(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def _evict(self) -> None:
        cache = self._cache
        state = self._state
        excess = len(cache) - self._max + self._chunk - 1
        excess = min(excess, len(cache) - 1)  # never evict the entry just touched
        if excess <= 0:
            return
        if self._spill is None:
            self._evict_clean_only(excess)
            return
        victims = list(itertools.islice(cache.items(), excess))
        gen_prefix = self._gen_prefix(self._cur_gen)
        writes: list[tuple[bytes, bytes]] = []
        for key, value in victims:
            st = state.get(key)
            if st is not None and st < 0:
                if value is _ABSENT:
                    writes.append((gen_prefix + key, _TOMBSTONE))
                else:
                    try:
                        encoded = self._encode(value)
                    except Exception as exc:
                        raise TypeError(
                            f"state value of key {key!r} cannot be encoded with codec {self._codec.name}: {exc}"
                        ) from exc
                    writes.append((gen_prefix + key, _VALUE_TAG + encoded))
        if writes:
            self._spill.write_batch(writes, (), sync=False)
            if not self._spill_gens or self._spill_gens[-1] != self._cur_gen:
                self._spill_gens.append(self._cur_gen)
            self.spilled += len(writes)
        # Only now, with the spill written, drop the victims from memory.
        for key, _ in victims:
            del cache[key]
            state.pop(key, None)
        self.evictions += len(victims)

    def _evict_clean_only(self, excess: int) -> None:
        cache = self._cache
        state = self._state
        clean = len(cache) - len(state)
        target = min(excess, clean)
        if target <= 0:
            return
        evicted = 0
        dirty_seen: list[bytes] = []
        for key in cache:
            if key in state:
                dirty_seen.append(key)
                continue
            evicted += 1
            if evicted >= target:
                break
        # Dirty entries cannot leave memory without a spill area: move them behind the clean
        # ones so the next eviction does not walk past them again.
        for key in dirty_seen:
            cache.move_to_end(key)
        for _ in range(target):
            key, _value = cache.popitem(last=False)
            assert key not in state
        self.evictions += target

    # -- checkpoints -------------------------------------------------------------------------

    def flush(self) -> FlushBatch:
        """Capture every change since the last committed flush as a :class:`FlushBatch`.

        The store stays usable while the batch is written; later changes go into the next flush.
        Exactly one flush may be in flight: finish it with :meth:`commit_flush` (after the batch is
        durable) or :meth:`abort_flush` (the write failed; everything stays dirty).
        """
        if self._inflight is not None:
            raise StateError(self._backend.path, f"cache {self._name!r}: a flush is already in flight")
        cache = self._cache
        encode = self._encode
        puts: list[tuple[bytes, bytes]] = []
        deletes: list[bytes] = []
        captured: set[bytes] = set()
        state = self._state
        try:
            # Values (not keys) change during the iteration, which dicts allow.
            for key, st in state.items():
                if st == DIRTY:
                    value = cache[key]
                    if value is _ABSENT:
                        deletes.append(key)
                    else:
                        puts.append((key, encode(value)))
                    state[key] = PENDING
                    captured.add(key)
        except Exception as exc:
            for done in captured:
                state[done] = DIRTY
            raise TypeError(
                f"state value of key {key!r} cannot be encoded with codec {self._codec.name}: {exc}"
            ) from exc
        frozen = tuple(self._spill_gens)
        if frozen:
            self._cur_gen += 1
        batch = FlushBatch(self, puts, deletes, captured, frozen)
        self._inflight = batch
        return batch

    def _check_inflight(self, batch: FlushBatch) -> None:
        if batch is not self._inflight:
            raise StateError(self._backend.path, f"cache {self._name!r}: this batch is not the one in flight")

    def commit_flush(self, batch: FlushBatch) -> None:
        """The batch is durable in the backend: captured entries become clean, spill is dropped."""
        self._check_inflight(batch)
        frozen = set(batch.frozen_generations)
        state = self._state
        for key, st in list(state.items()):
            if st == PENDING or st in frozen:
                del state[key]
        self._spill_gens = [g for g in self._spill_gens if g not in frozen]
        self._inflight = None
        batch._finished = True
        if frozen:
            assert self._spill is not None
            for gen in sorted(frozen):
                self._spill.delete_prefix(self._gen_prefix(gen))
        if len(self._cache) > self._max:
            self._evict()

    def abort_flush(self, batch: FlushBatch) -> None:
        """The batch was not written: its entries stay dirty and are included in the next flush."""
        self._check_inflight(batch)
        state = self._state
        for key in batch._captured:
            if state.get(key) == PENDING:
                state[key] = DIRTY
        self._inflight = None
        batch._finished = True

    # -- introspection -----------------------------------------------------------------------

    @property
    def cached_entries(self) -> int:
        """Entries held in memory (clean, dirty and tombstones)."""
        return len(self._cache)

    @property
    def max_entries(self) -> int:
        """The configured bound."""
        return self._max

    @property
    def codec(self) -> Codec[V]:
        """The value codec."""
        return self._codec

    def stats(self) -> dict[str, int]:
        """Counters for metrics: cached, not-clean, spill generations, misses, evictions, spilled."""
        return {
            "cached_entries": len(self._cache),
            "unflushed_cached_entries": len(self._state),
            "spill_generations": len(self._spill_gens),
            "misses": self.misses,
            "evictions": self.evictions,
            "spilled": self.spilled,
        }
