"""The stateful ParDo operator: Beam's user state and timers for keyed DoFns, per key and window.

State cells live in memory, one dict per (key, window); timers sit in two heaps (event time and processing
time) with lazy deletion, and window expiry in buckets by garbage-collection time, so firing costs
O(timers fired), never a scan over keys.

Semantics (Beam's; the API is in `millstream.engine.model.userstate`):

* Input elements must be (key, value) pairs; state and timers are scoped to (key, window). Windows come
  from the batch's `wins` column or are assigned from timestamps; merging windows (Sessions) are refused.
* A WATERMARK timer fires once the input watermark reaches its timestamp (``wm >= t``, the engine's and
  Beam Python's rule); what its callback outputs is timestamped with the timer's timestamp. A REAL_TIME
  timer fires when the job's clock reaches its timestamp; its output is timestamped with the timestamp of
  the element (or timer) in whose context it was set (Beam's hold timestamp; Beam Python stamps it with the
  processing time, which can fall behind the watermark). `DoFn.TimestampParam` in a callback is the
  firing time. Setting a timer again replaces it; timers fire in timestamp order, ties in the order set.
* Pending timers hold the output watermark at their output timestamps, so downstream windows do not close
  before a callback's output arrives.
* A window expires when the input watermark passes its end + allowed lateness: the (key, window)'s
  remaining event-time timers fire (also those set beyond the expiry, e.g. at ``window.end``), its
  processing-time timers are dropped, and its state is discarded. Elements of expired windows are dropped
  and counted (`dropped_late`). At the end of input (watermark +infinity) every window expires, and the
  pending processing-time timers fire too (as Beam's runners do). Timers set while a window is expiring
  are ignored, so the end of input always terminates.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import param_markers
from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, Timestamp, to_micros
from millstream.engine.model.userstate import (
    BaseTimer,
    CombiningValueStateSpec,
    StateSpec,
    TimeDomain,
    TimerSpec,
    get_dofn_specs,
    timer_callbacks,
    validate_stateful_dofn,
)
from millstream.engine.model.window import FixedWindows
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import raise_user_error, truncate_repr
from millstream.engine.runtime.operators.pardo import ParDoNode, _Outputs, element_keyword_call
from millstream.engine.runtime.operators.userstate_cells import STATE_IMPLS, CombiningState
from millstream.engine.runtime.watermarks import WatermarkHolds

__all__ = ["StatefulParDoNode"]

_WM = 0  # event-time (watermark) domain
_RT = 1  # processing-time domain
#: Processing time with an explicit output timestamp (`BaseTimer.set(..., output_timestamp=)`): like a splittable
#: DoFn's deferred remainder, it holds the watermark and keeps its key and window alive past the end of the
#: input until it has fired and set no other such timer.
_RT_HELD = 2
_TIMER = 0  # event-heap entry kinds: a user timer sorts before a window expiry at the same time
_EXPIRY = 1

# How an argument marker is resolved (precomputed per method).
_ARG_STATE, _ARG_TIMER, _ARG_KEY, _ARG_WINDOW, _ARG_TIMESTAMP, _ARG_NOW, _ARG_OTHER = range(7)
_ON_TIMER_ARGS = {
    "StateParam",
    "TimerParam",
    "KeyParam",
    "WindowParam",
    "TimestampParam",
    "PaneInfoParam",
    "ProcessingTimeParam",
}


class _KeyWindow:
    """The state of one (key, window): its cells by spec name and its live timers by (timer name, tag).

    Heap entries and watermark holds refer to this object (identity hash: cheap); an entry is valid while
    ``timers[tk].seq`` matches it, so a timer is cancelled by removing it here and nowhere else.
    """

    __slots__ = ("key", "window", "key_window_id", "cells", "timers", "gc_time", "closing")

    def __init__(self, key: Any, window: Any, gc_time: int) -> None:
        self.key = key
        self.window = window
        #: The key of `StatefulParDoNode.key_windows`: the user key and the window's bounds (ints hash fast).
        self.key_window_id = (key, window.start_us, window.end_us)
        self.cells: dict[str, Any] = {}
        self.timers: dict[tuple[str, str], _TimerRecord] = {}
        self.gc_time = gc_time
        #: Set while the window expires: timers set now are ignored.
        self.closing = False


class _TimerRecord:
    """One live timer: its domain, firing time, output (hold) timestamp, and the sequence number of its setting."""

    __slots__ = ("domain", "fire_us", "hold_us", "seq")

    def __init__(self, domain: int, fire_us: int, hold_us: int, seq: int) -> None:
        self.domain = domain
        self.fire_us = fire_us
        self.hold_us = hold_us
        self.seq = seq


# ------------------------------------------------------------------------------------------------------
# The timer user code receives (its state cells are in `userstate_cells`)


class _Timer(BaseTimer):
    """A timer of the current key and window; `hold_us` is the output timestamp of a processing-time timer."""

    __slots__ = ("_node", "_kw", "_spec", "_hold_us")

    def __init__(self, node: StatefulParDoNode, kw: _KeyWindow, spec: TimerSpec, hold_us: int) -> None:
        self._node = node
        self._kw = kw
        self._spec = spec
        self._hold_us = hold_us

    def set(self, timestamp: Any, dynamic_timer_tag: str = "", output_timestamp: Any = None) -> None:
        """Fire at `timestamp` (seconds, Timestamp); replaces an earlier setting of this timer and tag. A
        processing-time timer's outputs get `output_timestamp` when given (see `BaseTimer.set`)."""
        if output_timestamp is None:
            self._node._set_timer(
                self._kw, self._spec, dynamic_timer_tag, to_micros(timestamp), self._hold_us
            )
        else:
            out_us = to_micros(output_timestamp)
            if self._spec.time_domain != TimeDomain.WATERMARK:
                self._node._check_output_timestamp(self._kw, self._spec, out_us, self._hold_us)
            self._node._set_timer(self._kw, self._spec, dynamic_timer_tag, to_micros(timestamp), out_us, True)

    def clear(self, dynamic_timer_tag: str = "") -> None:
        """Cancel this timer (and tag)."""
        self._node._clear_timer(self._kw, (self._spec.name, dynamic_timer_tag))


