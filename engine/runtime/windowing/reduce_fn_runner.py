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
   timing against the held output watermark (Java's model), one value for all timers fired together (a
   runner's bundle sees the watermarks of its start). The Python SDK takes the timer's processing
   time for the watermark (AfterWatermark asks "timer time >= window end"), so when event time lags
   processing time (a replay, a backfill) the first early firing ends AfterWatermark with a LATE pane and
   the rest of the window's data is dropped.

``beam_python_compat=True`` turns all three off (no expiry, Python's hold bookkeeping, processing-time
timers seen as the watermark) to reproduce the Python SDK exactly; the conformance suite runs both ways.
``processing_timers_see_watermark`` switches deviation 3 alone (None: on unless in compat mode).

Fast paths for the common configurations are subclasses chosen by `create_reducer`.

The module holds the semantics: elements, the trigger context, session merging, timers and expiry. What the
reducer holds, and the state interface durable jobs use (``track_changes``, ``evict_key``, ``key_record``,
``state_header``, ...; docs/state.md), are its base `windowing.keyed_state.KeyedWindowState`; the records
are `windowing.window_state`; panes and their numbering are `windowing.panes`.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from millstream.engine.model.trigger import AccumulationMode, TriggerFn
from millstream.engine.model.window import BoundedWindow, TimestampCombiner, WindowFn
from millstream.engine.runtime.windowing.combine_fns import CombineOps, combine_ops
from millstream.engine.runtime.windowing.keyed_state import KeyedWindowState
from millstream.engine.runtime.windowing.panes import Pane, PaneBuilder
from millstream.engine.runtime.windowing.snapshot import check_strategy, strategy
from millstream.engine.runtime.windowing.trigger_state_machine import WM, CompiledTrigger, compile_trigger
from millstream.engine.runtime.windowing.window_state import KeyState, Window, WinState

__all__ = [
    "DROP_CLOSED",
    "DROP_LATE",
    "LATE_SAMPLES_KEPT",
    "Reducer",
    "create_reducer",
    "group_by_key",
]

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


class Reducer(KeyedWindowState):
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
        super().__init__(allowed_lateness_us, processing_time_us)
        self.window_fn = window_fn
        self.trigger = trigger
        self.accumulation_mode = AccumulationMode(accumulation_mode)
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
        self._panes = PaneBuilder(
            self._ops, self._discarding, self._window_of, self._trigger_machine.has_ontime_pane
        )
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
        for k, items in group_by_key(zip(keys, values, timestamps_us)).items():
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

    def _process_key(
        self,
        key: Any,
        items: list[tuple[Any, int]],
        out_wm: int,
        out: list[Pane],
        assign: Callable[[int], Iterable[Window]] | None = None,
    ) -> None:
        """Add one key's elements of a bundle to the windows `assign` gives (default: the window fn's; a fast
        path leaves out the windows it buffers itself); expired windows drop them."""
        wm = self._wm
        limit = wm - self.allowed_lateness_us  # a window is expired iff end < limit (wm > end + lateness)
        if assign is None:
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
            out.append(self._panes.emit(key, ws, finished, out_wm, False))

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
        if not due:
            return
        # One output watermark for every timer fired together, as a runner fires them in one bundle against
        # the watermarks of its start: a hold released by one firing must not change the timing of the next,
        # or panes would depend on the order of keys (which a restore does not keep).
        out_wm = self.output_watermark()
        dirty_keys = self._dirty_keys
        for key in due:
            ks = self._keys.get(key)
            if ks is None and key in self._cold:
                ks = self._reload_key(key)
            if ks is None or not ks.timers:
                continue
            if dirty_keys is not None:
                dirty_keys.add(key)
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
                self._process_timer(key, ks, tid, dom, ts, out_wm, out)

    def _process_timer(
        self, key: Any, ks: KeyState, tid: int, domain: int, ts: int, out_wm: int, out: list[Pane]
    ) -> None:
        """Fire one timer of `key`; a processing-time firing's pane is timed against `out_wm`, the output
        watermark when this batch of timers started firing (deviation 3)."""
        ws = ks.window_by_owner.get(tid)
        if ws is None or not ws.alive or ws.trigger_finished:
            return
        self._enter(key, ks, ws)
        root = self._root
        if domain != WM and self.processing_timers_see_watermark:
            wm = self._wm
            if root.should_fire(self, domain, wm):
                finished = root.on_fire(self, wm)
                out.append(self._panes.emit(key, ws, finished, out_wm, False))
            return
        if root.should_fire(self, domain, ts):
            finished = root.on_fire(self, ts)
            out.append(self._panes.emit(key, ws, finished, ts, domain == WM))

    def _expire(self, out: list[Pane]) -> None:
        h = self._gc_heap
        wm = self._wm
        if self._cold_gc and self._cold_gc[0][0] < wm:
            self._reload_expiring(wm)  # evicted keys with windows to expire come back first
        if not h or h[0][0] >= wm:
            return
        out_wm = self.output_watermark()
        dirty_keys = self._dirty_keys
        while h and h[0][0] < wm:
            _, _, key, ws, w = heapq.heappop(h)
            if not ws.alive or ws.window != w:
                continue  # merged away, or renamed by a session merge (its new window has its own entry)
            ks = self._keys[key]
            if dirty_keys is not None:
                dirty_keys.add(key)
            if ws.pending and not ws.trigger_finished:
                out.append(self._panes.final(key, ws, out_wm))
            self._delete(key, ks, ws)

    # ------------------------------------------------------------------ the header's strategy

    def _strategy_record(self) -> list[Any]:
        """The windowing strategy a checkpoint's header records."""
        return strategy(self)

    def _check_strategy_record(self, stored: Any) -> None:
        """Refuse a header recorded under another windowing strategy."""
        check_strategy(self, stored, "state was written")


def group_by_key(elements: Iterable[tuple[Any, Any, int]]) -> dict[Any, list[tuple[Any, int]]]:
    """``(key, value, timestamp)`` triples grouped by key in first-seen order: ``{key: [(value, timestamp)]}``."""
    by_key: dict[Any, list[tuple[Any, int]]] = {}
    for k, v, t in elements:
        items = by_key.get(k)
        if items is None:
            by_key[k] = [(v, t)]
        else:
            items.append((v, t))
    return by_key


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
