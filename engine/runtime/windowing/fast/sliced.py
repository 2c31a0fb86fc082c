"""Fast paths of the windowed reducer for the common windowing strategies.

They apply when the trigger cannot fire before the watermark passes the end of the window
(`DefaultTrigger`, or `AfterWatermark` without early firings), the timestamp combiner is end-of-window and
the reducer is not in Beam-Python-compat mode. Then every window that is still open (its end is after the
input watermark) has the same simple life: it collects elements, holds the output watermark at its end,
and fires one ON_TIME pane (index 0) when the watermark reaches its end. That life needs no per-window
trigger state, timers or pane bookkeeping, so open windows are kept in flat structures:

* `SlotReducer` (fixed windows, and sliding windows whose size is a multiple of the period): one bucket
  per period slot ``{slot: {key: [values]}}``; an element costs one dict lookup and one append; a window
  is assembled from its size/period slots when it fires (combine fn ``merge_accumulators``);
* `BucketReducer` (global windows, other sliding windows): ``{window: {key: [values]}}``;
* `SessionReducer` (sessions, in `windowing.fast.sessions`): ``{key: [[start, end, values, acc], ...]}`` merged
  incrementally per element, with a heap of per-key timers.

Values are buffered and combined in bulk (``add_inputs``) when the window fires, or when a buffer grows
(periodic compaction). Everything else goes through the general `Reducer` machinery the fast classes
inherit: elements for windows the watermark already passed (late data), their panes, timers and expiry.
A fired window that may still receive late data (watermark <= end + allowed lateness) is remembered as
``{window: {key: accumulator}}`` and turned into a general window state, with the pane bookkeeping and
trigger state Beam would have after the ON_TIME pane, when late data arrives. Session keys that get late
data move to the general path with all their sessions, and come back when their general state expires.

Both paths give identical panes (tests/windowing checks it on random input).

With tiered state (`checkpoint.reducer_records`, through the state interface these classes extend:
``containers``, ``fired_entries``, ``state_header``, ...), a slot's or bucket's entries may be partly in the
state store: a firing merges them in (``_cold_ns``), folds are recorded as changes (``_fold_dirty``), and
fired windows track what a checkpoint must write (``_fired_new``, ``_fired_gone``). The per-element hot path
is unchanged.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from millstream.engine.model.trigger import AfterWatermark, DefaultTrigger, TriggerFn
from millstream.engine.model.window import (
    FixedWindows,
    GlobalWindows,
    PaneInfoTiming,
    Sessions,
    SlidingWindows,
    TimestampCombiner,
    WindowFn,
)
from millstream.engine.runtime.windowing.panes import Pane
from millstream.engine.runtime.windowing.reduce_fn_runner import DROP_LATE, Reducer, group_by_key
from millstream.engine.runtime.windowing.trigger_state_machine import WM
from millstream.engine.runtime.windowing.window_state import KeyState, Window, WinState

__all__ = ["BucketReducer", "FastReducerBase", "SlotReducer", "fast_reducer_class"]

#: Fold a buffer of raw values into its accumulator once it is this long (checked every COMPACT_EVERY elements).
COMPACT_LEN = 64
COMPACT_EVERY = 200_000


def _fast_trigger(trigger: TriggerFn | None) -> bool:
    if trigger is None or isinstance(trigger, DefaultTrigger):
        return True
    return isinstance(trigger, AfterWatermark) and trigger.early is None


def fast_reducer_class(
    window_fn: WindowFn, trigger: TriggerFn | None, timestamp_combiner: TimestampCombiner, compat: bool
) -> type[Reducer] | None:
    """The fast reducer class for a windowing strategy, or None when only the general path applies."""
    if (
        compat
        or not _fast_trigger(trigger)
        or TimestampCombiner(timestamp_combiner) != TimestampCombiner.OUTPUT_AT_EOW
    ):
        return None
    if type(window_fn) is FixedWindows:
        return SlotReducer
    if type(window_fn) is SlidingWindows:
        if window_fn.size_us % window_fn.period_us == 0:
            return SlotReducer
        return BucketReducer
    if type(window_fn) is GlobalWindows:
        return BucketReducer
    if type(window_fn) is Sessions:
        from millstream.engine.runtime.windowing.fast.sessions import SessionReducer

        return SessionReducer
    return None


class FastReducerBase(Reducer):
    """What the fast classes share: the state after an ON_TIME pane, the fired-window store, compaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.compat or not _fast_trigger(self.trigger) or self._combiner_code != 0:
            raise ValueError("this windowing strategy has no fast path")
        self._trigger_slots_after_ontime, self._finished_after_ontime = self._simulate_on_time_pane()
        self._ontime_info = self._panes.info(True, self._finished_after_ontime, PaneInfoTiming.ON_TIME, 0, 0)
        self._accumulating = not self._discarding
        # fired windows that may still get late data: window -> {key: accumulator (None when discarding)}
        self._fired: dict[Window, dict[Any, Any]] = {}
        self._fired_heap: list[tuple[int, int, Window]] = []
        self._since_compact = 0
        # Tiered state (`checkpoint.reducer_records`): buffers folded since the last checkpoint (container id -> keys),
        # fired windows created and fired entries taken since then, container ids and fired windows that
        # may have entries in the state store. None/empty when the state is not tiered.
        self._fold_dirty: dict[Any, set[Any]] | None = None
        self._fired_new: set[Window] | None = None
        self._fired_gone: list[tuple[Window, Any]] | None = None
        self._cold_ns: set[Any] = set()
        self._fired_cold: set[Window] = set()

    def _simulate_on_time_pane(self) -> tuple[list[int], bool]:
        """Trigger state and finished flag of a window right after its ON_TIME pane (no other panes before)."""
        ks = KeyState()
        w = (0, 10)
        ws = WinState(w, None, self._trigger_machine.new_state(), [0])
        self._enter(None, ks, ws)
        root = self._root
        root.on_element(self, 1)
        if not root.should_fire(self, WM, w[1]):
            raise ValueError("trigger does not fire at the end of the window")
        finished = bool(root.on_fire(self, w[1]))
        if ks.timers:
            raise ValueError("trigger keeps timers after its ON_TIME pane")
        self._wm_heap.clear()
        self._pt_heap.clear()
        return list(ws.trigger_slots), finished

    def _remember_fired(self, w: Window, key: Any, acc: Any) -> None:
        d = self._fired.get(w)
        if d is None:
            d = self._fired[w] = {}
            heapq.heappush(self._fired_heap, (self._gc_time(w), next(self._seq), w))
            if self._fired_new is not None:
                self._fired_new.add(w)
        d[key] = acc if self._accumulating else None

    def _expire_fired(self) -> None:
        h = self._fired_heap
        wm = self._wm
        while h and h[0][0] < wm:
            _, _, w = heapq.heappop(h)
            self._fired.pop(w, None)
            if self._tiered is not None:
                self._fired_cold.discard(w)
                assert self._fired_new is not None
                self._fired_new.discard(w)
                self._tiered.fired_dead(w)

    def _fired_state(self, key: Any, ks: KeyState, w: Window, acc: Any) -> WinState:
        """A general window state as Beam has it after the window's ON_TIME pane."""
        tid = next(self._ids)
        ws = WinState(w, acc, list(self._trigger_slots_after_ontime), [tid])
        ws.index = 1
        ws.nonspeculative_index = 1
        if self._finished_after_ontime:
            ws.trigger_finished = True
            ws.acc = None
        elif acc is None:
            ws.acc = self._ops.create()
        ks.windows[w] = ws
        ks.window_by_owner[tid] = ws
        heapq.heappush(self._gc_heap, (self._gc_time(w), next(self._seq), key, ws, w))
        return ws

    def _new_window_state(self, key: Any, ks: KeyState, w: Window) -> WinState:
        d = self._fired.get(w)
        if d is not None:
            if key in d:
                if self._fired_gone is not None:
                    self._fired_gone.append((w, key))
                return self._fired_state(key, ks, w, d.pop(key))
            if w in self._fired_cold:  # evicted to the state store
                found, acc = self._tiered.take_fired(w, key)
                if found:
                    assert self._fired_gone is not None
                    self._fired_gone.append((w, key))
                    return self._fired_state(key, ks, w, acc)
        return super()._new_window_state(key, ks, w)

    def _emit_on_time(
        self, key: Any, win: Any, acc: Any, end: int, keep: bool, w: Window, out: list[Pane]
    ) -> None:
        out.append(Pane(key, win, self._ops.extract(acc), end - 1, self._ontime_info))
        if keep:
            self._remember_fired(w, key, acc)

    def advance_input_watermark(self, wm_us: int) -> list[Pane]:
        """Fire the fast windows the watermark passed, then the general timers, then expire."""
        assert wm_us >= self._wm, f"watermark moved backwards: {wm_us} < {self._wm}"
        self._wm = wm_us
        out: list[Pane] = []
        self._fire_fast(out)
        self._fire_timers(out)
        self._expire(out)
        self._expire_fired()
        return out

    def _fire_fast(self, out: list[Pane]) -> None:
        raise NotImplementedError

    def _fast_hold(self) -> int | None:
        """Earliest end-of-window hold of the fast windows (µs), or None."""
        raise NotImplementedError

    def output_watermark(self) -> int:
        """As `Reducer.output_watermark`, including the holds of the open fast windows."""
        base = super().output_watermark()
        h = self._fast_hold()
        if h is not None and h - 1 < base:
            return h - 1
        return base

    def state_size(self) -> int:
        """General (key, window) states plus the fast buffers (slot/window/session per key)."""
        return super().state_size() + self.fast_state_size()

    def fast_state_size(self) -> int:
        """Number of fast-path buffers held."""
        raise NotImplementedError

    # -- state interface (see `Reducer`): the fired-window store -------------------------------------------

    def track_changes(self, store: Any) -> None:
        """As `Reducer.track_changes`, also recording folded buffers and fired windows."""
        super().track_changes(store)
        self._fold_dirty = {}
        self._fired_new = set()
        self._fired_gone = []

    def entries_in_memory(self) -> int:
        """General keys plus the fired-window entries kept for late data."""
        # in C: called per bundle, over every fired window kept for late data (thousands in a year of hours)
        return super().entries_in_memory() + sum(map(len, self._fired.values()))

    def entries_per_element(self) -> int | None:
        """As `Reducer.entries_per_element`, plus a buffer and a fired entry read back for late data."""
        return 4

    def fired_entries(self) -> dict[Window, dict[Any, Any]]:
        """Fired windows that may still get late data: ``{window: {key: accumulator}}`` (in memory)."""
        return self._fired

    def fired_evicted(self, w: Window) -> None:
        """Some entries of fired window `w` were moved to the state store."""
        self._fired_cold.add(w)

    def fired_is_new(self, w: Window) -> bool:
        """True when window `w` fired since the last checkpoint."""
        return self._fired_new is not None and w in self._fired_new

    def take_fired_changes(self, everything: bool) -> tuple[set[Window], list[tuple[Window, Any]]]:
        """Fired windows new since the last call (all with `everything`) and entries taken by late data."""
        assert self._fired_new is not None and self._fired_gone is not None
        new = set(self._fired) if everything else set(self._fired_new)
        gone = list(self._fired_gone)
        self._fired_new.clear()
        self._fired_gone.clear()
        return new, gone

    def restore_fired_changes(self, new: set[Window], gone: list[tuple[Window, Any]]) -> None:
        """Record changes taken by `take_fired_changes` again (their checkpoint was not written)."""
        assert self._fired_new is not None and self._fired_gone is not None
        self._fired_new.update(w for w in new if w in self._fired)
        self._fired_gone.extend(gone)

    def state_header(self) -> dict[str, Any]:
        """As `Reducer.state_header`, plus the fired windows."""
        h = super().state_header()
        h["fired"] = [[w[0], w[1]] for w in self._fired]
        return h

    def load_state_header(self, header: dict[str, Any]) -> None:
        """As `Reducer.load_state_header`; the fired windows' entries stay in the store until needed."""
        super().load_state_header(header)
        seq = self._seq
        self._fired = {}
        self._fired_heap = []
        for start, end in header["fired"]:
            w = (start, end)
            self._fired[w] = {}
            self._fired_heap.append((self._gc_time(w), next(seq), w))
        heapq.heapify(self._fired_heap)
        self._fired_cold = set(self._fired)
        self._fired_new = set()
        self._fired_gone = []
        self._fold_dirty = {}
        self._cold_ns = set()

    def fold(self, acc: Any, vals: list[Any]) -> Any:
        """`acc` (None: a new accumulator) with `vals` added."""
        return self._ops.add_inputs(self._ops.create() if acc is None else acc, vals)

    def empty_accumulator(self) -> Any:
        """A new accumulator."""
        return self._ops.create()

    def merge_stored(self, stored: Any, acc: Any) -> Any:
        """A stored part of an entry merged with its in-memory part."""
        ops = self._ops
        return ops.merge([ops.create(), stored, acc])