# ------------------------------------------------------------------------------------------------------
# The operator


class StatefulParDoNode(ParDoNode):
    """Runs one ParDo whose DoFn uses user state or timers."""

    def __init__(
        self,
        label: str,
        transform: ParDo,
        windowing: Windowing,
        side_windowings: list[Windowing],
    ) -> None:
        super().__init__(label, transform, windowing, side_windowings)
        dofn = self.dofn
        if transform.is_async or getattr(dofn, "is_async", False):
            raise TypeError(
                f"step '{label}': a DoFn with state or timers cannot be async (async def process)"
            )
        if windowing.windowfn.is_merging():
            raise ValueError(
                f"step '{label}': state and timers are not supported with merging windows "
                f"({type(windowing.windowfn).__name__}); Beam does not support them either"
            )
        validate_stateful_dofn(dofn, label)
        self.windowing = windowing
        self.lateness_us = windowing.allowed_lateness_us
        states, timers = get_dofn_specs(dofn)
        self.state_specs: dict[str, StateSpec] = {s.name: s for s in states}
        self.timer_specs: dict[str, TimerSpec] = {t.name: t for t in timers}
        self.combine_fns = [s.combine_fn for s in states if isinstance(s, CombiningValueStateSpec)]
        self._process_args = self._arg_plan(self.markers, "process")
        self._callbacks: dict[str, tuple[TimerSpec, Callable[..., Any], list[tuple[str, int, Any]]]] = {}
        for name, (spec, bound) in timer_callbacks(dofn).items():
            markers = param_markers(bound)
            for arg, m in markers.items():
                if m.name not in _ON_TIMER_ARGS:
                    raise ValueError(
                        f"step '{label}': {bound.__name__}(..., {arg}=DoFn.{m.name}) is not supported in an "
                        f"on_timer method; it may take {sorted(_ON_TIMER_ARGS)}"
                    )
            self._callbacks[name] = (spec, bound, self._arg_plan(markers, bound.__name__))
        self._global = (self.windows.global_window,) if self.windows.is_global else None
        # One window per element whose bounds contain its timestamp: the last window can be reused.
        self._fixed = isinstance(windowing.windowfn, FixedWindows)

        #: (key, window start, window end) -> the state of that key and window.
        self.key_windows: dict[tuple[Any, int, int], _KeyWindow] = {}
        #: (time, kind, seq, key-window, (name, tag)) for event-time timers and window expiries.
        self.event_heap: list[tuple[int, int, int, Any, Any]] = []
        #: (time, seq, key-window, (name, tag)) for processing-time timers.
        self.proc_heap: list[tuple[int, int, Any, Any]] = []
        #: gc time -> the key-windows expiring then (insertion-ordered).
        self.gc_buckets: dict[int, dict[tuple[Any, int, int], None]] = {}
        self.n_timers = 0
        self.holds = WatermarkHolds()
        self._seq = itertools.count()
        self.end_of_input = False
        #: (key, window)s kept past the end of the input by their held processing-time timers (`_RT_HELD`).
        self.lingering: dict[Any, _KeyWindow] = {}
        #: Called when the earliest processing-time timer may have moved earlier (set by the executor).
        self.timer_changed: Callable[[], None] | None = None
        self.dirty = False
        #: Incremental checkpoints (`attach_state_tier`); None without a checkpointing state store.
        self.tiered: Any = None
        #: The (key, window)s touched since the last checkpoint (the tier's set), None when not tiered.
        self._touched: set[Any] | None = None
        #: Elements dropped because their window had expired (end + allowed lateness passed).
        self.dropped_late = 0
        #: The processing time `advance_processing_time` fires timers at (`ProcessingTimeParam`), else None.
        self._now_us: int | None = None

    def _arg_plan(self, markers: dict[str, Any], method: str) -> list[tuple[str, int, Any]]:
        """How to produce each marker argument of a method: (argument, resolution code, payload)."""
        plan: list[tuple[str, int, Any]] = []
        for arg, m in markers.items():
            name = m.name
            if name == "StateParam":
                spec = m.spec
                if isinstance(spec, CombiningValueStateSpec):
                    plan.append((arg, _ARG_STATE, (CombiningState, spec.name, spec.combine_fn)))
                    continue
                impl = next((c for base, c in STATE_IMPLS if isinstance(spec, base)), None)
                if impl is None:
                    raise TypeError(f"step '{self.label}': {method}() asks for unsupported state {spec!r}")
                plan.append((arg, _ARG_STATE, (impl, spec.name, None)))
            elif name == "TimerParam":
                plan.append((arg, _ARG_TIMER, m.spec))
            elif name == "KeyParam":
                plan.append((arg, _ARG_KEY, None))
            elif name == "WindowParam":
                plan.append((arg, _ARG_WINDOW, None))
            elif name == "TimestampParam":
                plan.append((arg, _ARG_TIMESTAMP, None))
            elif name == "ProcessingTimeParam":
                plan.append((arg, _ARG_NOW, None))
            else:
                plan.append((arg, _ARG_OTHER, m))
        return plan

    def _kwargs(
        self,
        plan: list[tuple[str, int, Any]],
        base: dict[str, Any],
        kw: _KeyWindow,
        v: Any,
        t: int,
        hold_us: int,
        pane: Any,
    ) -> dict[str, Any]:
        kwargs = dict(base)
        cells = kw.cells
        if self._touched is not None:
            # whatever runs with these arguments may change the (key, window)
            self._touched.add(kw.key_window_id)
        for arg, code, payload in plan:
            if code == _ARG_STATE:
                cls, name, fn = payload
                kwargs[arg] = cls(cells, name, fn) if fn is not None else cls(cells, name)
            elif code == _ARG_TIMER:
                kwargs[arg] = _Timer(self, kw, payload, hold_us)
            elif code == _ARG_KEY:
                kwargs[arg] = kw.key
            elif code == _ARG_WINDOW:
                kwargs[arg] = kw.window
            elif code == _ARG_TIMESTAMP:
                kwargs[arg] = Timestamp(micros=t)
            elif code == _ARG_NOW:  # the timer loop's time, else (firing at the end of input) the timer's
                kwargs[arg] = Timestamp(micros=self._now_us if self._now_us is not None else t)
            else:
                kwargs[arg] = self._marker_value(payload, v, t, kw.window, pane)
        return kwargs

    # -- lifecycle ----------------------------------------------------------------------------------------
    def open(self) -> None:
        super().open()
        for fn in self.combine_fns:
            try:
                fn.setup()
            except Exception as e:
                raise_user_error(self.label, "<CombineFn.setup>", e)

    def close(self) -> None:
        for fn in self.combine_fns:
            try:
                fn.teardown()
            except Exception:  # best effort, as DoFn.teardown
                pass
        super().close()

    # -- checkpoint hooks ---------------------------------------------------------------------------------
    def state_layout(self) -> dict[str, Any]:
        """What this operator stores (part of the pipeline fingerprint)."""
        return {
            "kind": "userstate",
            "fn": type(self.dofn).__qualname__,
            "state": sorted([s.name, s.kind] for s in self.state_specs.values()),
            "timers": sorted([t.name, t.time_domain] for t in self.timer_specs.values()),
            "window": repr(self.windowing.windowfn),
        }

    def state_dirty(self) -> bool:
        """True when state or timers (or side inputs, see ParDoNode) may have changed since the last snapshot."""
        return self.dirty or super().state_dirty()

    def _side_state(self) -> dict[str, Any]:
        """The side inputs' part of a whole snapshot (ParDoNode's snapshot), beside the user state; none without
        side inputs. Without it a restored run would lose what a finished side source sent. Incremental
        checkpoints keep it in an entry of its own, written only when it changed (`UserStateTier.capture`)."""
        return {"sides": super().snapshot_state()} if self.side_inputs else {}

    def _restore_side_state(self, data: dict[str, Any]) -> None:
        sides = data.get("sides")
        if sides is not None:
            super().restore_state(sides)

    def snapshot_state(self) -> Any:
        """Every (key, window)'s cells and every live timer, as plain data (encode it before processing more).

        ``{"version": 1, "cells": [[key, (window start, end), {name: value}]],
        "timers": [[key, (start, end), timer name, tag, domain, fire_us, hold_us]]}``,
        domain 0 event time, 1 processing time, 2 processing time holding the watermark (`_RT_HELD`);
        plus ``"sides"`` (ParDoNode's snapshot) when the DoFn has side inputs;
        bags are lists, sets are sets, ordered lists are lists of (µs, value), combining cells accumulators.
        """
        self.dirty = False
        cells = []
        timers = []
        for kw in self.key_windows.values():
            bounds = (kw.key_window_id[1], kw.key_window_id[2])
            if kw.cells:
                cells.append([kw.key, bounds, kw.cells])
            for tk, rec in kw.timers.items():
                timers.append((rec.seq, [kw.key, bounds, tk[0], tk[1], rec.domain, rec.fire_us, rec.hold_us]))
        timers.sort(key=lambda item: item[0])  # restored in the order they were set (ties fire in that order)
        return {"version": 1, "cells": cells, "timers": [t for _, t in timers], **self._side_state()}

    def restore_state(self, data: Any) -> None:
        """Replace all state and timers with a `snapshot_state` result."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError(f"step '{self.label}': unknown user-state snapshot format")
        self._clear()
        window_of = self.windowing.windowfn.window_of
        for key, (start, end), cells in data["cells"]:
            kw = self._new_kw(key, window_of(start, end))
            kw.cells = dict(cells)
        for key, (start, end), name, tag, domain, fire_us, hold_us in data["timers"]:
            kw = self.key_windows.get((key, start, end)) or self._new_kw(key, window_of(start, end))
            self._add_timer(kw, (name, tag), domain, fire_us, hold_us)
        self._restore_side_state(data)
        self.dirty = False
        if self.tiered is not None:
            self.tiered.all_dirty = True  # a whole snapshot: the next incremental checkpoint writes it all

    # -- incremental state (the checkpointer's protocol for `StateTier` nodes, see `checkpoint.userstate_records`)
    def attach_state_tier(self, tier: Any) -> None:
        """Checkpoint incrementally in `tier`: only the (key, window)s changed since the last checkpoint."""
        from millstream.engine.runtime.checkpoint.userstate_records import UserStateTier

        self.tiered = UserStateTier(self.key_windows, tier)
        self._touched = self.tiered.touched

    def capture_incremental(self) -> Any:
        """What changed since the last checkpoint (`checkpoint.userstate_records.UserStateCapture`)."""
        self.dirty = False
        if self.side_inputs:
            sides_changed = ParDoNode.state_dirty(self)
            cap = self.tiered.capture(lambda: ParDoNode.snapshot_state(self), sides_changed)
        else:
            cap = self.tiered.capture()
        self._touched = self.tiered.touched
        return cap

    def restore_incremental(self, header: Any) -> None:
        """Load every (key, window) and timer of the checkpoint whose node header is `header`."""
        self._clear()

        def load(key_window_id: Any, cells: dict[str, Any]) -> _KeyWindow:
            kw = self._new_kw(
                key_window_id[0], self.windowing.windowfn.window_of(key_window_id[1], key_window_id[2])
            )
            kw.cells = cells
            return kw

        last_seq = self.tiered.restore(header, load, self._add_timer)
        if self.side_inputs:
            sides = self.tiered.restore_sides()
            # checkpoints before the side inputs had their own entry carry them in the header
            self._restore_side_state({"sides": sides} if sides is not None else header)
        # timers keep the numbers they were set with (ties fire in that order across restarts); new ones follow
        self._seq = itertools.count(last_seq + 1)
        self._touched = self.tiered.touched
        self.dirty = False

    def _clear(self) -> None:
        """No state and no timers."""
        self.key_windows.clear()
        self.event_heap.clear()
        self.proc_heap.clear()
        self.gc_buckets.clear()
        self.lingering.clear()
        self.n_timers = 0
        self.holds = WatermarkHolds()

    # -- state and timer bookkeeping ----------------------------------------------------------------------
    def _new_kw(self, key: Any, window: Any) -> _KeyWindow:
        expiry = window.end_us + self.lateness_us
        # the watermark at which the window has expired (passed end + allowed lateness)
        gc_time = (expiry if expiry < MAX_MICROS - 1 else MAX_MICROS - 1) + 1
        kw = _KeyWindow(key, window, gc_time)
        self.key_windows[kw.key_window_id] = kw
        bucket = self.gc_buckets.get(gc_time)
        if bucket is None:
            bucket = self.gc_buckets[gc_time] = {}
            heapq.heappush(self.event_heap, (gc_time, _EXPIRY, next(self._seq), None, None))
        bucket[kw.key_window_id] = None
        return kw

    def _drop_kw(self, kw: _KeyWindow) -> None:
        del self.key_windows[kw.key_window_id]
        if self._touched is not None:
            self._touched.add(kw.key_window_id)
        bucket = self.gc_buckets.get(kw.gc_time)
        if bucket is not None:
            bucket.pop(kw.key_window_id, None)

    def _drop_if_empty(self, kw: _KeyWindow) -> None:
        """Forget a key-window with no state and no timers (unless it already expired)."""
        if not kw.cells and not kw.timers and self.key_windows.get(kw.key_window_id) is kw:
            self._drop_kw(kw)

    def _set_timer(
        self, kw: _KeyWindow, spec: TimerSpec, tag: str, fire_us: int, hold_us: int, held: bool = False
    ) -> None:
        if kw.closing:
            return
        if not isinstance(tag, str):
            raise TypeError(f"dynamic_timer_tag must be a string, got {tag!r}")
        domain = _WM if spec.time_domain == TimeDomain.WATERMARK else _RT_HELD if held else _RT
        if domain == _WM:
            hold_us = fire_us
        tk = (spec.name, tag)
        rec = kw.timers.get(tk)
        if rec is not None:
            if rec.fire_us == fire_us and rec.hold_us == hold_us and rec.domain == domain:
                return  # set again to the same time (e.g. the window's end for every element): nothing moves
            self._remove_timer(kw, tk)
        self._add_timer(kw, tk, domain, fire_us, hold_us)

    def _check_output_timestamp(self, kw: _KeyWindow, spec: TimerSpec, out_us: int, input_us: int) -> None:
        """Refuse an output timestamp before the current element's (or firing timer's) timestamp, which would
        hold the watermark below what was already emitted, or past the window's expiry (max timestamp +
        allowed lateness), which would leave the window: Beam Java's `Timer.withOutputTimestamp` checks."""
        timer = spec.name[len(spec.prefix) :]
        if out_us < input_us:
            raise ValueError(
                f"step '{self.label}': timer '{timer}' output timestamp {Timestamp(micros=out_us)} is before "
                f"the timestamp of the current input or timer {Timestamp(micros=input_us)}"
            )
        expiry_us = kw.window.end_us - 1 + self.lateness_us
        if out_us > expiry_us:
            raise ValueError(
                f"step '{self.label}': timer '{timer}' output timestamp {Timestamp(micros=out_us)} is after "
                f"the expiration of window {kw.window} ({Timestamp(micros=expiry_us)}: its max timestamp + "
                "allowed lateness)"
            )

    def _add_timer(
        self,
        kw: _KeyWindow,
        tk: tuple[str, str],
        domain: int,
        fire_us: int,
        hold_us: int,
        seq: int | None = None,
    ) -> None:
        """Set a timer; `seq` (the order it was set in) is given only when restoring one."""
        if seq is None:
            seq = next(self._seq)
        kw.timers[tk] = _TimerRecord(domain, fire_us, hold_us, seq)
        self.n_timers += 1
        if domain == _WM:
            heapq.heappush(self.event_heap, (fire_us, _TIMER, seq, kw, tk))
        else:
            heapq.heappush(self.proc_heap, (fire_us, seq, kw, tk))
        self.holds.add((kw, tk), hold_us)
        if len(self.event_heap) + len(self.proc_heap) > 2 * (self.n_timers + len(self.gc_buckets)) + 1024:
            self._compact()

    def _clear_timer(self, kw: _KeyWindow, tk: tuple[str, str]) -> None:
        if not kw.closing:
            self._remove_timer(kw, tk)

    def _remove_timer(self, kw: _KeyWindow, tk: tuple[str, str]) -> None:
        if kw.timers.pop(tk, None) is not None:
            self.n_timers -= 1
            self.holds.remove((kw, tk))

    def _compact(self) -> None:
        """Rebuild the heaps from the live timers (stale entries pile up when timers are reset often)."""
        events: list[tuple[int, int, int, Any, Any]] = []
        procs: list[tuple[int, int, Any, Any]] = []
        for kw in self.key_windows.values():
            for tk, rec in kw.timers.items():
                if rec.domain == _WM:
                    events.append((rec.fire_us, _TIMER, rec.seq, kw, tk))
                else:
                    procs.append((rec.fire_us, rec.seq, kw, tk))
        events.extend((t, _EXPIRY, next(self._seq), None, None) for t in self.gc_buckets)
        heapq.heapify(events)
        heapq.heapify(procs)
        self.event_heap = events
        self.proc_heap = procs

    @staticmethod
    def _live(kw: _KeyWindow, tk: Any, seq: int) -> _TimerRecord | None:
        """The timer a heap entry stands for, if it is still set as it was then."""
        rec = kw.timers.get(tk)
        return rec if rec is not None and rec.seq == seq else None

    def next_timer(self) -> int | None:
        """The earliest pending processing-time timer, in µs."""
        heap = self.proc_heap
        while heap:
            fire_us, seq, kw, tk = heap[0]
            if self._live(kw, tk, seq) is not None:
                return fire_us
            heapq.heappop(heap)
        return None

    def _notify_if_earlier(self, before: int | None) -> None:
        after = self.next_timer()
        if after is not None and (before is None or after < before) and self.timer_changed is not None:
            self.timer_changed()

    # -- elements -----------------------------------------------------------------------------------------
    def process(self, batch: Batch) -> None:
        """Run `process` for every element (once per window) with the state of its key and window."""
        set_current_step(self.label)
        self.dirty = True
        before = self.next_timer()
        self._enter_bundle()
        if self.has_start_bundle:
            self._call_user(self.dofn.start_bundle, "<start_bundle>")
        outputs: dict[str | None, _Outputs] = {None: _Outputs()}
        process = element_keyword_call(self.dofn.process) if self.element_as_keyword else self.dofn.process
        args, base_kwargs = self._resolved_args, self._resolved_kwargs
        windowed_sides = self.windowed_sides  # a windowed side input is seen in each element's window
        plan = self._process_args
        kws = self.key_windows
        eh = self.exception_handling
        ts_col, win_col, pane_col = batch.ts, batch.wins, batch.panes
        global_windows = self._global
        is_global = global_windows is not None
        fixed = self._fixed
        last: Any = None
        input_wm = self.input_wm
        lateness = self.lateness_us
        for i, v in enumerate(batch.values):
            if type(v) is not tuple or len(v) != 2:
                if not (isinstance(v, (tuple, list)) and len(v) == 2):
                    raise_user_error(
                        self.label,
                        v,
                        ValueError(
                            f"Input elements to the transform '{self.label}' with stateful DoFn must be "
                            f"key-value pairs, got {truncate_repr(v)}"
                        ),
                    )
            key = v[0]
            t = ts_col[i] if ts_col is not None else MIN_MICROS
            pane = pane_col[i] if pane_col is not None else None
            if win_col is not None:
                windows: Any = (win_col[i],)
            elif is_global:
                windows = global_windows
            elif fixed and last is not None and last[0].start_us <= t < last[0].end_us:
                windows = last
            else:
                windows = last = self.windows.assign(t)
            for w in windows:
                if w.end_us + lateness < input_wm:
                    self.dropped_late += 1
                    continue
                try:
                    kw = kws.get((key, w.start_us, w.end_us))
                except TypeError as e:
                    raise_user_error(
                        self.label, v, TypeError(f"the key of a stateful DoFn must be hashable: {e}")
                    )
                if kw is None:
                    kw = self._new_kw(key, w)
                if windowed_sides:
                    args, base_kwargs = self._side_args_for(w)
                call_kwargs = self._kwargs(plan, base_kwargs, kw, v, t, t, pane)
                w_out = None if is_global else w
                if eh is None:
                    try:
                        self._collect(process(v, *args, **call_kwargs), outputs, t, w_out, pane)
                    except Exception as e:
                        raise_user_error(self.label, v, e)
                else:
                    self._process_guarded(process, v, args, call_kwargs, outputs, t, w_out, pane)
                if not kw.cells and not kw.timers:
                    self._drop_kw(kw)
        if self.has_finish_bundle:
            self._finish_bundle()
        self._exit_bundle()
        self._emit_outputs(outputs)
        if self.event_heap and self.event_heap[0][0] <= input_wm:
            self._fire_event_time(input_wm)  # timers set behind the watermark fire at once
        self._notify_if_earlier(before)

    def _emit_outputs(self, outputs: dict[str | None, _Outputs]) -> None:
        for tag, cols in outputs.items():
            if cols.values:
                self.emit(self._columns_to_batch(cols, Batch([])), tag)

    # -- time ---------------------------------------------------------------------------------------------
    def on_input_watermark(self, micros: int) -> None:
        if not all(self.side_done):
            return
        set_current_step(self.label)
        self.dirty = True
        before = self.next_timer()
        if micros >= MAX_MICROS:
            self.end_of_input = True
        self._fire_event_time(micros)
        if self.windowed_sides:
            self.sides.evict(micros)
        self.holds.set_input(micros)
        if micros >= MAX_MICROS and not self.lingering:
            self.advance_output_watermark(MAX_MICROS)  # every timer has fired and every window expired
        else:
            self.advance_output_watermark(self.holds.output())
        self._notify_if_earlier(before)

    def _fire_event_time(self, wm: int) -> None:
        """Fire event-time timers due at watermark `wm` and expire windows, in timestamp order."""
        outputs: dict[str | None, _Outputs] | None = None
        heap = self.event_heap
        while heap and heap[0][0] <= wm:
            t, kind, seq, kw, tk = heapq.heappop(heap)
            if kind == _EXPIRY:
                bucket = self.gc_buckets.pop(t, None)
                if bucket:
                    if outputs is None:
                        outputs = self._begin_timers()
                    for key_window_id in list(bucket):
                        expiring = self.key_windows.get(key_window_id)
                        if expiring is not None:
                            self._expire(expiring, outputs)
            else:
                rec = self._live(kw, tk, seq)
                if rec is not None:
                    if outputs is None:
                        outputs = self._begin_timers()
                    self._remove_timer(kw, tk)
                    self._fire(kw, tk, rec, outputs)
                    self._drop_if_empty(kw)
            heap = self.event_heap  # a compaction may have replaced it
        if outputs is not None:
            self._end_timers(outputs)

    def _expire(self, kw: _KeyWindow, outputs: dict[str | None, _Outputs]) -> None:
        """A window expired for a key: fire its remaining event-time timers (and at the end of input its
        processing-time timers), then discard its state. At the end of the input a (key, window) with a held
        processing-time timer lingers instead, until its held timers are done (`advance_processing_time`)."""
        if self.end_of_input and any(r.domain == _RT_HELD for r in kw.timers.values()):
            self.lingering[kw.key_window_id] = kw
            return
        kw.closing = True
        pending = sorted(kw.timers.items(), key=lambda item: (item[1].domain, item[1].fire_us, item[1].seq))
        for tk, rec in pending:
            if kw.timers.get(tk) is not rec:
                continue  # cleared by an earlier callback
            self._remove_timer(kw, tk)
            if rec.domain == _WM or self.end_of_input:
                self._fire(kw, tk, rec, outputs)
        for tk in list(kw.timers):
            self._remove_timer(kw, tk)
        if self.key_windows.get(kw.key_window_id) is kw:
            del self.key_windows[kw.key_window_id]
            if self._touched is not None:
                self._touched.add(kw.key_window_id)

    def advance_processing_time(self, now_us: int) -> None:
        """Fire processing-time timers due at `now_us` (those set while firing wait for the next call)."""
        set_current_step(self.label)
        self._now_us = now_us
        try:
            self._advance_processing_time(now_us)
        finally:
            self._now_us = None

    def _advance_processing_time(self, now_us: int) -> None:
        heap = self.proc_heap
        limit = next(self._seq)
        deferred: list[tuple[int, int, Any, Any]] = []
        outputs: dict[str | None, _Outputs] | None = None
        while heap and heap[0][0] <= now_us:
            entry = heapq.heappop(heap)
            _, seq, kw, tk = entry
            rec = self._live(kw, tk, seq)
            if rec is None:
                continue
            if seq > limit:
                deferred.append(entry)
                continue
            if outputs is None:
                outputs = self._begin_timers()
                self.dirty = True
            self._remove_timer(kw, tk)
            self._fire(kw, tk, rec, outputs)
            self._drop_if_empty(kw)
            heap = self.proc_heap  # a compaction may have replaced it
        for entry in deferred:
            heapq.heappush(self.proc_heap, entry)
        if self.lingering:
            outputs = self._end_lingering(outputs)
        if outputs is not None:
            self._end_timers(outputs)
            self.advance_output_watermark(MAX_MICROS if self._finished() else self.holds.output())

    def _end_lingering(self, outputs: dict[str | None, _Outputs] | None) -> dict[str | None, _Outputs] | None:
        """Expire the lingering (key, window)s whose held timers are all done."""
        for key_window_id, kw in list(self.lingering.items()):
            if any(r.domain == _RT_HELD for r in kw.timers.values()):
                continue
            del self.lingering[key_window_id]
            if outputs is None:
                outputs = self._begin_timers()
            self._expire(kw, outputs)
        return outputs

    def truncate_held(self) -> None:
        """On a drain: drop every held processing-time timer and expire the (key, window)s they kept alive
        (their other timers fire as at the end of the input); the output watermark then reaches +infinity.
        Beam truncates a splittable DoFn's unbounded restriction to nothing on drain, likewise."""
        set_current_step(self.label)
        self.dirty = True
        outputs: dict[str | None, _Outputs] | None = None
        for kw in self.lingering.values():
            for tk in [tk for tk, rec in kw.timers.items() if rec.domain == _RT_HELD]:
                self._remove_timer(kw, tk)
            if self._touched is not None:
                self._touched.add(kw.key_window_id)
        outputs = self._end_lingering(outputs)
        if outputs is not None:
            self._end_timers(outputs)
        self.advance_output_watermark(MAX_MICROS if self._finished() else self.holds.output())

    def _finished(self) -> bool:
        """The input has ended and nothing lingers: every timer has fired and every window expired."""
        return self.end_of_input and not self.lingering

    def lingers(self) -> bool:
        """Whether the step still has held processing-time timers to fire after its input ended (the stage
        keeps running its timers until it has none)."""
        return bool(self.lingering)

    def _begin_timers(self) -> dict[str | None, _Outputs]:
        self._enter_bundle()
        if self.has_start_bundle:
            self._call_user(self.dofn.start_bundle, "<start_bundle>")
        return {None: _Outputs()}

    def _end_timers(self, outputs: dict[str | None, _Outputs]) -> None:
        if self.has_finish_bundle:
            self._finish_bundle()
        self._exit_bundle()
        self._emit_outputs(outputs)

    def _enter_bundle(self) -> None:
        """Enter the DoFn's bundle contexts (`DoFn.BundleContextParam`): a batch of elements, or a turn of
        timers, is a bundle."""
        if self.bundle_contexts:
            self._call_user(lambda: self._enter_contexts(self.bundle_contexts), "<start_bundle>")

    def _exit_bundle(self) -> None:
        if self.bundle_contexts:
            self._call_user(lambda: self._exit_contexts(self.bundle_contexts), "<finish_bundle>")

    def _fire(
        self, kw: _KeyWindow, tk: tuple[str, str], rec: _TimerRecord, outputs: dict[str | None, _Outputs]
    ) -> None:
        """Call the timer's `@on_timer` method for its key and window; collect what it outputs."""
        spec, callback, plan = self._callbacks[tk[0]]
        out_ts = rec.fire_us if rec.domain == _WM else rec.hold_us
        kwargs = self._kwargs(plan, {}, kw, None, rec.fire_us, out_ts, None)
        w_out = None if self._global is not None else kw.window
        try:
            self._collect(callback(**kwargs), outputs, out_ts, w_out, None)
        except Exception as e:
            raise_user_error(
                self.label, f"<on_timer {spec.name[len(spec.prefix) :]} for key {truncate_repr(kw.key)}>", e
            )
