"""Incremental checkpoints and bounded memory for the windowed reducer (one `ReducerState` per ReducerNode).

The reducer (`windowing.reduce_fn_runner`, `windowing.fast`) owns its state and exposes it through its state
interface; this module is the store side of it: the records' namespaces, the node's `StateTier`, what is
in the store or the spill area, so a checkpoint writes only what changed and the entries held in memory
stay within ``--state_cache_entries``. The interface, the records, what is dirty, the eviction order and
how timers of evicted state are indexed are in docs/state.md ("The reducer's state interface" and
"The reducer's records").
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from millstream.engine.runtime.checkpoint.versioned_store import ABSENT, StateTier
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer
from millstream.engine.runtime.windowing.reducer_capabilities import FiredWindowStore, SlicedContainers
from millstream.state.keys import encode_i64

__all__ = ["FORMAT", "ReducerCapture", "ReducerState"]

FORMAT = 2

_SLOT = b"s"
_BUCKET = b"b"
_FIRED = b"f"
_KEY = b"k"


def _window_ns(kind: bytes, w: tuple[int, int]) -> bytes:
    return kind + encode_i64(w[1]) + encode_i64(w[0])


class _Bloom:
    """An approximate set of keys (no false negatives, about 1% false positives) that grows by adding filters
    (each 4x the previous one; two bit probes per key, 20 bits per key).

    Lists the keys of a slot or bucket that were ever written to the store or the spill area, so that a
    key arriving after the slot's first eviction is probed in the store only if it may have a stored part
    (a few bytes per key).
    """

    __slots__ = ("_filters", "_count", "_capacity", "_bit_array", "_bits")

    def __init__(self, capacity: int = 1024) -> None:
        self._filters: list[tuple[bytearray, int]] = []
        self._count = 0
        self._capacity = capacity // 4
        self._grow()

    def _grow(self) -> None:
        self._capacity *= 4
        self._bits = self._capacity * 20
        self._bit_array = bytearray((self._bits + 7) // 8)
        self._filters.append((self._bit_array, self._bits))
        self._count = 0

    def add(self, key: Any) -> None:
        """Add `key` (hashable)."""
        if self._count >= self._capacity:
            self._grow()
        self._count += 1
        arr, m = self._bit_array, self._bits
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        b = h % m
        arr[b >> 3] |= 1 << (b & 7)
        b = (h >> 23) % m
        arr[b >> 3] |= 1 << (b & 7)

    def __contains__(self, key: Any) -> bool:
        h = hash(key) & 0xFFFFFFFFFFFFFFFF
        g = h >> 23
        for arr, m in self._filters:
            b = h % m
            if arr[b >> 3] & (1 << (b & 7)):
                b = g % m
                if arr[b >> 3] & (1 << (b & 7)):
                    return True
        return False


class ReducerCapture:
    """One checkpoint's part of a reducer: header, changed entries, deletions (see `ReducerState.capture`)."""

    def __init__(
        self,
        owner: ReducerState,
        header: Any,
        entries: list[Any],
        encoded: list[Any],
        deletes: list[bytes],
        undo: dict[str, Any],
    ) -> None:
        self.owner = owner
        self.header = header
        #: Changed entries, flat: namespace, user key, value, namespace, ...
        self.entries = entries
        #: Changed per-key records, flat, values already encoded.
        self.encoded = encoded
        #: Logical keys of deleted entries.
        self.deletes = deletes
        self._undo = undo

    def aborted(self) -> None:
        """The checkpoint was not written: everything captured is dirty again."""
        self.owner._undo(self._undo)

    def release(self) -> None:
        """The checkpoint was written: drop what was kept for `aborted`."""
        self._undo = {"all": True}