class ContainerReducer(FastReducerBase):
    """What the slot and bucket reducers share: containers (a slot, a window) of per-key buffers.

    This is Flink's sliced window aggregation: a container holds, per key, the values not yet folded and
    the accumulator they are folded into; a window's pane combines its containers when it fires.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers: dict[Any, dict[Any, list[Any]]] = {}  # container -> key -> values not yet folded
        self._folded: dict[Any, dict[Any, Any]] = {}  # container -> key -> folded accumulator

    def containers(self) -> tuple[dict[Any, dict[Any, list[Any]]], dict[Any, dict[Any, Any]]]:
        """``({container: {key: values not yet folded}}, {container: {key: folded accumulator}})``."""
        return self._buffers, self._folded

    def fast_state_size(self) -> int:
        """Number of (container, key) buffers held."""
        return sum(len(d) for d in self._buffers.values())

    def _compact(self) -> None:
        """Fold the long buffers into their accumulators (bounds memory between firings)."""
        self._since_compact = 0
        fold = self.fold
        fds = self._fold_dirty
        for nid, d in self._buffers.items():
            accs = self._folded.get(nid)
            for key, vals in d.items():
                if len(vals) >= COMPACT_LEN:
                    if accs is None:
                        accs = self._folded[nid] = {}
                    accs[key] = fold(accs.get(key), vals)
                    d[key] = []
                    if fds is not None:
                        fds.setdefault(nid, set()).add(key)

    def _fire_container(
        self,
        nid: Any,
        d: dict[Any, list[Any]],
        accs: dict[Any, Any] | None,
        win: Any,
        end: int,
        keep: bool,
        w: Window,
        out: list[Pane],
    ) -> None:
        """The ON_TIME panes of window `w` when one container holds it all: every key of container `nid`."""
        emit = self._emit_on_time
        if nid in self._cold_ns:  # entries evicted to the state store (with their in-memory parts)
            for key, acc in self._tiered.drain_cold(nid, d, accs):
                emit(key, win, acc, end, keep, w, out)
        fold = self.fold
        for key, vals in d.items():
            emit(key, win, fold(accs.get(key) if accs is not None else None, vals), end, keep, w, out)

    def _load_containers(self, ids: list[Any]) -> None:
        """The containers a header lists, empty in memory: their entries are in the state store."""
        self._buffers = {nid: {} for nid in ids}
        self._folded = {nid: {} for nid in ids}
        self._cold_ns = set(self._buffers)

    def entries_in_memory(self) -> int:
        """As `FastReducerBase.entries_in_memory`, plus one entry per (container, key) buffer."""
        return super().entries_in_memory() + sum(map(len, self.containers()[0].values()))

    def folded_keys(self) -> dict[Any, set[Any]]:
        """Container -> keys whose buffer was folded since the last checkpoint (the caller may clear it)."""
        assert self._fold_dirty is not None
        return self._fold_dirty

    def container_evicted(self, nid: Any) -> bool:
        """True when some entries of container `nid` are in the state store."""
        return nid in self._cold_ns

    def evict_container(self, nid: Any) -> None:
        """Some entries of container `nid` were moved to the state store."""
        self._cold_ns.add(nid)

    def _container_dead(self, nid: Any) -> None:
        self._cold_ns.discard(nid)
        assert self._fold_dirty is not None
        self._fold_dirty.pop(nid, None)
        self._tiered.ns_dead(nid)


class SlotReducer(ContainerReducer):
    """Fixed windows and sliding windows with size = k * period: per-slot buffers, windows built at firing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wf = self.window_fn
        if isinstance(wf, FixedWindows):
            self._slot_us = wf.size_us
            self._slots_per_window = 1
        elif isinstance(wf, SlidingWindows) and wf.size_us % wf.period_us == 0:
            self._slot_us = wf.period_us
            self._slots_per_window = wf.size_us // wf.period_us
        else:
            raise ValueError("SlotReducer needs fixed windows or sliding windows with size = k * period")
        self._offset_us = wf.offset_us
        self._window_us = self._slot_us * self._slots_per_window
        self._slot_heap: list[int] = []
        self._next_q = self._first_open_window(self._wm)

    def _first_open_window(self, wm: int) -> int:
        # window q covers slots q .. q+k-1 and ends at (q + k) * P + off; it is open iff its end > wm
        return (wm - self._offset_us) // self._slot_us - self._slots_per_window + 1

    def process_bundle(
        self, keys: Sequence[Any], values: Sequence[Any], timestamps_us: Sequence[int]
    ) -> list[Pane]:
        """Buffer elements of open windows per slot; late ones take the general path."""
        P = self._slot_us
        off = self._offset_us
        pmin = (self._wm - off) // P  # slots >= pmin have every window still open
        slots = self._buffers
        sget = slots.get
        slow: list[tuple[Any, Any, int]] | None = None
        for k, v, t in zip(keys, values, timestamps_us):
            p = (t - off) // P
            if p >= pmin:
                d = sget(p)
                if d is None:
                    slots[p] = {k: [v]}
                    heapq.heappush(self._slot_heap, p)
                    continue
                lst = d.get(k)
                if lst is None:
                    d[k] = [v]
                else:
                    lst.append(v)
            else:
                if slow is None:
                    slow = []
                slow.append((k, v, t))
        self._since_compact += len(keys)
        if self._since_compact > COMPACT_EVERY:
            self._compact()
        out: list[Pane] = []
        if slow:
            self._process_slow(slow, out)
        if self._wm_heap or self._pt_heap:
            self._fire_timers(out)
        return out

    def _slot_add(self, p: int, k: Any, v: Any) -> None:
        d = self._buffers.get(p)
        if d is None:
            self._buffers[p] = {k: [v]}
            heapq.heappush(self._slot_heap, p)
            return
        lst = d.get(k)
        if lst is None:
            d[k] = [v]
        else:
            lst.append(v)

    def _process_slow(self, slow: list[tuple[Any, Any, int]], out: list[Pane]) -> None:
        """Elements some of whose windows the watermark passed: open windows via the slot, others general."""
        out_wm = self.output_watermark()
        wm = self._wm
        limit = wm - self.allowed_lateness_us
        P, off, k = self._slot_us, self._offset_us, self._slots_per_window
        by_key: dict[Any, dict[Window, tuple[list[Any], list[int]]]] = {}
        for key, v, t in slow:
            p = (t - off) // P
            if (p + k) * P + off > wm:  # its last window is still open: the slot serves the open ones
                self._slot_add(p, key, v)
            for q in range(p - k + 1, p + 1):
                end = (q + k) * P + off
                if end > wm:
                    break
                w = (end - self._window_us, end)
                if end < limit:
                    self._drop(key, (v,), (t,), DROP_LATE, w)
                    continue
                w2e = by_key.get(key)
                if w2e is None:
                    w2e = by_key[key] = {}
                e = w2e.get(w)
                if e is None:
                    w2e[w] = ([v], [t])
                else:
                    e[0].append(v)
                    e[1].append(t)
        for key, w2e in by_key.items():
            self._process_windows(key, w2e, out_wm, out)

    def _fire_fast(self, out: list[Pane]) -> None:
        wm = self._wm
        Q = self._first_open_window(wm)
        q = self._next_q
        h = self._slot_heap
        k = self._slots_per_window
        while h:
            pmin = h[0]
            qq = max(q, pmin - k + 1)  # the first unfired window holding data
            if qq >= Q:
                break
            self._fire_window(qq, wm, out)
            if qq == pmin:  # the slot's last window fired
                heapq.heappop(h)
                del self._buffers[pmin]
                self._folded.pop(pmin, None)
                if self._tiered is not None:
                    self._container_dead(pmin)
            q = qq + 1
        self._next_q = max(q, Q)

    def _fire_window(self, q: int, wm: int, out: list[Pane]) -> None:
        P, k = self._slot_us, self._slots_per_window
        end = (q + k) * P + self._offset_us
        w = (end - self._window_us, end)
        win = self._window_of(*w)
        keep = wm <= self._gc_time(w)
        ops = self._ops
        create = ops.create
        add_inputs = ops.add_inputs
        emit = self._emit_on_time
        if k == 1:
            d = self._buffers.get(q)
            if d is not None:
                self._fire_container(q, d, self._folded.get(q), win, end, keep, w, out)
            return
        groups: dict[Any, list[Any]] = {}
        for p in range(q, q + k):
            d = self._buffers.get(p)
            if d is None:
                continue
            accs = self._folded.get(p)
            if accs is None:
                accs = self._folded[p] = {}
            fd = self._fold_dirty.setdefault(p, set()) if self._fold_dirty is not None else None
            for key, vals in d.items():
                if vals:
                    acc = accs.get(key)
                    accs[key] = add_inputs(create() if acc is None else acc, vals)
                    d[key] = []
                    if fd is not None:
                        fd.add(key)
            for key, acc in accs.items():
                g = groups.get(key)
                if g is None:
                    # a fresh first accumulator: merge_accumulators may mutate its first argument
                    groups[key] = [create(), acc]
                else:
                    g.append(acc)
            if p in self._cold_ns:  # stored parts of the slot's entries (evicted to the state store)
                for key, acc in self._tiered.cold_parts(p):
                    g = groups.get(key)
                    if g is None:
                        groups[key] = [create(), acc]
                    else:
                        g.append(acc)
        merge = ops.merge
        for key, g in groups.items():
            emit(key, win, merge(g), end, keep, w, out)

    def _fast_hold(self) -> int | None:
        h = self._slot_heap
        if not h:
            return None
        k = self._slots_per_window
        q = max(self._next_q, h[0] - k + 1)
        return (q + k) * self._slot_us + self._offset_us - 1

    def state_header(self) -> dict[str, Any]:
        """As `FastReducerBase.state_header`, plus the live slots and the next window to fire."""
        h = super().state_header()
        h["slots"] = sorted(self._buffers)
        h["next_q"] = self._next_q
        return h

    def load_state_header(self, header: dict[str, Any]) -> None:
        """As `FastReducerBase.load_state_header`, with the header's slots (their entries in the store)."""
        super().load_state_header(header)
        self._load_containers(header["slots"])
        self._slot_heap = sorted(self._buffers)
        self._next_q = header["next_q"]


