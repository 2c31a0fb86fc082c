"""Incremental checkpoints and bounded memory for the windowed reducer (one `ReducerState` per ReducerNode).

The reducer (`windowing.reduce_fn_runner`, `windowing.fast.sliced`, `windowing.fast.sessions`) keeps its state in Python structures; this module
adds, through a few hooks in them, what a durable job needs: per-entry dirty tracking, so a checkpoint
writes only what changed, and eviction of cold entries to the node's `StateTier`, so the entries held in
memory stay within ``--state_cache_entries``.

Records (see `checkpoint.versioned_store` for versions, the spill area and garbage collection):

* the header (every checkpoint): class and strategy, watermark, processing time, drop counters, next
  timer id, the live slots (SlotReducer) or buckets (BucketReducer), the fired windows kept for late
  data, SlotReducer's next window;
* ``s`` + slot and ``b`` + window entries, one per (slot or bucket, key): the accumulator of that key's
  values in it;
* ``f`` + window entries, one per (fired window, key): the accumulator kept for late data;
* ``k`` entries, one per key: ``[general state, open sessions, fired sessions]`` (the general path's
  windows and timers as `windowing.snapshot.encode_key_state` writes them; SessionReducer's sessions).

What is dirty (written at the next checkpoint): a slot/bucket entry whose value buffer is not empty or
that was folded since (``_fold_dirty``); the entries of a window fired since (``_fired_new``) and the
deletion of fired entries taken by late data (``_fired_gone``); a key whose general state or sessions
changed (``_kdirty``, plus sessions with buffered values). Keys whose state is gone are written as
deletions. Slots, buckets and fired windows that die are dropped as a whole (`StateTier.kill`).

Eviction, when the entries in memory exceed the bound (down to 15/16 of it): fired-window entries first,
then per-key state, then slot/bucket entries, oldest first. A changed entry goes to the spill area, an
unchanged one is just dropped. What brings them back:

* slot/bucket entries are never loaded singly: an element for an evicted (slot, key) starts a fresh
  in-memory buffer (the hot path is unchanged), and the stored part is merged in when the entry is
  written (checkpoint or eviction: one read) or when its window fires (one range scan of the slot). Keys
  of such a slot known to include their stored part are listed in ``complete``; a Bloom filter per slot
  of the keys it ever wrote (``written``, a few bytes per key) spares that read for keys that are new
  (slots restored from a checkpoint have none: every key is probed);
* fired entries are read when late data for their window arrives;
* per-key state comes back whole when the key gets an element, or a timer, session end, window expiry
  or hold of it is due.

Timers of evicted state: a compact index stays in memory rather than timers being stored ordered by time
and scanned. Fixed, sliding and global windows (default trigger) have one timer per slot or window, not per
key, so their index is O(windows) however many keys; per-key timers (sessions, other triggers, late data)
keep their heap entries (about 100 bytes each) and a small tuple per evicted key in ``Reducer._cold``
(earliest gc time, hold, session end, fired-session expiry). Why: firing and the output-watermark hold
(evaluated every bundle) then need no I/O and stay exact, and eviction costs no extra index writes. The
price is O(keys with per-key timers) of memory for those strategies.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

from millstream.engine.runtime.checkpoint.versioned_store import ABSENT, StateTier
from millstream.engine.runtime.windowing.fast.sessions import SessionReducer
from millstream.engine.runtime.windowing.fast.sliced import BucketReducer, FastReducerBase, SlotReducer
from millstream.engine.runtime.windowing.reduce_fn_runner import KeyState, Reducer
from millstream.engine.runtime.windowing.snapshot import (
    check_strategy,
    decode_key_state,
    encode_key_state,
    strategy,
)
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

    __slots__ = ("_filters", "_count", "_capacity", "_arr", "_m")

    def __init__(self, capacity: int = 1024) -> None:
        self._filters: list[tuple[bytearray, int]] = []
        self._count = 0
        self._capacity = capacity // 4
        self._grow()

    def _grow(self) -> None:
        self._capacity *= 4
        self._m = self._capacity * 20
        self._arr = bytearray((self._m + 7) // 8)
        self._filters.append((self._arr, self._m))
        self._count = 0

    def add(self, key: Any) -> None:
        """Add `key` (hashable)."""
        if self._count >= self._capacity:
            self._grow()
        self._count += 1
        arr, m = self._arr, self._m
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

    def __init__(self, owner: ReducerState, header: Any, entries: list[Any], encoded: list[Any],
                 deletes: list[bytes], undo: dict[str, Any]) -> None:
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
    """Dirty tracking, eviction, reload, capture and restore of one reducer's state (module docstring)."""

    def __init__(self, reducer: Reducer, tier: StateTier) -> None:
        r = reducer
        self.r = r
        self.tier = tier
        self.bound = max(0, tier.cache_entries)
        self.low = self.bound - max(1, self.bound // 16) if self.bound else 0
        self.slot = isinstance(r, SlotReducer)
        self.bucket = isinstance(r, BucketReducer)
        self.session = isinstance(r, SessionReducer)
        self.fast = isinstance(r, FastReducerBase)
        self.kprefix = tier.ns_prefix(_KEY)
        #: container id -> keys in memory known to include their stored part (for containers in _cold_ns)
        self.complete: dict[Any, set[Any]] = {}
        #: containers / fired windows with entries in the store or the spill
        self.stored_ns: set[Any] = set()
        #: container id -> the keys it ever wrote (absent: restored, any key may be stored)
        self.written: dict[Any, _Bloom] = {}
        self.stored_fired: set[Any] = set()
        #: everything in memory counts as changed (after restoring a whole-state snapshot)
        self.all_dirty = False
        self._dead_windows = 0
        #: Entries moved out of memory (changed ones were written to the spill area, the others dropped).
        self.evicted = 0
        r._tiered = self
        r._kdirty = set()
        if isinstance(r, FastReducerBase):
            r._fold_dirty = {}
            r._fired_new = set()
            r._fired_gone = []

    # -- namespaces ------------------------------------------------------------------------------------
    def _containers(self) -> tuple[dict[Any, dict[Any, list[Any]]], dict[Any, dict[Any, Any]]]:
        r: Any = self.r
        if self.slot:
            return r._slots, r._slot_accs
        return r._buckets, r._bucket_accs

    def _ns(self, nid: Any) -> bytes:
        if self.slot:
            return _SLOT + encode_i64(nid)
        return _window_ns(_BUCKET, nid)

    def _kkey(self, key: Any) -> bytes:
        return self.tier.entry_key(_KEY, self.tier.encode_key(key))

    # -- memory bound ----------------------------------------------------------------------------------
    def hot_entries(self) -> int:
        """Entries held in memory: slot/bucket entries, fired entries, keys with per-key state."""
        r: Any = self.r
        n = len(r._keys)
        if self.slot or self.bucket:
            for d in self._containers()[0].values():
                n += len(d)
        if self.fast:
            for d in r._fired.values():
                n += len(d)
        if self.session:
            n += len(r._sess) + len(r._sfired)
        return n

    def maybe_evict(self) -> None:
        """Evict down to 15/16 of the bound when the entries in memory exceed it (called between calls)."""
        if not self.bound:
            return
        n = self.hot_entries()
        if n > self.bound:
            self.evict(n - self.low)
        kd = self.r._kdirty
        if kd is not None and len(kd) > self.bound:
            self._spill_deleted()

    def evict(self, n: int) -> int:
        """Move about `n` entries out of memory; returns how many."""
        done = self._evict_fired(n) if self.fast else 0
        if done < n:
            done += self._evict_keys(n - done)
        if done < n and (self.slot or self.bucket):
            done += self._evict_containers(n - done)
        self.evicted += done
        return done

    def _evict_fired(self, n: int) -> int:
        r: Any = self.r
        tier = self.tier
        puts: list[tuple[bytes, Any]] = []
        done = 0
        new = r._fired_new
        for w, d in r._fired.items():
            if not d:
                continue
            dirty = self.all_dirty or w in new
            ns = _window_ns(_FIRED, w)
            for key in list(itertools.islice(d, n - done)):
                acc = d.pop(key)
                if dirty:
                    puts.append((tier.entry_key(ns, tier.encode_key(key)), acc))
                done += 1
            r._fired_cold.add(w)
            if dirty:
                self.stored_fired.add(w)
            if done >= n:
                break
        tier.evict(puts)
        return done

    def _evict_keys(self, n: int) -> int:
        r: Any = self.r
        sources: list[dict[Any, Any]] = [r._sess, r._keys, r._sfired] if self.session else [r._keys]
        victims: list[Any] = []
        seen: set[Any] = set()
        for src in sources:
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
            done += self._evict_key(key, puts)
        self.tier.evict(puts)
        if self._dead_windows > 1024 and self._dead_windows > len(r._gc_heap) // 2:
            self._compact_heaps()
        return done

    def _evict_key(self, key: Any, puts: list[tuple[bytes, Any]]) -> int:
        """Evict all per-key state of `key`; returns the entries it held in memory."""
        r: Any = self.r
        ks = r._keys.pop(key, None)
        ss = r._sess.pop(key, None) if self.session else None
        fs = r._sfired.pop(key, None) if self.session else None
        held = (ks is not None) + (ss is not None) + (fs is not None)
        kd = r._kdirty
        dirty = self.all_dirty or key in kd
        general = None
        gc_min = hold_min = None
        if ks is not None and (ks.windows or ks.timers):
            general = encode_key_state(ks)
            for ws in ks.windows.values():
                gc = r._gc_time(ws.window)
                gc_min = gc if gc_min is None else min(gc_min, gc)
                if ws.hold_min is not None:
                    hold_min = ws.hold_min if hold_min is None else min(hold_min, ws.hold_min)
                ws.alive = False  # its heap entries are skipped; the key's timers stay in the timer heaps
                ws.acc = None
            self._dead_windows += len(ks.windows)
        sessions = None
        send = None
        if ss:
            for s in ss:
                if s[2]:
                    dirty = True
                s[3] = r._fold(s[3], s[2])
                s[2] = []
            sessions = [[s[0], s[1], s[3]] for s in ss]
            send = min(s[1] for s in ss)
        fired = None
        sfgc = None
        if fs:
            fired = [list(f) for f in fs]
            sfgc = min(r._gc_time((f[0], f[1])) for f in fs)
        if general is None and sessions is None and fired is None:
            return held  # nothing left (a deletion stays in _kdirty)
        if dirty:
            puts.append((self._kkey(key), [general, sessions, fired]))
            kd.discard(key)
        r._cold[key] = (gc_min, hold_min, send, sfgc)
        seq = r._seq
        if gc_min is not None:
            heapq.heappush(r._cold_gc, (gc_min, next(seq), key))
        if hold_min is not None:
            heapq.heappush(r._cold_hold, (hold_min, next(seq), key))
        if send is not None:
            heapq.heappush(r._sheap, (send, next(seq), key))
        if sfgc is not None:
            heapq.heappush(r._sfired_heap, (sfgc, next(seq), key))
        return held

    def _compact_heaps(self) -> None:
        """Drop the gc/hold heap entries of evicted window states (they hold the objects in memory)."""
        r: Any = self.r
        r._gc_heap = [e for e in r._gc_heap if e[3].alive]
        heapq.heapify(r._gc_heap)
        r._hold_heap = [e for e in r._hold_heap if e[2].alive]
        heapq.heapify(r._hold_heap)
        self._dead_windows = 0

    def _spill_deleted(self) -> None:
        """Deleted keys pile up between checkpoints: move their deletions to the spill area."""
        r: Any = self.r
        kd = r._kdirty
        sess = r._sess if self.session else {}
        sfired = r._sfired if self.session else {}
        gone = [k for k in kd if k not in r._keys and k not in sess and k not in sfired and k not in r._cold]
        for k in gone:
            kd.discard(k)
        self.tier.evict((), [self._kkey(k) for k in gone])

    def _evict_containers(self, n: int) -> int:
        r: Any = self.r
        tier = self.tier
        conts, accs_all = self._containers()
        fds = r._fold_dirty
        ops = r._ops
        puts: list[tuple[bytes, Any]] = []
        done = 0
        for nid in sorted(conts):
            d = conts[nid]
            if not d:
                continue
            accs = accs_all.get(nid)
            fd = fds.get(nid)
            cold = nid in r._cold_ns
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
                probe = not (not cold or (comp is not None and key in comp)) and (written is None or key in written)
                if comp is not None:
                    comp.discard(key)
                if written is not None:
                    written.add(key)
                if not dirty:
                    continue  # the store holds this value
                value = r._fold(acc, vals)
                lkey = tier.entry_key(ns, tier.encode_key(key))
                if probe:
                    base, _ = tier.take(lkey)
                    if base is not ABSENT:
                        value = ops.merge([ops.create(), base, value])
                puts.append((lkey, value))
            if not cold:
                r._cold_ns.add(nid)
                self.complete[nid] = set(d)  # what stays in memory is complete
            self.stored_ns.add(nid)
            if done >= n:
                break
        tier.evict(puts)
        return done

    # -- hooks called by the reducer -------------------------------------------------------------------
    def reload_key(self, key: Any) -> KeyState | None:
        """Bring an evicted key's state back into memory; returns its general state (None if it has none)."""
        r: Any = self.r
        if r._cold.pop(key, None) is None:
            return r._keys.get(key)  # type: ignore[no-any-return]
        value, dirty = self.tier.take(self._kkey(key))
        if value is ABSENT:
            return None
        general, sessions, fired = value
        ks = None
        if general is not None:
            ks, _ = decode_key_state(r, key, general[0], general[1], heapq.heappush, with_timers=False)
        if sessions:
            r._sess[key] = [[s, e, [], acc] for s, e, acc in sessions]
        if fired:
            r._sfired[key] = [(s, e, acc) for s, e, acc in fired]
        if dirty:
            r._kdirty.add(key)
        return ks

    def reload_expiring(self, wm: int) -> None:
        """Evicted keys with a window that expires at watermark `wm` come back (their gc entries with them)."""
        r: Any = self.r
        h = r._cold_gc
        cold = r._cold
        while h and h[0][0] < wm:
            v, _, key = heapq.heappop(h)
            info = cold.get(key)
            if info is not None and info[0] == v:
                self.reload_key(key)

    def cold_hold(self) -> int | None:
        """The earliest watermark hold of an evicted key, or None."""
        r: Any = self.r
        h = r._cold_hold
        cold = r._cold
        while h:
            v, _, key = h[0]
            info = cold.get(key)
            if info is not None and info[1] == v:
                return int(v)
            heapq.heappop(h)
        return None

    def drain_cold(self, nid: Any, d: dict[Any, list[Any]], accs: dict[Any, Any] | None) -> Iterator[tuple[Any, Any]]:
        """A dying slot/bucket fires: ``(key, accumulator)`` of every key with a stored part, merged with its
        in-memory part (which is removed from `d`/`accs`; keys left in `d` are complete)."""
        tier = self.tier
        r: Any = self.r
        ops = r._ops
        comp = self.complete.get(nid, set())
        prefix = tier.ns_prefix(self._ns(nid))
        plen = len(prefix)
        for lkey, base, _ in tier.scan(prefix):
            key = tier.split_key(lkey, plen)
            if key in d:
                if key in comp:
                    continue  # the in-memory entry includes its stored part
                vals = d.pop(key)
                acc = accs.pop(key, None) if accs is not None else None
                yield key, ops.merge([ops.create(), base, r._fold(acc, vals)])
            else:
                yield key, base

    def cold_parts(self, nid: Any) -> Iterator[tuple[Any, Any]]:
        """The stored parts of a live slot's entries that the in-memory entries do not include."""
        tier = self.tier
        comp = self.complete.get(nid, set())
        prefix = tier.ns_prefix(self._ns(nid))
        plen = len(prefix)
        for lkey, base, _ in tier.scan(prefix):
            key = tier.split_key(lkey, plen)
            if key not in comp:
                yield key, base

    def ns_dead(self, nid: Any) -> None:
        """A slot/bucket fired its last window."""
        r: Any = self.r
        r._cold_ns.discard(nid)
        self.complete.pop(nid, None)
        self.written.pop(nid, None)
        r._fold_dirty.pop(nid, None)
        if nid in self.stored_ns:
            self.stored_ns.discard(nid)
            self.tier.kill(self.tier.ns_prefix(self._ns(nid)))

    def fired_dead(self, w: Any) -> None:
        """A fired window expired."""
        r: Any = self.r
        r._fired_cold.discard(w)
        r._fired_new.discard(w)
        if w in self.stored_fired:
            self.stored_fired.discard(w)
            self.tier.kill(self.tier.ns_prefix(_window_ns(_FIRED, w)))

    def take_fired(self, w: Any, key: Any) -> tuple[bool, Any]:
        """Late data for an evicted fired entry: its accumulator, if it has one."""
        tier = self.tier
        value, _ = tier.take(tier.entry_key(_window_ns(_FIRED, w), tier.encode_key(key)))
        if value is ABSENT:
            return False, None
        self.r._fired_gone.append((w, key))  # type: ignore[attr-defined]
        return True, value

    # -- checkpoints -----------------------------------------------------------------------------------
    def capture(self) -> ReducerCapture:
        """What changed since the last capture (the caller writes it, then calls `aborted` on failure)."""
        items: list[Any] = []
        encoded: list[Any] = []
        deletes: list[bytes] = []
        undo: dict[str, Any] = {"all": self.all_dirty}
        if self.slot or self.bucket:
            self._capture_containers(items)
        if self.fast:
            undo["fired"] = self._capture_fired(items, deletes)
        undo["keys"] = self._capture_keys(encoded, deletes)
        header = self._header()
        self.all_dirty = False
        return ReducerCapture(self, header, items, encoded, deletes, undo)

    def _capture_containers(self, items: list[Any]) -> None:
        r: Any = self.r
        tier = self.tier
        ops = r._ops
        add_inputs = ops.add_inputs
        create = ops.create
        conts, accs_all = self._containers()
        fds = r._fold_dirty
        all_dirty = self.all_dirty
        append = items.append
        for nid, d in conts.items():
            accs = accs_all.get(nid)
            if accs is None:
                accs = accs_all[nid] = {}
            fd = fds.get(nid) or ()
            reconcile = self.complete.get(nid) if nid in r._cold_ns else None
            written = self.written.get(nid)  # keys evicted from the slot (none: restored, probe every key)
            ns = self._ns(nid)
            n = len(items)
            for key, vals in d.items():
                if vals:
                    acc = accs.get(key)
                    acc = add_inputs(create() if acc is None else acc, vals)
                    vals.clear()  # folded (in place: no new objects for the collector)
                elif all_dirty or key in fd:
                    acc = accs.get(key)
                    if acc is None:
                        acc = create()
                else:
                    continue
                if reconcile is not None and key not in reconcile:
                    if written is None or key in written:
                        base, _ = tier.take(tier.entry_key(ns, tier.encode_key(key)))
                        if base is not ABSENT:
                            acc = ops.merge([create(), base, acc])
                    reconcile.add(key)
                accs[key] = acc
                append(ns)
                append(key)
                append(acc)
            if len(items) > n:
                self.stored_ns.add(nid)
        fds.clear()

    def _capture_fired(self, items: list[Any], deletes: list[bytes]) -> Any:
        r: Any = self.r
        tier = self.tier
        new = set(r._fired) if self.all_dirty else set(r._fired_new)
        for w in new:
            d = r._fired.get(w)
            if d:
                ns = _window_ns(_FIRED, w)
                for key, acc in d.items():
                    items.append(ns)
                    items.append(key)
                    items.append(acc)
                self.stored_fired.add(w)
        gone = list(r._fired_gone)
        for w, key in gone:
            if w in r._fired and w not in new:
                deletes.append(tier.entry_key(_window_ns(_FIRED, w), tier.encode_key(key)))
        r._fired_new.clear()
        r._fired_gone.clear()
        return new, gone

    def _capture_keys(self, encoded: list[Any], deletes: list[bytes]) -> dict[Any, None]:
        r: Any = self.r
        kd = r._kdirty
        dirty = dict.fromkeys(kd)  # a dict: keys in a stable order, the sessions' in memory order
        if self.all_dirty:
            dirty.update(dict.fromkeys(r._keys))
        if self.session:
            if self.all_dirty:
                dirty.update(dict.fromkeys(r._sess))
                dirty.update(dict.fromkeys(r._sfired))
            for key, ss in r._sess.items():
                for s in ss:
                    if s[2]:
                        dirty[key] = None
                        break
        kd.clear()
        encode = self.tier.encode_value
        for key in dirty:
            record = self._key_record(key)
            if record is None:
                deletes.append(self._kkey(key))
            else:
                encoded.append(_KEY)
                encoded.append(key)
                encoded.append(encode(record))  # now: the record's lists need not live on
        return dirty

    def _key_record(self, key: Any) -> list[Any] | None:
        r: Any = self.r
        ks = r._keys.get(key)
        general = encode_key_state(ks) if ks is not None and (ks.windows or ks.timers) else None
        sessions = fired = None
        if self.session:
            ss = r._sess.get(key)
            if ss:
                for s in ss:
                    if s[2]:
                        s[3] = r._fold(s[3], s[2])
                        s[2].clear()
                    elif s[3] is None:
                        s[3] = r._ops.create()
                sessions = [[s[0], s[1], s[3]] for s in ss]
            fs = r._sfired.get(key)
            if fs:
                fired = [list(f) for f in fs]
        if general is None and sessions is None and fired is None:
            return None
        return [general, sessions, fired]

    def _undo(self, undo: dict[str, Any]) -> None:
        r: Any = self.r
        # the captured slot/bucket entries are not listed: after a failed write (which ends the job anyway)
        # everything in memory counts as changed
        self.all_dirty = True
        if "fired" in undo:
            new, gone = undo["fired"]
            r._fired_new.update(w for w in new if w in r._fired)
            r._fired_gone.extend(gone)
        r._kdirty.update(undo["keys"])

    def _header(self) -> dict[str, Any]:
        r: Any = self.r
        next_id = next(r._ids)
        r._ids = itertools.count(next_id)
        h: dict[str, Any] = {
            "format": FORMAT,
            "class": type(r).__name__,
            "strategy": strategy(r),
            "watermark": r._wm,
            "processing_time": r._now,
            "dropped_late": r.dropped_late,
            "dropped_closed": r.dropped_closed,
            "next_id": next_id,
        }
        if self.slot:
            h["slots"] = sorted(r._slots)
            h["next_q"] = r._next_q
        if self.bucket:
            h["buckets"] = [[w[0], w[1]] for w in r._buckets]
        if self.fast:
            h["fired"] = [[w[0], w[1]] for w in r._fired]
        return h

    # -- restore ---------------------------------------------------------------------------------------
    def restore(self, header: dict[str, Any]) -> None:
        """Load a checkpoint: the header now, per-key state up to the bound (the rest indexed), entries lazily."""
        r: Any = self.r
        if header.get("format") != FORMAT:
            raise ValueError(f"unknown reducer state format {header.get('format')!r}")
        if header["class"] != type(r).__name__:
            raise ValueError("the state was written by a reducer with another class or windowing strategy")
        check_strategy(r, header["strategy"], "state was written")
        seq = r._seq
        r._keys = {}
        r._wm = header["watermark"]
        r._now = header["processing_time"]
        r.dropped_late = header["dropped_late"]
        r.dropped_closed = header["dropped_closed"]
        r._ids = itertools.count(header["next_id"])
        r._wm_heap, r._pt_heap, r._gc_heap, r._hold_heap = [], [], [], []
        r._cold, r._cold_gc, r._cold_hold = {}, [], []
        r._kdirty = set()
        self.complete = {}
        self.stored_ns = set()
        self.written = {}
        self.all_dirty = False
        if self.fast:
            r._fired = {}
            r._fired_heap = []
            for start, end in header["fired"]:
                w = (start, end)
                r._fired[w] = {}
                r._fired_heap.append((r._gc_time(w), next(seq), w))
            heapq.heapify(r._fired_heap)
            r._fired_cold = set(r._fired)
            self.stored_fired = set(r._fired)
            r._fired_new = set()
            r._fired_gone = []
            r._fold_dirty = {}
        if self.slot:
            r._slots = {p: {} for p in header["slots"]}
            r._slot_accs = {p: {} for p in header["slots"]}
            r._slot_heap = sorted(r._slots)
            r._next_q = header["next_q"]
        if self.bucket:
            r._buckets = {}
            r._bucket_accs = {}
            r._bucket_heap = []
            for start, end in header["buckets"]:
                w = (start, end)
                r._buckets[w] = {}
                r._bucket_accs[w] = {}
                r._bucket_heap.append((end, start))
            heapq.heapify(r._bucket_heap)
        if self.slot or self.bucket:
            conts = self._containers()[0]
            r._cold_ns = set(conts)
            self.complete = {nid: set() for nid in conts}
            self.stored_ns = set(conts)
        if self.session:
            r._sess, r._sheap, r._sfired, r._sfired_heap = {}, [], {}, []
        self._restore_keys()
        for h in (r._wm_heap, r._pt_heap, r._gc_heap, r._hold_heap, r._cold_gc, r._cold_hold):
            heapq.heapify(h)
        if self.session:
            heapq.heapify(r._sheap)
            heapq.heapify(r._sfired_heap)

    def _restore_keys(self) -> None:
        r: Any = self.r
        tier = self.tier
        seq = r._seq
        room = max(0, self.bound - self.hot_entries()) if self.bound else -1  # -1: no bound
        plen = len(self.kprefix)
        for lkey, record, _ in tier.scan(self.kprefix):
            key = tier.split_key(lkey, plen)
            general, sessions, fired = record
            send = min(s[1] for s in sessions) if sessions else None
            sfgc = [r._gc_time((f[0], f[1])) for f in fired] if fired else []
            if room != 0:
                room -= 1
                if general is not None:
                    decode_key_state(r, key, general[0], general[1], list.append)
                if sessions:
                    r._sess[key] = [[s, e, [], acc] for s, e, acc in sessions]
                    r._sheap.append((send, next(seq), key))
                if fired:
                    r._sfired[key] = [(s, e, acc) for s, e, acc in fired]
                    for g in sfgc:
                        r._sfired_heap.append((g, next(seq), key))
                continue
            gc_min = hold_min = None
            if general is not None:
                for row in general[0]:
                    gc = r._gc_time((row[0], row[1]))
                    gc_min = gc if gc_min is None else min(gc_min, gc)
                    if row[8] is not None:
                        hold_min = row[8] if hold_min is None else min(hold_min, row[8])
                for _, entries in general[1]:
                    for _, dom, ts in entries:
                        (r._wm_heap if dom == 0 else r._pt_heap).append((ts, next(seq), key))
            sf_min = min(sfgc) if sfgc else None
            r._cold[key] = (gc_min, hold_min, send, sf_min)
            if gc_min is not None:
                r._cold_gc.append((gc_min, next(seq), key))
            if hold_min is not None:
                r._cold_hold.append((hold_min, next(seq), key))
            if send is not None:
                r._sheap.append((send, next(seq), key))
            if sf_min is not None:
                r._sfired_heap.append((sf_min, next(seq), key))

    def restore_whole(self, data: Any) -> None:
        """Load a whole-state snapshot (written before state was incremental); the next checkpoint writes all."""
        self.r.restore(data)
        self.all_dirty = True

    def stats(self) -> dict[str, int]:
        """Counters for tests and metrics."""
        r: Any = self.r
        out = dict(self.tier.stats())
        out["spilled"] = out.pop("evicted")
        out["evicted"] = self.evicted
        out["hot_entries"] = self.hot_entries()
        out["cold_keys"] = len(r._cold)
        return out
