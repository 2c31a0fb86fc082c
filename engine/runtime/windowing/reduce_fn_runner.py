"""The windowed reducer: Beam's windowing and trigger semantics for one GroupByKey/Combine operator, as pure logic.

One `Reducer` serves all keys of one operator instance. The runtime feeds it bundles and time; it returns
panes. No asyncio and no clock: processing time and the input watermark are arguments. Its only I/O is
through incremental state, when attached (`checkpoint.reducer_records`): state evicted to bound memory is
read back from the store when a key needs it (docs/state.md).

Construction: ``create_reducer(window_fn, trigger, accumulation_mode, allowed_lateness_us,
timestamp_combiner, combine_fn, *, processing_time_us=0, collect_dropped=False, beam_python_compat=False,
processing_timers_see_watermark=None)`` returns the fastest implementation (a `Reducer` or a fast-path
subclass, same semantics). ``combine_fn`` is a duck-typed Beam CombineFn (None: GroupByKey, values
collected in a list); its accumulators are what the state holds.

API (all times are integer microseconds):

* ``process_bundle(keys, values, timestamps_us) -> list[Pane]``: one bundle. All its elements are added to
  their windows first, then each touched (key, window) evaluates its trigger once (Beam's bundle
  semantics), then due timers fire.
* ``advance_input_watermark(wm_us) -> list[Pane]``: fires event-time timers, then expires windows whose
  end + allowed lateness the watermark passed. The watermark never moves backwards.
* ``advance_processing_time(now_us) -> list[Pane]`` and ``next_processing_time_timer() -> int | None``
  (never later than the next timer; may be earlier). Bundles see the processing time of the last advance:
  advance it before a bundle when triggers use processing time.
* ``output_watermark() -> int``: min(input watermark, earliest watermark hold of any key - 1µs), as Beam's
  DirectRunner computes it. It can move backwards (a late-data hold); make it monotonic downstream.
* A `Pane` is a named tuple ``(key, window, value, timestamp_us, pane_info)``.
* Dropped data: ``dropped_late`` / ``dropped_closed`` count (element, window) pairs dropped because the
  window expired (``input watermark > end + allowed lateness``) or because its trigger had finished;
  with ``collect_dropped=True`` the records ``(key, value, timestamp_us, reason, window)`` are kept until
  ``take_dropped()``.

Semantics are Beam's Python SDK (apache-beam 2.77 ``GeneralTriggerDriver`` driven the way its DirectRunner
drives it) with the three deviations of the project's semantics policy:

1. When a window expires (input watermark > end + allowed lateness) with elements that no pane has
   emitted, and its trigger has not finished, one final pane is emitted with them (``is_last``), as Java's
   ReduceFnRunner does. Its timing is LATE if a non-EARLY pane was emitted before or the output
   watermark is already past the window, else ON_TIME. Then all state of the window is deleted (Java
   semantics; Python keeps it forever).
2. When session windows merge, the watermark holds of the merged windows are replaced by one combined
   hold on the result (Java's WatermarkHold.onMerge), instead of lingering under the merged-away windows.
3. A trigger fired by a processing-time timer is evaluated against the input watermark, and its pane's
   timing against the held output watermark (Java's model). The Python SDK takes the timer's processing
   time for the watermark (AfterWatermark asks "timer time >= window end"), so when event time lags
   processing time (a replay, a backfill) the first early firing ends AfterWatermark with a LATE pane and
   the rest of the window's data is dropped.

``beam_python_compat=True`` turns all three off (no expiry, Python's hold bookkeeping, processing-time
timers seen as the watermark) to reproduce the Python SDK exactly; the conformance suite runs both ways.
``processing_timers_see_watermark`` switches deviation 3 alone (None: on unless in compat mode).

Fast paths for the common configurations are subclasses chosen by `create_reducer`.

Durable jobs attach `checkpoint.reducer_records.ReducerState` through the state interface at the end of
`Reducer` (``track_changes``, ``evict_key``, ``key_record``, ``state_header``, ...; docs/state.md): the
reducer then records which keys changed and may have keys' state evicted to the state store (``_cold``);
evicted state comes back (``_reload_key``, one read) when an element, a timer, a window expiry or a
watermark hold needs it. Without it these hooks cost one empty-dict lookup.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.model.trigger import AccumulationMode, TriggerFn
from millstream.engine.model.window import (
    BoundedWindow,
    PaneInfo,
    PaneInfoTiming,
    TimestampCombiner,
    WindowFn,
)
from millstream.engine.runtime.windowing.combine_fns import CombineOps, combine_ops
from millstream.engine.runtime.windowing.snapshot import (
    check_strategy,
    decode_key_state,
    encode_key_state,
    strategy,
)
from millstream.engine.runtime.windowing.trigger_state_machine import WM, CompiledTrigger, compile_trigger

__all__ = [
    "DROP_CLOSED",
    "DROP_LATE",
    "LATE_SAMPLES_KEPT",
    "KeyState",
    "Pane",
    "Reducer",
    "WinState",
    "create_reducer",
]


class Pane(NamedTuple):
    """An emitted pane: one key's output for one window, with its timestamp and Beam's PaneInfo."""

    key: Any
    window: BoundedWindow
    value: Any
    timestamp_us: int
    pane_info: PaneInfo


Window = tuple[int, int]

#: Reasons of dropped records.
DROP_LATE = "late"
DROP_CLOSED = "closed"
#: How many of the latest dropped elements a reducer keeps for the console (`Reducer.late_samples`).
LATE_SAMPLES_KEPT = 5

_EOW = 0
_EARLIEST = 1
_LATEST = 2
_TC_CODES = {
    TimestampCombiner.OUTPUT_AT_EOW: _EOW,
    TimestampCombiner.OUTPUT_AT_EARLIEST: _EARLIEST,
    TimestampCombiner.OUTPUT_AT_LATEST: _LATEST,
}

_EARLY = PaneInfoTiming.EARLY
_ON_TIME = PaneInfoTiming.ON_TIME
_LATE = PaneInfoTiming.LATE


class WinState:
    """State of one (key, window): accumulator, pane bookkeeping, watermark hold, trigger slots, timer ids."""

    __slots__ = (
        "window",
        "acc",
        "pending",
        "index",
        "nonspeculative_index",
        "trigger_finished",
        "hold",
        "hold_min",
        "trigger_slots",
        "ids",
        "alive",
    )

    def __init__(self, window: Window, acc: Any, trigger_slots: list[int], ids: list[int]) -> None:
        self.window = window
        self.acc = acc  # None once the trigger finished
        self.pending = False  # elements added since the last pane (Java's NonEmptyPanes)
        self.index = 0  # panes emitted (Beam's INDEX state)
        self.nonspeculative_index = 0  # non-EARLY panes emitted (Beam's NONSPECULATIVE_INDEX state)
        self.trigger_finished = False  # later data for the window is dropped
        self.hold: int | None = None  # combined output-time hold (pane timestamp)
        self.hold_min: int | None = None  # smallest raw hold (what holds the output watermark)
        self.trigger_slots = trigger_slots  # the trigger state machine's counters (`trigger_state_machine`)
        self.ids = ids  # timer owner ids (several after session merges), first one gets new timers
        self.alive = True


class KeyState:
    """All state of one key: its windows and its timers (grouped by owner id, in Beam's order)."""

    __slots__ = ("windows", "timers", "window_by_owner")

    def __init__(self) -> None:
        self.windows: dict[Window, WinState] = {}
        self.timers: dict[int, dict[Any, tuple[int, int]]] = {}
        self.window_by_owner: dict[int, WinState] = {}


class Reducer:
    """The general windowed reducer: every window fn, trigger, accumulation mode and timestamp combiner."""

    def __init__(
        self,
        window_fn: WindowFn,
        trigger: TriggerFn | None = None,
        accumulation_mode: AccumulationMode = AccumulationMode.DISCARDING,
        allowed_lateness_us: int = 0,
        timestamp_combiner: TimestampCombiner = TimestampCombiner.OUTPUT_AT_EOW,
        combine_fn: Any = None,
        *,
        processing_time_us: int = 0,
        collect_dropped: bool = False,
        beam_python_compat: bool = False,
        processing_timers_see_watermark: bool | None = None,
    ) -> None:
        if allowed_lateness_us < 0:
            raise ValueError("allowed lateness must be >= 0")
        self.window_fn = window_fn
        self.trigger = trigger
        self.accumulation_mode = AccumulationMode(accumulation_mode)
        self.allowed_lateness_us = allowed_lateness_us
        self.timestamp_combiner = TimestampCombiner(timestamp_combiner)
        self.compat = beam_python_compat
        # deviations 1 and 2 of the semantics policy, separately switchable for diagnosis
        self.expire_windows = not beam_python_compat
        self.java_merge_holds = not beam_python_compat
        # deviation 3 (see the module docstring); switchable alone for diagnosis
        if processing_timers_see_watermark is None:
            processing_timers_see_watermark = not beam_python_compat
        self.processing_timers_see_watermark = processing_timers_see_watermark
        self._assign = window_fn.assign_micros
        self._window_of = window_fn.window_of
        self._merging = window_fn.is_merging()
        self._trigger_machine: CompiledTrigger = compile_trigger(trigger)
        self._root = self._trigger_machine.root
        self._ops: CombineOps = combine_ops(combine_fn)
        self._add_inputs = self._ops.add_inputs
        self._discarding = self.accumulation_mode == AccumulationMode.DISCARDING
        self._combiner_code = _TC_CODES[self.timestamp_combiner]
        self._keys: dict[Any, KeyState] = {}
        self._wm = MIN_MICROS
        self._now = processing_time_us
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._wm_heap: list[tuple[int, int, Any]] = []
        self._pt_heap: list[tuple[int, int, Any]] = []
        self._gc_heap: list[tuple[int, int, Any, WinState, Window]] = []
        self._hold_heap: list[tuple[int, int, WinState]] = []
        self._panes: dict[tuple[bool, bool, int, int, int], PaneInfo] = {}
        self.dropped_late = 0
        self.dropped_closed = 0
        self._dropped: list[tuple[Any, Any, int, str, BoundedWindow]] | None = [] if collect_dropped else None
        #: The latest dropped elements, whatever `collect_dropped` says: (wall time, key, value, timestamp µs,
        #: reason, window, input watermark µs). Bounded; filled only on the drop path.
        self.late_samples: deque[tuple[float, Any, Any, int, str, Window, int]] = deque(
            maxlen=LATE_SAMPLES_KEPT
        )
        # evaluation context (the reducer is its own TriggerContext)
        self.trigger_slots: list[int] = []
        self.window: Window = (0, 0)
        self.end = 0
        self._current_key_state: KeyState | None = None
        self._current_window: WinState | None = None
        self._current_key: Any = None
        # Tiered state (`checkpoint.reducer_records.ReducerState`, set up when a checkpointing job bounds the state in
        # memory): keys evicted to the state store -> (gc time, hold, session end, fired-session gc) of their
        # state; heaps of the gc times and holds of evicted keys; keys whose state changed since the last
        # checkpoint (None: not tracked). Their timers stay in the timer heaps (keyed by key).
        self._tiered: Any = None
        self._cold: dict[Any, tuple[Any, Any, Any, Any]] = {}
        self._cold_gc: list[tuple[int, int, Any]] = []
        self._cold_hold: list[tuple[int, int, Any]] = []
        self._dirty_keys: set[Any] | None = None
        self._dead_windows = 0  # evicted window states whose heap entries are still in the gc/hold heaps

    # ------------------------------------------------------------------ public API

    @property
    def now(self) -> int:
        """Current processing time (µs)."""
        return self._now

    @property
    def input_watermark(self) -> int:
        """Current input watermark (µs)."""
        return self._wm

    def process_bundle(
        self, keys: Sequence[Any], values: Sequence[Any], timestamps_us: Sequence[int]
    ) -> list[Pane]:
        """Add one bundle, evaluate triggers once per touched (key, window), fire due timers."""
        out: list[Pane] = []
        out_wm = self.output_watermark()
        by_key: dict[Any, list[tuple[Any, int]]] = {}
        for k, v, t in zip(keys, values, timestamps_us):
            items = by_key.get(k)
            if items is None:
                by_key[k] = [(v, t)]
            else:
                items.append((v, t))
        for k, items in by_key.items():
            self._process_key(k, items, out_wm, out)
        if self._wm_heap or self._pt_heap:
            self._fire_timers(out)
        return out

    def advance_input_watermark(self, wm_us: int) -> list[Pane]:
        """Move the input watermark forward: fire event-time timers, then expire windows."""
        assert wm_us >= self._wm, f"watermark moved backwards: {wm_us} < {self._wm}"
        self._wm = wm_us
        out: list[Pane] = []
        self._fire_timers(out)
        if self.expire_windows:
            self._expire(out)
        return out

    def advance_processing_time(self, now_us: int) -> list[Pane]:
        """Move processing time forward and fire due processing-time timers."""
        assert now_us >= self._now, f"processing time moved backwards: {now_us} < {self._now}"
        self._now = now_us
        out: list[Pane] = []
        self._fire_timers(out)
        return out

    def next_processing_time_timer(self) -> int | None:
        """The earliest pending processing-time timer (µs), or None. Never later than the real next one."""
        h = self._pt_heap
        return h[0][0] if h else None

    def output_watermark(self) -> int:
        """min(input watermark, earliest hold of any key - 1µs); may move backwards (Beam's held watermark)."""
        h = self._hold_heap
        wm = self._wm
        while h:
            v, _, ws = h[0]
            if ws.alive and ws.hold_min == v:
                wm = min(wm, v - 1)
                break
            heapq.heappop(h)
        if self._cold_hold:  # holds of evicted keys
            c = self._evicted_hold()
            if c is not None and c - 1 < wm:
                wm = c - 1
        return wm

    def take_dropped(self) -> list[tuple[Any, Any, int, str, BoundedWindow]]:
        """Dropped records since the last call: (key, value, timestamp_us, reason, window)."""
        d = self._dropped
        if d is None:
            return []
        self._dropped = []
        return d

    def state_size(self) -> int:
        """Number of (key, window) states held (for tests and metrics; fast paths add their buffers)."""
        return sum(len(ks.windows) for ks in self._keys.values())

    def open_windows(self) -> set[Window]:
        """The distinct windows (bounds) that hold state for some key."""
        return {w for ks in self._keys.values() for w in ks.windows}

    # ------------------------------------------------------------------ trigger context

    def set_timer(self, name: Any, domain: int, ts: int) -> None:
        """TriggerContext: set the named timer of the current window (owned by its first id)."""
        ks = self._current_key_state
        ws = self._current_window
        assert ks is not None and ws is not None
        tid = ws.ids[0]
        d = ks.timers.get(tid)
        if d is None:
            d = ks.timers[tid] = {}
        val = (domain, ts)
        if d.get(name) != val:
            d[name] = val
            heapq.heappush(
                self._wm_heap if domain == WM else self._pt_heap, (ts, next(self._seq), self._current_key)
            )

    def clear_timer(self, name: Any) -> None:
        """TriggerContext: delete the named timer from every id of the current window."""
        ks = self._current_key_state
        ws = self._current_window
        assert ks is not None and ws is not None
        timers = ks.timers
        for tid in ws.ids:
            d = timers.get(tid)
            if d is not None and name in d:
                del d[name]
                if not d:
                    del timers[tid]

    def _enter(self, key: Any, ks: KeyState, ws: WinState) -> None:
        self._current_key = key
        self._current_key_state = ks
        self._current_window = ws
        self.trigger_slots = ws.trigger_slots
        self.window = ws.window
        self.end = ws.window[1]

    # ------------------------------------------------------------------ elements

    def _drop(self, key: Any, values: Sequence[Any], tss: Sequence[int], reason: str, w: Window) -> None:
        if reason == DROP_LATE:
            self.dropped_late += len(values)
        else:
            self.dropped_closed += len(values)
        # only the last few of a burst: the ring keeps LATE_SAMPLES_KEPT anyway
        keep = -LATE_SAMPLES_KEPT
        now, samples, wm = time.time(), self.late_samples, self._wm
        for v, t in zip(values[keep:], tss[keep:], strict=True):
            samples.append((now, key, v, t, reason, w, wm))
        if self._dropped is not None:
            win = self._window_of(*w)
            self._dropped.extend((key, v, t, reason, win) for v, t in zip(values, tss))

    def _process_key(self, key: Any, items: list[tuple[Any, int]], out_wm: int, out: list[Pane]) -> None:
        wm = self._wm
        limit = wm - self.allowed_lateness_us  # a window is expired iff end < limit (wm > end + lateness)
        assign = self._assign
        w2e: dict[Window, tuple[list[Any], list[int]]] = {}
        for v, t in items:
            for w in assign(t):
                if w[1] < limit:
                    self._drop(key, (v,), (t,), DROP_LATE, w)
                    continue
                e = w2e.get(w)
                if e is None:
                    w2e[w] = ([v], [t])
                else:
                    e[0].append(v)
                    e[1].append(t)
        if w2e:
            self._process_windows(key, w2e, out_wm, out)

    def _process_windows(
        self, key: Any, w2e: dict[Window, tuple[list[Any], list[int]]], out_wm: int, out: list[Pane]
    ) -> None:
        """Add one key's elements of a bundle, already assigned to (not expired) windows."""
        ks = self._keys.get(key)
        if ks is None:
            if key in self._cold:
                ks = self._reload_key(key)
            if ks is None:
                ks = self._keys[key] = KeyState()
        if self._dirty_keys is not None:
            self._dirty_keys.add(key)
        if self._merging:
            w2e = self._merge_windows(key, ks, w2e)
        for w, (vals, tss) in w2e.items():
            self._add(key, ks, w, vals, tss, out_wm, out)

    def _new_window_state(self, key: Any, ks: KeyState, w: Window) -> WinState:
        tid = next(self._ids)
        ws = WinState(w, self._ops.create(), self._trigger_machine.new_state(), [tid])
        ks.windows[w] = ws
        ks.window_by_owner[tid] = ws
        heapq.heappush(self._gc_heap, (self._gc_time(w), next(self._seq), key, ws, w))
        return ws

    def _gc_time(self, w: Window) -> int:
        # The window expires when the input watermark is strictly past end + allowed lateness; capped so
        # that the watermark at +infinity expires every window.
        return min(w[1] + self.allowed_lateness_us, MAX_MICROS - 1)

    def _add(
        self, key: Any, ks: KeyState, w: Window, vals: list[Any], tss: list[int], out_wm: int, out: list[Pane]
    ) -> None:
        ws = ks.windows.get(w)
        if ws is None:
            ws = self._new_window_state(key, ks, w)
        if ws.trigger_finished:
            self._drop(key, vals, tss, DROP_CLOSED, w)
            return
        tc = self._combiner_code
        if tc == _EOW:
            if ws.hold_min != w[1] - 1:  # the end-of-window hold is the same value every time
                self._add_hold(ws, w[1] - 1)
        else:
            valid = [t for t in tss if t >= out_wm]
            if valid:
                self._add_hold(ws, min(valid) if tc == _EARLIEST else max(valid))
        ws.acc = self._add_inputs(ws.acc, vals)
        ws.pending = True
        # enter the window's trigger context (inlined _enter: this is the per-(key, window) hot path)
        self._current_key = key
        self._current_key_state = ks
        self._current_window = ws
        self.trigger_slots = ws.trigger_slots
        self.window = w
        self.end = w[1]
        root = self._root
        root.on_element(self, len(vals))
        wm = self._wm
        if root.should_fire(self, WM, wm):
            finished = root.on_fire(self, wm)
            out.append(self._output(key, ws, finished, out_wm, False))

    def _add_hold(self, ws: WinState, h: int) -> None:
        if ws.hold is None:
            ws.hold = h
        elif self._combiner_code == _EARLIEST:
            if h < ws.hold:
                ws.hold = h
        elif h > ws.hold:
            ws.hold = h
        if ws.hold_min is None or h < ws.hold_min:
            ws.hold_min = h
            heapq.heappush(self._hold_heap, (h, next(self._seq), ws))

    # ------------------------------------------------------------------ merging (sessions)

    def _merge_windows(
        self, key: Any, ks: KeyState, w2e: dict[Window, tuple[list[Any], list[int]]]
    ) -> dict[Window, tuple[list[Any], list[int]]]:
        known = ks.windows
        new = [w for w in w2e if w not in known]
        if not new:
            return w2e
        groups = self.window_fn.merge_bounds(list(known) + new)
        if not groups:
            return w2e
        merged_away: dict[Window, Window] = {}
        for group, result in groups:
            self._merge_group(key, ks, group, result)
            for w in group:
                if w != result:
                    merged_away[w] = result
        out: dict[Window, tuple[list[Any], list[int]]] = {}
        for w, (vals, tss) in w2e.items():
            while w in merged_away:
                w = merged_away[w]
            e = out.get(w)
            if e is None:
                out[w] = (list(vals), list(tss))
            else:
                e[0].extend(vals)
                e[1].extend(tss)
        return out

    def _merge_group(self, key: Any, ks: KeyState, group: list[Window], result: Window) -> None:
        known = ks.windows
        parts = [known[w] for w in group if w in known]
        if not parts:
            return  # only new windows: the result's state is created when its elements are added
        res = known.get(result)
        if res is None and len(parts) == 1:
            self._grow_window(key, ks, parts[0], group, result)
            return
        others = [p for p in parts if p is not res]
        if res is None:
            res = WinState(result, None, [], [])
            known[result] = res
            heapq.heappush(self._gc_heap, (self._gc_time(result), next(self._seq), key, res, result))
            constituents = others
        else:
            constituents = [res, *others]
        # pane numbering survives only in a result window that already existed (Beam clears it for the others)
        ops = self._ops
        accs = [p.acc for p in constituents if p.acc is not None]
        res.trigger_finished = any(p.trigger_finished for p in constituents)
        res.acc = None if res.trigger_finished else (ops.merge(accs) if accs else ops.create())
        res.pending = any(p.pending for p in constituents)
        res.trigger_slots = self._trigger_machine.merge_states([p.trigger_slots for p in constituents])
        ids = list(res.ids)
        for p in others:
            ids.extend(p.ids)
        res.ids = ids
        for tid in ids:
            ks.window_by_owner[tid] = res
        holds = [p.hold for p in constituents if p.hold is not None]
        mins = [p.hold_min for p in constituents if p.hold_min is not None]
        if holds:
            if not self.java_merge_holds:
                # Python SDK: the raw holds of merged windows move with their ids to the result
                res.hold = min(holds) if self._combiner_code == _EARLIEST else max(holds)
                res.hold_min = min(mins)
            else:
                # Java's WatermarkHold.onMerge: sources cleared, one combined hold on the result
                if self._combiner_code == _EOW:
                    h = result[1] - 1
                elif self._combiner_code == _EARLIEST:
                    h = min(holds)
                else:
                    h = max(holds)
                res.hold = res.hold_min = h
            heapq.heappush(self._hold_heap, (res.hold_min, next(self._seq), res))
        else:
            res.hold = res.hold_min = None
        for p in others:
            p.alive = False
            del known[p.window]
        self._enter(key, ks, res)
        self._root.on_merge(self, group, result)

    def _grow_window(self, key: Any, ks: KeyState, ws: WinState, group: list[Window], result: Window) -> None:
        """One known session merged with new proto-windows: the same state under the grown window.

        Equivalent to the general merge with a single constituent (pane numbering reset, one hold), without
        rebuilding the state: the common case of a session extended by its next element.
        """
        del ks.windows[ws.window]
        ws.window = result
        ks.windows[result] = ws
        ws.index = 0
        ws.nonspeculative_index = 0
        heapq.heappush(self._gc_heap, (self._gc_time(result), next(self._seq), key, ws, result))
        if ws.hold is not None and self.java_merge_holds:
            h = result[1] - 1 if self._combiner_code == _EOW else ws.hold
            ws.hold = h
            if ws.hold_min != h:
                ws.hold_min = h
                heapq.heappush(self._hold_heap, (h, next(self._seq), ws))
        self._enter(key, ks, ws)
        self._root.on_merge(self, group, result)

    # ------------------------------------------------------------------ panes

    def _pane_info(
        self, is_first: bool, is_last: bool, timing: int, index: int, nonspeculative_index: int
    ) -> PaneInfo:
        k = (is_first, is_last, timing, index, nonspeculative_index)
        p = self._panes.get(k)
        if p is None:
            p = PaneInfo(is_first, is_last, timing, index, nonspeculative_index)
            if len(self._panes) < 4096:
                self._panes[k] = p
        return p

    def _output(self, key: Any, ws: WinState, finished: bool, out_wm: int, maybe_ontime: bool) -> Pane:
        w = ws.window
        max_ts = w[1] - 1
        index = ws.index
        ws.index = index + 1
        if out_wm <= max_ts:
            timing = _EARLY
            nonspeculative_index = -1
            if ws.nonspeculative_index:
                nonspeculative_index = ws.nonspeculative_index
                ws.nonspeculative_index += 1
        else:
            nonspeculative_index = ws.nonspeculative_index
            ws.nonspeculative_index = nonspeculative_index + 1
            timing = _ON_TIME if maybe_ontime and nonspeculative_index == 0 else _LATE
        ops = self._ops
        value = ops.extract(ws.acc)
        if finished:
            ws.acc = None
            ws.trigger_finished = True
        elif self._discarding:
            ws.acc = ops.create()
        ws.pending = False
        h = ws.hold
        if h is None:
            ts = max_ts
        else:
            ts = h
            if not (out_wm < w[1] and self._trigger_machine.has_ontime_pane):
                ws.hold = ws.hold_min = None
        return Pane(
            key,
            self._window_of(*w),
            value,
            ts,
            self._pane_info(index == 0, bool(finished), timing, index, nonspeculative_index),
        )

    # ------------------------------------------------------------------ timers and expiry

    def _fire_timers(self, out: list[Pane]) -> None:
        wm = self._wm
        now = self._now
        due: dict[Any, None] = {}
        h = self._wm_heap
        while h and h[0][0] <= wm:
            due[heapq.heappop(h)[2]] = None
        h = self._pt_heap
        while h and h[0][0] <= now:
            due[heapq.heappop(h)[2]] = None
        kd = self._dirty_keys
        for key in due:
            ks = self._keys.get(key)
            if ks is None and key in self._cold:
                ks = self._reload_key(key)
            if ks is None or not ks.timers:
                continue
            if kd is not None:
                kd.add(key)
            fired = []
            timers = ks.timers
            for tid, d in list(timers.items()):
                for name, (dom, ts) in list(d.items()):
                    if ts <= (wm if dom == WM else now):
                        fired.append((tid, dom, ts))
                        del d[name]
                if not d:
                    del timers[tid]
            for tid, dom, ts in fired:
                self._process_timer(key, ks, tid, dom, ts, out)

    def _process_timer(self, key: Any, ks: KeyState, tid: int, domain: int, ts: int, out: list[Pane]) -> None:
        ws = ks.window_by_owner.get(tid)
        if ws is None or not ws.alive or ws.trigger_finished:
            return
        self._enter(key, ks, ws)
        root = self._root
        if domain != WM and self.processing_timers_see_watermark:
            wm = self._wm
            if root.should_fire(self, domain, wm):
                finished = root.on_fire(self, wm)
                out.append(self._output(key, ws, finished, self.output_watermark(), False))
            return
        if root.should_fire(self, domain, ts):
            finished = root.on_fire(self, ts)
            out.append(self._output(key, ws, finished, ts, domain == WM))

    def _expire(self, out: list[Pane]) -> None:
        h = self._gc_heap
        wm = self._wm
        if self._cold_gc and self._cold_gc[0][0] < wm:
            self._reload_expiring(wm)  # evicted keys with windows to expire come back first
        if not h or h[0][0] >= wm:
            return
        out_wm = self.output_watermark()
        kd = self._dirty_keys
        while h and h[0][0] < wm:
            _, _, key, ws, w = heapq.heappop(h)
            if not ws.alive or ws.window != w:
                continue  # merged away, or renamed by a session merge (its new window has its own entry)
            ks = self._keys[key]
            if kd is not None:
                kd.add(key)
            if ws.pending and not ws.trigger_finished:
                out.append(self._final_pane(key, ws, out_wm))
            self._delete(key, ks, ws)

    def _final_pane(self, key: Any, ws: WinState, out_wm: int) -> Pane:
        """Deviation 1: the pane that releases data no pane emitted when the window expires (Java's GC pane)."""
        w = ws.window
        max_ts = w[1] - 1
        index = ws.index
        nonspeculative_index = ws.nonspeculative_index
        timing = _LATE if nonspeculative_index > 0 or out_wm > max_ts else _ON_TIME
        value = self._ops.extract(ws.acc)
        ts = ws.hold if ws.hold is not None else max_ts
        return Pane(
            key,
            self._window_of(*w),
            value,
            ts,
            self._pane_info(index == 0, True, timing, index, nonspeculative_index),
        )

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
        kd = self._dirty_keys
        assert kd is not None
        dirty = dict.fromkeys(kd)  # a dict: keys in a stable order
        if everything:
            dirty.update(dict.fromkeys(self._keys))
        kd.clear()
        return dirty

    def mark_changed(self, keys: Any) -> None:
        """Record `keys` as changed again (a checkpoint that captured them was not written)."""
        assert self._dirty_keys is not None
        self._dirty_keys.update(keys)

    def ahead_keys(self) -> list[Any]:
        """Keys whose per-key record may have changed: the candidates of a write-ahead pass."""
        return list(self._dirty_keys) if self._dirty_keys else []

    def take_changed(self, keys: list[Any]) -> list[Any]:
        """Those of `keys` whose per-key record changed, no longer recorded as changed (the caller writes them
        ahead of the coming checkpoint)."""
        kd = self._dirty_keys
        assert kd is not None
        out = [k for k in keys if k in kd]
        kd.difference_update(out)
        return out

    def pending_changes(self) -> int:
        """Number of keys recorded as changed."""
        return len(self._dirty_keys) if self._dirty_keys is not None else 0

    def take_deleted_keys(self) -> list[Any]:
        """Changed keys whose state is gone altogether (their records are deletions); no longer recorded."""
        kd = self._dirty_keys
        assert kd is not None
        gone = [k for k in kd if not self._holds_key(k)]
        for k in gone:
            kd.discard(k)
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
        kd = self._dirty_keys
        assert kd is not None
        held = int(ks is not None)
        dirty = everything or key in kd
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
        extra, sessions, send, fired, sfgc, fast_dirty = self._evict_fast_key(key)
        held += extra
        if general is None and sessions is None and fired is None:
            return held, None  # nothing left (a deletion stays recorded as a change)
        record = None
        if dirty or fast_dirty:
            record = [general, sessions, fired]
            kd.discard(key)
        self._index_evicted(key, gc_min, hold_min, send, sfgc, heapq.heappush)
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
        send: Any,
        sfgc: Any,
        push: Callable[[list[Any], Any], None],
    ) -> None:
        self._cold[key] = (gc_min, hold_min, send, sfgc)
        seq = self._seq
        if gc_min is not None:
            push(self._cold_gc, (gc_min, next(seq), key))
        if hold_min is not None:
            push(self._cold_hold, (hold_min, next(seq), key))
        if send is not None or sfgc is not None:
            self._index_evicted_sessions(key, send, sfgc, push)

    def _index_evicted_sessions(
        self, key: Any, send: Any, sfgc: Any, push: Callable[[list[Any], Any], None]
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
            ks, _ = decode_key_state(self, key, general[0], general[1], heapq.heappush, with_timers=False)
        self._load_fast_key(key, sessions, fired, None)
        if changed:
            assert self._dirty_keys is not None
            self._dirty_keys.add(key)
        return ks

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
                decode_key_state(self, key, general[0], general[1], list.append)
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
                    (self._wm_heap if dom == 0 else self._pt_heap).append((ts, next(seq), key))
        send = min(s[1] for s in sessions) if sessions else None
        sfgc = min(self._gc_time((f[0], f[1])) for f in fired) if fired else None
        self._index_evicted(key, gc_min, hold_min, send, sfgc, list.append)

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

    def state_header(self) -> dict[str, Any]:
        """What a checkpoint's header records besides the entries (time, counters, the fast paths' windows)."""
        next_id = next(self._ids)
        self._ids = itertools.count(next_id)
        return {
            "class": type(self).__name__,
            "strategy": strategy(self),
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
        check_strategy(self, header["strategy"], "state was written")
        self._keys = {}
        self._wm = header["watermark"]
        self._now = header["processing_time"]
        self.dropped_late = header["dropped_late"]
        self.dropped_closed = header["dropped_closed"]
        self._ids = itertools.count(header["next_id"])
        self._wm_heap, self._pt_heap, self._gc_heap, self._hold_heap = [], [], [], []
        self._cold, self._cold_gc, self._cold_hold = {}, [], []
        self._dirty_keys = set()


def create_reducer(
    window_fn: WindowFn,
    trigger: TriggerFn | None = None,
    accumulation_mode: AccumulationMode = AccumulationMode.DISCARDING,
    allowed_lateness_us: int = 0,
    timestamp_combiner: TimestampCombiner = TimestampCombiner.OUTPUT_AT_EOW,
    combine_fn: Any = None,
    **options: Any,
) -> Reducer:
    """The fastest reducer implementation for a windowing strategy (same semantics as `Reducer`).

    Fast paths (`windowing.fast.sliced`) cover DefaultTrigger / AfterWatermark without early firings with the
    end-of-window timestamp combiner, for fixed, sliding, global and session windows; everything else
    (and ``beam_python_compat=True``) uses the general `Reducer`.
    """
    from millstream.engine.runtime.windowing.fast.sliced import fast_reducer_class

    cls = fast_reducer_class(window_fn, trigger, timestamp_combiner, bool(options.get("beam_python_compat")))
    return (cls or Reducer)(
        window_fn, trigger, accumulation_mode, allowed_lateness_us, timestamp_combiner, combine_fn, **options
    )