class BucketReducer(ContainerReducer):
    """Any non-merging window fn (global windows, uneven sliding windows): one buffer per (window, key)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._merging:
            raise ValueError("BucketReducer needs a non-merging window fn")
        self._bucket_heap: list[tuple[int, int]] = []  # (end, start)

    def entries_per_element(self) -> int | None:
        """None: an element fills a buffer in each of its windows, as many as its window fn assigns."""
        return None

    def process_bundle(
        self, keys: Sequence[Any], values: Sequence[Any], timestamps_us: Sequence[int]
    ) -> list[Pane]:
        """Buffer elements per open window; windows the watermark passed take the general path."""
        wm = self._wm
        assign = self._assign
        buckets = self._buffers
        slow: list[tuple[Any, Any, int]] | None = None
        for k, v, t in zip(keys, values, timestamps_us):
            late = False
            for w in assign(t):
                if w[1] > wm:
                    d = buckets.get(w)
                    if d is None:
                        buckets[w] = {k: [v]}
                        heapq.heappush(self._bucket_heap, (w[1], w[0]))
                        continue
                    lst = d.get(k)
                    if lst is None:
                        d[k] = [v]
                    else:
                        lst.append(v)
                else:
                    late = True
            if late:
                if slow is None:
                    slow = []
                slow.append((k, v, t))
        self._since_compact += len(keys)
        if self._since_compact > COMPACT_EVERY:
            self._compact()
        out: list[Pane] = []
        if slow:
            out_wm = self.output_watermark()

            def closed_windows(t: int) -> list[Window]:
                # the windows the watermark passed: open ones are buffered above
                return [w for w in assign(t) if w[1] <= wm]

            for k, items in group_by_key(slow).items():
                self._process_key(k, items, out_wm, out, assign=closed_windows)
        if self._wm_heap or self._pt_heap:
            self._fire_timers(out)
        return out

    def _fire_fast(self, out: list[Pane]) -> None:
        wm = self._wm
        h = self._bucket_heap
        while h and h[0][0] <= wm:
            end, start = heapq.heappop(h)
            w = (start, end)
            d = self._buffers.pop(w)
            accs = self._folded.pop(w, None)
            self._fire_container(w, d, accs, self._window_of(start, end), end, wm <= self._gc_time(w), w, out)
            if self._tiered is not None:
                self._container_dead(w)

    def _fast_hold(self) -> int | None:
        h = self._bucket_heap
        return h[0][0] - 1 if h else None

    def state_header(self) -> dict[str, Any]:
        """As `FastReducerBase.state_header`, plus the open windows' buckets."""
        h = super().state_header()
        h["buckets"] = [[w[0], w[1]] for w in self._buffers]
        return h

    def load_state_header(self, header: dict[str, Any]) -> None:
        """As `FastReducerBase.load_state_header`, with the header's buckets (their entries in the store)."""
        super().load_state_header(header)
        self._load_containers([(start, end) for start, end in header["buckets"]])
        self._bucket_heap = [(end, start) for start, end in self._buffers]
        heapq.heapify(self._bucket_heap)