class ReducerState:
    """The store side of one reducer's state: capture, eviction, reload and restore (module docstring)."""

    def __init__(self, reducer: Reducer, tier: StateTier) -> None:
        self.reducer = reducer
        self.tier = tier
        self.bound = max(0, tier.cache_entries)
        self.low = self.bound - max(1, self.bound // 16) if self.bound else 0
        #: the parts of the state interface beyond the keyed state, when the reducer has them (the fast paths)
        self.fired: FiredWindowStore | None = reducer if isinstance(reducer, FiredWindowStore) else None
        self.sliced: SlicedContainers | None = reducer if isinstance(reducer, SlicedContainers) else None
        self.key_prefix = tier.ns_prefix(_KEY)
        #: container id -> keys in memory known to include their stored part (for evicted containers)
        self.complete: dict[Any, set[Any]] = {}
        #: containers with entries in the store or the spill
        self.stored_ns: set[Any] = set()
        #: container id -> the keys it ever wrote (absent: restored, any key may be stored)
        self.written: dict[Any, _Bloom] = {}
        self.stored_fired: set[Any] = set()
        #: everything in memory counts as changed (after a failed checkpoint write)
        self.all_dirty = False
        #: Entries moved out of memory (changed ones were written to the spill area, the others dropped).
        self.evicted = 0
        #: How many entries may be added before the bound is reached, as of the last count (`maybe_evict`).
        self._room = 0
        self._estimate = 0
        self._estimated_at = -1e9
        #: The write-ahead pass in progress (`ahead_begin`): the keys of each container and the per-key
        #: candidates as they were when it began, walked in slices from `_plan_pos`.
        self._plan: list[tuple[Any, list[Any]]] = []
        self._plan_pos = (0, 0)
        #: The pass in progress began while nothing changes the state (`ahead_begin` with `quiet`), and
        #: `_quiet_done`: it reached its end before anything changed, so no slot/bucket entry in memory is
        #: changed until the state changes again (`sources_resumed`): `capture` skips its walk over them.
        self._quiet_pass = self._quiet_done = False
        reducer.track_changes(self)

    # -- namespaces ------------------------------------------------------------------------------------
    @staticmethod
    def _ns(nid: Any) -> bytes:
        # slots are numbered, buckets are windows
        if isinstance(nid, int):
            return _SLOT + encode_i64(nid)
        return _window_ns(_BUCKET, nid)

    def _key_record_key(self, key: Any) -> bytes:
        return self.tier.entry_key(_KEY, self.tier.encode_key(key))

    # -- memory bound ----------------------------------------------------------------------------------
    def hot_entries(self) -> int:
        """Entries held in memory: slot/bucket entries, fired entries, keys with per-key state."""
        return self.reducer.entries_in_memory()

    def hot_estimate(self) -> int:
        """`hot_entries` as of at most 0.2 s ago (a count goes over every slot, bucket and fired window; the
        write-ahead asks at every tick)."""
        now = time.monotonic()
        if now - self._estimated_at > 0.2:
            self._estimate = self.hot_entries()
            self._estimated_at = now
        return self._estimate

    def maybe_evict(self, elements: int | None = None) -> None:
        """Evict down to 15/16 of the bound when the entries in memory exceed it (called between calls).

        `elements`: the call only took that many elements and fired nothing, so the entries grew by at most
        ``elements * reducer.entries_per_element()``; the count (over every slot, bucket and fired window:
        thousands of them in a year of hourly windows) is then skipped while that cannot reach the bound.
        """
        if not self.bound:
            return
        if elements is not None and self._room > 0:
            per = self.reducer.entries_per_element()
            if per is not None:
                self._room -= elements * per
                if self._room > 0:
                    if self.reducer.pending_changes() > self.bound:
                        self._spill_deleted()
                    return
        n = self.hot_entries()
        if n > self.bound:
            self.evict(n - self.low)
            n = self.hot_entries()
        self._room = self.bound - n
        self._estimate, self._estimated_at = n, time.monotonic()
        if self.reducer.pending_changes() > self.bound:
            self._spill_deleted()

    def evict(self, n: int) -> int:
        """Move about `n` entries out of memory; returns how many."""
        done = self._evict_fired(n) if self.fired is not None else 0
        if done < n:
            done += self._evict_keys(n - done)
        if done < n and self.sliced is not None:
            done += self._evict_containers(n - done)
        self.evicted += done
        return done

    def _evict_fired(self, n: int) -> int:
        r = self.fired
        assert r is not None
        tier = self.tier
        puts: list[tuple[bytes, Any]] = []
        done = 0
        for w, d in r.fired_entries().items():
            if not d:
                continue
            dirty = self.all_dirty or r.fired_is_new(w)
            ns = _window_ns(_FIRED, w)
            for key in list(itertools.islice(d, n - done)):
                acc = d.pop(key)
                if dirty:
                    puts.append((tier.entry_key(ns, tier.encode_key(key)), acc))
                done += 1
            r.fired_evicted(w)
            if dirty:
                self.stored_fired.add(w)
            if done >= n:
                break
        tier.evict(puts)
        return done

    def _evict_keys(self, n: int) -> int:
        r = self.reducer
        victims: list[Any] = []
        seen: set[Any] = set()
        for src in r.evictable_keys():
            for key in src:
                if key not in seen:
                    seen.add(key)
                    victims.append(key)
                    if len(victims) >= n:
                        break
            if len(victims) >= n:
                break
        puts: list[tuple[bytes, Any]] = []
        done = 0
        for key in victims:
            held, record = r.evict_key(key, self.all_dirty)
            done += held
            if record is not None:
                puts.append((self._key_record_key(key), record))
        self.tier.evict(puts)
        return done

    def _spill_deleted(self) -> None:
        """Deleted keys pile up between checkpoints: move their deletions to the spill area."""
        gone = self.reducer.take_deleted_keys()
        self.tier.evict((), [self._key_record_key(k) for k in gone])

    def _evict_containers(self, n: int) -> int:
        r = self.sliced
        assert r is not None
        tier = self.tier
        conts, accs_all = r.containers()
        fds = r.folded_keys()
        puts: list[tuple[bytes, Any]] = []
        done = 0
        for nid in sorted(conts):
            d = conts[nid]
            if not d:
                continue
            accs = accs_all.get(nid)
            fd = fds.get(nid)
            cold = r.container_evicted(nid)
            comp = self.complete.get(nid)
            ns = self._ns(nid)
            written = self.written.get(nid)
            if written is None and not cold:  # its first eviction (a restored slot has no filter)
                written = self.written[nid] = _Bloom()
            for key in list(itertools.islice(d, n - done)):
                vals = d.pop(key)
                acc = accs.pop(key, None) if accs is not None else None
                done += 1
                dirty = self.all_dirty or bool(vals) or (fd is not None and key in fd)
                if fd is not None:
                    fd.discard(key)
                # an entry that does not include its stored part, if it may have one (evicted before)
                probe = not (not cold or (comp is not None and key in comp)) and (
                    written is None or key in written
                )
                if comp is not None:
                    comp.discard(key)
                if written is not None:
                    written.add(key)
                if not dirty:
                    continue  # the store holds this value
                value = r.fold(acc, vals)
                lkey = tier.entry_key(ns, tier.encode_key(key))
                if probe:
                    base, _ = tier.take(lkey)
                    if base is not ABSENT:
                        value = r.merge_stored(base, value)
                puts.append((lkey, value))
            if not cold:
                r.evict_container(nid)
                self.complete[nid] = set(d)  # what stays in memory is complete
            self.stored_ns.add(nid)
            if done >= n:
                break
        tier.evict(puts)
        return done

    # -- hooks called by the reducer -------------------------------------------------------------------
    def fetch_key(self, key: Any) -> tuple[bool, Any, bool]:
        """An evicted key's record: (found, record, changed since the last checkpoint)."""
        value, dirty = self.tier.take(self._key_record_key(key))
        if value is ABSENT:
            return False, None, False
        return True, value, bool(dirty)

    def drain_cold(
        self, nid: Any, d: dict[Any, list[Any]], accs: dict[Any, Any] | None
    ) -> Iterator[tuple[Any, Any]]:
        """A dying slot/bucket fires: ``(key, accumulator)`` of every key with a stored part, merged with its
        in-memory part (which is removed from `d`/`accs`; keys left in `d` are complete)."""
        r = self.sliced
        assert r is not None
        comp = self.complete.get(nid, set())
        for key, base in self._stored_entries(nid):
            if key in d:
                if key in comp:
                    continue  # the in-memory entry includes its stored part
                vals = d.pop(key)
                acc = accs.pop(key, None) if accs is not None else None
                yield key, r.merge_stored(base, r.fold(acc, vals))
            else:
                yield key, base

    def cold_parts(self, nid: Any) -> Iterator[tuple[Any, Any]]:
        """The stored parts of a live slot's entries that the in-memory entries do not include."""
        comp = self.complete.get(nid, set())
        for key, base in self._stored_entries(nid):
            if key not in comp:
                yield key, base

    def _stored_entries(self, nid: Any) -> Iterator[tuple[Any, Any]]:
        """``(key, stored part)`` of every entry of container `nid` in the store or the spill area."""
        tier = self.tier
        prefix = tier.ns_prefix(self._ns(nid))
        plen = len(prefix)
        for lkey, base, _ in tier.scan(prefix):
            yield tier.split_key(lkey, plen), base

    def ns_dead(self, nid: Any) -> None:
        """A slot/bucket fired its last window."""
        self.complete.pop(nid, None)
        self.written.pop(nid, None)
        if nid in self.stored_ns:
            self.stored_ns.discard(nid)
            self.tier.kill(self.tier.ns_prefix(self._ns(nid)))

    def fired_dead(self, w: Any) -> None:
        """A fired window expired."""
        if w in self.stored_fired:
            self.stored_fired.discard(w)
            self.tier.kill(self.tier.ns_prefix(_window_ns(_FIRED, w)))

    def take_fired(self, w: Any, key: Any) -> tuple[bool, Any]:
        """Late data for an evicted fired entry: its accumulator, if it has one."""
        tier = self.tier
        value, _ = tier.take(tier.entry_key(_window_ns(_FIRED, w), tier.encode_key(key)))
        if value is ABSENT:
            return False, None
        return True, value

    # -- writing hot entries ahead (between checkpoints, on the event loop) ------------------------------
    def changed_bound(self, elements: int) -> int:
        """At most how many entries in memory changed since the reducer took the last `elements` elements
        (those it held before were all written): each element changes at most
        `Reducer.entries_per_element` of them (without that bound: every entry in memory), and timers change
        only per-key records, which the reducer counts (`pending_changes`)."""
        hot = self.hot_entries()
        if self.all_dirty:
            return hot
        per = self.reducer.entries_per_element()
        changed = hot if per is None else min(hot, elements * per)
        return changed + self.reducer.pending_changes()

    def ahead_begin(self, quiet: bool = False) -> int:
        """Start a write-ahead pass over the entries in memory: list the keys of every slot/bucket and the
        keys with a changed per-key record (the pass writes those still changed when it reaches them);
        returns how many. Not after a failed checkpoint write (everything is changed then: left to the next
        checkpoint). Fired windows' entries are left to the checkpoint. With `quiet` (sources paused and
        drained, `IncrementalNodes.catch_up`), only the keys changed now are listed (buffered values, or
        folded since the last capture): those that change later count as elements taken after the pass
        began, as for any pass (`changed_bound`)."""
        self._plan = []
        self._plan_pos = (0, 0)
        self._quiet_pass = quiet and self.sliced is not None
        self._quiet_done = False
        if self.all_dirty:
            return 0
        if self.sliced is not None:
            conts = self.sliced.containers()[0]
            if quiet:
                fds = self.sliced.folded_keys()
                for nid, d in conts.items():
                    changed = [k for k, vals in d.items() if vals]  # a comprehension: ~1M keys in a pause
                    fd = fds.get(nid)
                    if fd:
                        changed.extend(k for k in fd if k in d)  # (visited twice: written once)
                    if changed:
                        self._plan.append((nid, changed))
            else:
                self._plan = [(nid, list(d)) for nid, d in conts.items() if d]
        keys = self.reducer.ahead_keys()
        if keys:
            self._plan.append((_KEY, keys))
        return sum(len(keys) for _, keys in self._plan)

    def sources_resumed(self) -> None:
        """The state may change again: a quiet pass (`ahead_begin`) no longer says that nothing is changed
        (it goes on as an ordinary pass)."""
        self._quiet_pass = self._quiet_done = False

    def ahead_take(self, budget: int) -> tuple[list[Any], list[Any], list[bytes]] | None:
        """The next slice of the pass: up to `budget` changed entries ``(entries, encoded, deletions)`` as a
        checkpoint captures them, now marked unchanged (the caller writes them ahead of the coming
        checkpoint); None when the pass is over."""
        plan = self._plan
        i, pos = self._plan_pos
        if i >= len(plan) or self.all_dirty:
            self._plan = []
            self._quiet_done = self._quiet_pass and not self.all_dirty
            return None
        items: list[Any] = []
        encoded: list[Any] = []
        deletes: list[bytes] = []
        seen = 0
        while i < len(plan) and seen < budget:
            nid, keys = plan[i]
            chunk = keys[pos : pos + budget - seen]
            seen += len(chunk)
            if nid is _KEY:
                self._ahead_keys(chunk, encoded, deletes)
            else:
                self._ahead_container(nid, chunk, items)
            pos += len(chunk)
            if pos >= len(keys):
                i, pos = i + 1, 0
        self._plan_pos = (i, pos)
        return items, encoded, deletes

    def _ahead_container(self, nid: Any, keys: list[Any], items: list[Any]) -> None:
        """`_capture_containers` for `keys` of one slot/bucket (those still in memory and changed)."""
        r = self.sliced
        assert r is not None
        conts, accs_all = r.containers()
        d = conts.get(nid)
        if not d:
            return  # fired (or evicted) since the pass began
        accs = accs_all.get(nid)
        if accs is None:
            accs = accs_all[nid] = {}
        fd = r.folded_keys().get(nid)
        tier = self.tier
        fold = r.fold
        reconcile = self.complete.get(nid) if r.container_evicted(nid) else None
        written = self.written.get(nid)
        ns = self._ns(nid)
        n = len(items)
        for key in keys:
            vals = d.get(key)
            if vals is None:
                continue
            if vals:
                acc = fold(accs.get(key), vals)
                vals.clear()
            elif fd is not None and key in fd:
                acc = accs.get(key)
                if acc is None:
                    acc = r.empty_accumulator()
            else:
                continue
            if fd is not None:
                fd.discard(key)
            if reconcile is not None and key not in reconcile:
                if written is None or key in written:
                    base, _ = tier.take(tier.entry_key(ns, tier.encode_key(key)))
                    if base is not ABSENT:
                        acc = r.merge_stored(base, acc)
                reconcile.add(key)
            accs[key] = acc
            items.append(ns)
            items.append(key)
            items.append(acc)
        if len(items) > n:
            self.stored_ns.add(nid)

    def _ahead_keys(self, keys: list[Any], encoded: list[Any], deletes: list[bytes]) -> None:
        """`_capture_keys` for those of `keys` still recorded as changed."""
        r = self.reducer
        tier = self.tier
        encode = tier.encode_value
        written = []
        for key in r.take_changed(keys):
            record = r.key_record(key)
            lkey = self._key_record_key(key)
            written.append(lkey)
            if record is None:
                deletes.append(lkey)
            else:
                encoded.append(_KEY)
                encoded.append(key)
                encoded.append(encode(record))
        if written and tier.spilled:
            # the spill can hold a deletion of a key in memory (`_spill_deleted`, before the key got state again):
            # reads and the checkpoint take the spill first, so it goes now that a newer record is in the store
            tier.spill.backend.write_batch((), written, sync=False)

    # -- checkpoints -----------------------------------------------------------------------------------
    def capture(self) -> ReducerCapture:
        """What changed since the last capture (the caller writes it, then calls `aborted` on failure)."""
        self._plan = []  # the checkpoint writes whatever the pass did not reach
        items: list[Any] = []
        encoded: list[Any] = []
        deletes: list[bytes] = []
        undo: dict[str, Any] = {"all": self.all_dirty}
        if self.sliced is not None:
            if self._quiet_done:  # a quiet pass wrote every changed slot/bucket entry ahead just now
                self.sliced.folded_keys().clear()
            else:
                self._capture_containers(items)
        self.sources_resumed()
        if self.fired is not None:
            undo["fired"] = self._capture_fired(items, deletes)
        undo["keys"] = self._capture_keys(encoded, deletes)
        header = self._header()
        self.all_dirty = False
        return ReducerCapture(self, header, items, encoded, deletes, undo)

    def _capture_containers(self, items: list[Any]) -> None:
        r = self.sliced
        assert r is not None
        tier = self.tier
        fold = r.fold
        conts, accs_all = r.containers()
        fds = r.folded_keys()
        all_dirty = self.all_dirty
        append = items.append
        for nid, d in conts.items():
            accs = accs_all.get(nid)
            if accs is None:
                accs = accs_all[nid] = {}
            fd = fds.get(nid) or ()
            reconcile = self.complete.get(nid) if r.container_evicted(nid) else None
            written = self.written.get(nid)  # keys evicted from the slot (none: restored, probe every key)
            ns = self._ns(nid)
            n = len(items)
            for key, vals in d.items():
                if vals:
                    acc = fold(accs.get(key), vals)
                    vals.clear()  # folded (in place: no new objects for the collector)
                elif all_dirty or key in fd:
                    acc = accs.get(key)
                    if acc is None:
                        acc = r.empty_accumulator()
                else:
                    continue
                if reconcile is not None and key not in reconcile:
                    if written is None or key in written:
                        base, _ = tier.take(tier.entry_key(ns, tier.encode_key(key)))
                        if base is not ABSENT:
                            acc = r.merge_stored(base, acc)
                    reconcile.add(key)
                accs[key] = acc
                append(ns)
                append(key)
                append(acc)
            if len(items) > n:
                self.stored_ns.add(nid)
        fds.clear()

    def _capture_fired(self, items: list[Any], deletes: list[bytes]) -> Any:
        r = self.fired
        assert r is not None
        tier = self.tier
        fired = r.fired_entries()
        new, gone = r.take_fired_changes(self.all_dirty)
        for w in new:
            d = fired.get(w)
            if d:
                ns = _window_ns(_FIRED, w)
                for key, acc in d.items():
                    items.append(ns)
                    items.append(key)
                    items.append(acc)
                self.stored_fired.add(w)
        for w, key in gone:
            if w in fired and w not in new:
                deletes.append(tier.entry_key(_window_ns(_FIRED, w), tier.encode_key(key)))
        return new, gone

    def _capture_keys(self, encoded: list[Any], deletes: list[bytes]) -> dict[Any, None]:
        r = self.reducer
        dirty = r.changed_keys(self.all_dirty)
        encode = self.tier.encode_value
        for key in dirty:
            record = r.key_record(key)
            if record is None:
                deletes.append(self._key_record_key(key))
            else:
                encoded.append(_KEY)
                encoded.append(key)
                encoded.append(encode(record))  # now: the record's lists need not live on
        return dirty

    def _undo(self, undo: dict[str, Any]) -> None:
        # the captured slot/bucket entries are not listed: after a failed write (which ends the job anyway)
        # everything in memory counts as changed
        self.all_dirty = True
        if "fired" in undo and self.fired is not None:
            new, gone = undo["fired"]
            self.fired.restore_fired_changes(new, gone)
        self.reducer.mark_changed(undo["keys"])

    def _header(self) -> dict[str, Any]:
        h = self.reducer.state_header()
        h["format"] = FORMAT
        return h

    # -- restore ---------------------------------------------------------------------------------------
    def restore(self, header: dict[str, Any]) -> None:
        """Load a checkpoint: the header now, per-key state up to the bound (the rest indexed), entries lazily."""
        r = self.reducer
        if header.get("format") != FORMAT:
            raise ValueError(f"unknown reducer state format {header.get('format')!r}")
        r.load_state_header(header)
        self._plan = []
        self.complete = {}
        self.stored_ns = set()
        self.written = {}
        self.all_dirty = False
        if self.fired is not None:
            self.stored_fired = set(self.fired.fired_entries())
        if self.sliced is not None:
            conts = self.sliced.containers()[0]
            self.complete = {nid: set() for nid in conts}
            self.stored_ns = set(conts)
        self._restore_keys()
        r.finish_restore()

    def _restore_keys(self) -> None:
        r = self.reducer
        tier = self.tier
        room = max(0, self.bound - self.hot_entries()) if self.bound else -1  # -1: no bound
        plen = len(self.key_prefix)
        for lkey, record, _ in tier.scan(self.key_prefix):
            key = tier.split_key(lkey, plen)
            if room != 0:
                room -= 1
                r.restore_key(key, record, in_memory=True)
            else:
                r.restore_key(key, record, in_memory=False)

    def stats(self) -> dict[str, int]:
        """Counters for tests and metrics."""
        out = dict(self.tier.stats())
        out["spilled"] = out.pop("evicted")
        out["evicted"] = self.evicted
        out["hot_entries"] = self.hot_entries()
        out["cold_keys"] = self.reducer.evicted_keys()
        return out
