"""The reducer's keyed state (windows and timers per key, indexed by time) and its state interface.

`KeyedWindowState` is the base of every reducer (`windowing.reduce_fn_runner.Reducer` and the fast paths):
it holds each key's `KeyState`, the watermark and processing time, the heaps that order timers, window
expiry and watermark holds, and the dropped-data counters. The semantics live in the reducer; this class
answers for what is held, and is what incremental checkpoints talk to (`checkpoint.reducer_records`):
which keys changed, evicting a key's state to the state store and loading it back, one key's record, and
the header. The interface is described once, in docs/state.md ("The reducer's state interface").

Evicted keys (``_cold``) keep their timers in the timer heaps and are indexed by their earliest expiry
and watermark hold, so time still finds them; their state comes back (one read) when an element, a timer,
a window expiry or a watermark hold needs it. Without incremental state these hooks cost one empty-dict
lookup.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.windowing.snapshot import decode_key_state, encode_key_state
from millstream.engine.runtime.windowing.trigger_state_machine import WM
from millstream.engine.runtime.windowing.window_state import KeyState, Window, WinState

__all__ = ["KeyedWindowState"]


class KeyedWindowState:
    """The state a reducer holds for all keys of one operator instance, and its state interface."""

    def __init__(self, allowed_lateness_us: int, processing_time_us: int) -> None:
        if allowed_lateness_us < 0:
            raise ValueError("allowed lateness must be >= 0")
        self.allowed_lateness_us = allowed_lateness_us
        self._keys: dict[Any, KeyState] = {}
        self._wm = MIN_MICROS
        self._now = processing_time_us
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        # (time, seq, key) of event-time and processing-time timers; (gc time, seq, key, state, window) of
        # window expiry; (hold, seq, state) of watermark holds. Stale entries are skipped when popped.
        self._wm_heap: list[tuple[int, int, Any]] = []
        self._pt_heap: list[tuple[int, int, Any]] = []
        self._gc_heap: list[tuple[int, int, Any, WinState, Window]] = []
        self._hold_heap: list[tuple[int, int, WinState]] = []
        self.dropped_late = 0
        self.dropped_closed = 0
        # Tiered state (`checkpoint.reducer_records.ReducerState`, set up when a checkpointing job bounds the
        # state in memory): keys evicted to the state store -> (gc time, hold, session end, fired-session gc)
        # of their state; heaps of the gc times and holds of evicted keys; keys whose state changed since the
        # last checkpoint (None: not tracked). Their timers stay in the timer heaps (keyed by key).
        self._tiered: Any = None
        self._cold: dict[Any, tuple[Any, Any, Any, Any]] = {}
        self._cold_gc: list[tuple[int, int, Any]] = []
        self._cold_hold: list[tuple[int, int, Any]] = []
        self._dirty_keys: set[Any] | None = None
        self._dead_windows = 0  # evicted window states whose heap entries are still in the gc/hold heaps

    def state_size(self) -> int:
        """Number of (key, window) states held (for tests and metrics; fast paths add their buffers)."""
        return sum(len(ks.windows) for ks in self._keys.values())

    def open_windows(self) -> set[Window]:
        """The distinct windows (bounds) that hold state for some key."""
        return {w for ks in self._keys.values() for w in ks.windows}

    def _gc_time(self, w: Window) -> int:
        # The window expires when the input watermark is strictly past end + allowed lateness; capped so
        # that the watermark at +infinity expires every window.
        return min(w[1] + self.allowed_lateness_us, MAX_MICROS - 1)

    def _delete(self, key: Any, ks: KeyState, ws: WinState) -> None:
        ws.alive = False
        ws.acc = None
        del ks.windows[ws.window]
        for tid in ws.ids:
            ks.timers.pop(tid, None)
            ks.window_by_owner.pop(tid, None)
        if not ks.windows and not ks.timers:
            del self._keys[key]

    # ------------------------------------------------------------------ state interface
    # What `checkpoint.reducer_records` needs for incremental checkpoints and bounded memory. Each reducer
    # class answers for its own structures; the store side (namespaces, spill, Bloom filters) never reaches
    # into them. The interface is described once, in docs/state.md ("The reducer's state interface").

    def track_changes(self, store: Any) -> None:
        """Start recording what changes; `store` (a `ReducerState`) gives evicted state back on demand."""
        self._tiered = store
        self._dirty_keys = set()

    def entries_in_memory(self) -> int:
        """Entries held in memory: keys with general state (fast paths add their buffers and fired entries)."""
        return len(self._keys)

    def entries_per_element(self) -> int | None:
        """At most how many entries in memory one element adds when a bundle fires nothing (a key, and a key
        read back from the store); None: no bound known, count after every bundle."""
        return 2

    def evictable_keys(self) -> list[dict[Any, Any]]:
        """The dicts whose keys hold per-key state in memory, in eviction order."""
        return [self._keys]

    def changed_keys(self, everything: bool) -> dict[Any, None]:
        """Keys whose per-key record changed since the last call (with `everything`: every key in memory)."""
        dirty_keys = self._dirty_keys
        assert dirty_keys is not None
        dirty = dict.fromkeys(dirty_keys)  # a dict: keys in a stable order
        if everything:
            dirty.update(dict.fromkeys(self._keys))
        dirty_keys.clear()
        return dirty

    def mark_changed(self, keys: Any) -> None:
        """Record `keys` as changed again (a checkpoint that captured them was not written)."""
        assert self._dirty_keys is not None
        self._dirty_keys.update(keys)

    def pending_changes(self) -> int:
        """Number of keys recorded as changed."""
        return len(self._dirty_keys) if self._dirty_keys is not None else 0

    def ahead_keys(self) -> list[Any]:
        """Keys whose per-key record may have changed: the candidates of a write-ahead pass."""
        return list(self._dirty_keys) if self._dirty_keys else []

    def take_changed(self, keys: list[Any]) -> list[Any]:
        """Those of `keys` whose per-key record changed, no longer recorded as changed (the caller writes them
        ahead of the coming checkpoint)."""
        dirty_keys = self._dirty_keys
        assert dirty_keys is not None
        out = [k for k in keys if k in dirty_keys]
        dirty_keys.difference_update(out)
        return out

    def take_deleted_keys(self) -> list[Any]:
        """Changed keys whose state is gone altogether (their records are deletions); no longer recorded."""
        dirty_keys = self._dirty_keys
        assert dirty_keys is not None
        gone = [k for k in dirty_keys if not self._holds_key(k)]
        for k in gone:
            dirty_keys.discard(k)
        return gone

    def _holds_key(self, key: Any) -> bool:
        return key in self._keys or key in self._cold

    def key_record(self, key: Any) -> list[Any] | None:
        """One key's per-key record ``[general state, fast sessions, fired sessions]``, or None if it has none."""
        ks = self._keys.get(key)
        general = encode_key_state(ks) if ks is not None and (ks.windows or ks.timers) else None
        if general is None:
            return None
        return [general, None, None]

    def evict_key(self, key: Any, everything: bool) -> tuple[int, list[Any] | None]:
        """Move `key`'s per-key state out of memory (indexing its timers, holds and expiry); returns the entries
        it held and its record when that must be written (changed since the last checkpoint, or `everything`)."""
        ks = self._keys.pop(key, None)
        dirty_keys = self._dirty_keys
        assert dirty_keys is not None
        held = int(ks is not None)
        dirty = everything or key in dirty_keys
        general = None
        gc_min = hold_min = None
        if ks is not None and (ks.windows or ks.timers):
            general = encode_key_state(ks)
            for ws in ks.windows.values():
                gc = self._gc_time(ws.window)
                gc_min = gc if gc_min is None else min(gc_min, gc)
                if ws.hold_min is not None:
                    hold_min = ws.hold_min if hold_min is None else min(hold_min, ws.hold_min)
                ws.alive = False  # its heap entries are skipped; the key's timers stay in the timer heaps
                ws.acc = None
            self._dead_windows += len(ks.windows)
        extra, sessions, session_end_min, fired, fired_gc_min, fast_dirty = self._evict_fast_key(key)
        held += extra
        if general is None and sessions is None and fired is None:
            return held, None  # nothing left (a deletion stays recorded as a change)
        record = None
        if dirty or fast_dirty:
            record = [general, sessions, fired]
            dirty_keys.discard(key)
        self._index_evicted(key, gc_min, hold_min, session_end_min, fired_gc_min, heapq.heappush)
        if self._dead_windows > 1024 and self._dead_windows > len(self._gc_heap) // 2:
            self._compact_heaps()
        return held, record

    def _evict_fast_key(self, key: Any) -> tuple[int, Any, Any, Any, Any, bool]:
        """The fast path's per-key part of an eviction: (entries, sessions, earliest end, fired, gc, changed)."""
        return 0, None, None, None, None, False

    def _index_evicted(
        self,
        key: Any,
        gc_min: Any,
        hold_min: Any,
        session_end_min: Any,
        fired_gc_min: Any,
        push: Callable[[list[Any], Any], None],
    ) -> None:
        self._cold[key] = (gc_min, hold_min, session_end_min, fired_gc_min)
        seq = self._seq
        if gc_min is not None:
            push(self._cold_gc, (gc_min, next(seq), key))
        if hold_min is not None:
            push(self._cold_hold, (hold_min, next(seq), key))
        if session_end_min is not None or fired_gc_min is not None:
            self._index_evicted_sessions(key, session_end_min, fired_gc_min, push)

    def _index_evicted_sessions(
        self, key: Any, session_end_min: Any, fired_gc_min: Any, push: Callable[[list[Any], Any], None]
    ) -> None:
        pass

    def _compact_heaps(self) -> None:
        """Drop the gc/hold heap entries of evicted window states (they hold the objects in memory)."""
        self._gc_heap = [e for e in self._gc_heap if e[3].alive]
        heapq.heapify(self._gc_heap)
        self._hold_heap = [e for e in self._hold_heap if e[2].alive]
        heapq.heapify(self._hold_heap)
        self._dead_windows = 0

    def _reload_key(self, key: Any) -> KeyState | None:
        """Bring an evicted key's state back into memory; returns its general state (None if it has none)."""
        if self._cold.pop(key, None) is None:
            return self._keys.get(key)
        found, record, dirty = self._tiered.fetch_key(key)
        if not found:
            return None
        return self.load_key(key, record, dirty)

    def load_key(self, key: Any, record: list[Any], changed: bool) -> KeyState | None:
        """Put a key's record back into memory (its timers are still in the timer heaps)."""
        general, sessions, fired = record
        ks = None
        if general is not None:
            ks = decode_key_state(general[0], general[1])
            self._install_key(key, ks, heapq.heappush, with_timers=False)
        self._load_fast_key(key, sessions, fired, None)
        if changed:
            assert self._dirty_keys is not None
            self._dirty_keys.add(key)
        return ks

    def _install_key(
        self, key: Any, ks: KeyState, push: Callable[[list[Any], Any], None], with_timers: bool
    ) -> None:
        """Hold `ks` as `key`'s state and index its windows' expiry and holds (and, `with_timers`, its timers)
        with `push` (``list.append`` before a heapify, or ``heapq.heappush``)."""
        self._keys[key] = ks
        seq = self._seq
        for w, ws in ks.windows.items():
            push(self._gc_heap, (self._gc_time(w), next(seq), key, ws, w))
            if ws.hold_min is not None:
                push(self._hold_heap, (ws.hold_min, next(seq), ws))
        if with_timers:
            for d in ks.timers.values():
                for dom, ts in d.values():
                    push(self._wm_heap if dom == WM else self._pt_heap, (ts, next(seq), key))

    def _load_fast_key(
        self, key: Any, sessions: Any, fired: Any, push: Callable[[list[Any], Any], None] | None
    ) -> None:
        pass

    def restore_key(self, key: Any, record: list[Any], in_memory: bool) -> None:
        """Restore one key's record: into memory, or (not `in_memory`) only indexed (its timers, holds,
        expiry) and loaded when needed. Heaps are filled unordered: call `finish_restore` at the end."""
        general, sessions, fired = record
        if in_memory:
            if general is not None:
                self._install_key(
                    key, decode_key_state(general[0], general[1]), list.append, with_timers=True
                )
            self._load_fast_key(key, sessions, fired, list.append)
            return
        seq = self._seq
        gc_min = hold_min = None
        if general is not None:
            for row in general[0]:
                gc = self._gc_time((row[0], row[1]))
                gc_min = gc if gc_min is None else min(gc_min, gc)
                if row[8] is not None:
                    hold_min = row[8] if hold_min is None else min(hold_min, row[8])
            for _, entries in general[1]:
                for _, dom, ts in entries:
                    (self._wm_heap if dom == WM else self._pt_heap).append((ts, next(seq), key))
        session_end_min = min(s[1] for s in sessions) if sessions else None
        fired_gc_min = min(self._gc_time((f[0], f[1])) for f in fired) if fired else None
        self._index_evicted(key, gc_min, hold_min, session_end_min, fired_gc_min, list.append)

    def finish_restore(self) -> None:
        """Order the heaps filled by `restore_key`."""
        heaps: tuple[list[Any], ...] = (
            self._wm_heap,
            self._pt_heap,
            self._gc_heap,
            self._hold_heap,
            self._cold_gc,
            self._cold_hold,
        )
        for h in heaps:
            heapq.heapify(h)

    def _reload_expiring(self, wm: int) -> None:
        """Evicted keys with a window that expires at watermark `wm` come back (their gc entries with them)."""
        h = self._cold_gc
        cold = self._cold
        while h and h[0][0] < wm:
            v, _, key = heapq.heappop(h)
            info = cold.get(key)
            if info is not None and info[0] == v:
                self._reload_key(key)

    def _evicted_hold(self) -> int | None:
        """The earliest watermark hold of an evicted key, or None."""
        h = self._cold_hold
        cold = self._cold
        while h:
            v, _, key = h[0]
            info = cold.get(key)
            if info is not None and info[1] == v:
                return int(v)
            heapq.heappop(h)
        return None

    def evicted_keys(self) -> int:
        """Number of keys whose state is out of memory."""
        return len(self._cold)

    def _strategy_record(self) -> list[Any]:
        """The windowing strategy the header records (`windowing.snapshot.strategy`); the reducer defines it."""
        raise NotImplementedError

    def _check_strategy_record(self, stored: Any) -> None:
        """Refuse a header recorded under another windowing strategy; the reducer defines it."""
        raise NotImplementedError

    def state_header(self) -> dict[str, Any]:
        """What a checkpoint's header records besides the entries (time, counters, the fast paths' windows)."""
        next_id = next(self._ids)
        self._ids = itertools.count(next_id)
        return {
            "class": type(self).__name__,
            "strategy": self._strategy_record(),
            "watermark": self._wm,
            "processing_time": self._now,
            "dropped_late": self.dropped_late,
            "dropped_closed": self.dropped_closed,
            "next_id": next_id,
        }

    def load_state_header(self, header: dict[str, Any]) -> None:
        """Start over from a checkpoint's header, with no keys in memory (then `restore_key`, `finish_restore`)."""
        if header["class"] != type(self).__name__:
            raise ValueError("the state was written by a reducer with another class or windowing strategy")
        self._check_strategy_record(header["strategy"])
        self._keys = {}
        self._wm = header["watermark"]
        self._now = header["processing_time"]
        self.dropped_late = header["dropped_late"]
        self.dropped_closed = header["dropped_closed"]
        self._ids = itertools.count(header["next_id"])
        self._wm_heap, self._pt_heap, self._gc_heap, self._hold_heap = [], [], [], []
        self._cold, self._cold_gc, self._cold_hold = {}, [], []
        self._dirty_keys = set()
