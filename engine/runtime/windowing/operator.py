"""The windowed GroupByKey/CombinePerKey operator: feeds bundles and time to the event-time reducer.

The reducer (pure logic) decides which panes fire; this node turns its panes into batches (value
`(key, output)`, the pane's timestamp, window and PaneInfo), routes dropped late data to the optional
side output, and propagates the output watermark (held by pending panes) downstream, monotonically.

In a checkpointing job its state is incremental (`attach_state_tier`, `checkpoint.reducer_records`):
checkpoints write the changed entries, and after each call the entries held in memory are brought back within the job's
``--state_cache_entries`` share by evicting cold ones to the state store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node, raise_user_error, truncate_repr
from millstream.engine.runtime.windowing.drain_frontier import WindowFrontier
from millstream.engine.runtime.windowing.reduce_fn_runner import (
    DROP_CLOSED,
    DROP_LATE,
    Reducer,
    create_reducer,
)

#: Longest repr kept of one late element (the console shows the latest few, not archives).
RECORD_REPR_MAX = 300
_LATE_REASONS = {
    DROP_LATE: "beyond allowed lateness",
    DROP_CLOSED: "its window's trigger had finished (the window was closed)",
}


def _seconds_or_none(micros: int) -> float | None:
    return None if micros <= MIN_MICROS or micros >= MAX_MICROS else micros / 1e6


def _iso(micros: int) -> str:
    if micros <= MIN_MICROS:
        return "-inf"
    if micros >= MAX_MICROS:
        return "+inf"
    return datetime.fromtimestamp(micros / 1e6, tz=UTC).isoformat().replace("+00:00", "Z")


class ReducerNode(Node):
    """Runs one windowed GroupByKey or CombinePerKey."""

    def __init__(
        self, label: str, combine_fn: Any, windowing: Windowing, clock: Any, late_tag: str | None = None
    ) -> None:
        super().__init__(label)
        self.clock = clock
        now_us = clock.now_us()
        self.now_us = now_us
        self.combine_fn = combine_fn
        self.windowing = windowing
        self.late_tag = late_tag
        self.reducer: Reducer = create_reducer(
            windowing.windowfn,
            windowing.triggerfn,
            windowing.accumulation_mode,
            windowing.allowed_lateness_us,
            windowing.timestamp_combiner,
            combine_fn,
            processing_time_us=now_us,
            collect_dropped=late_tag is not None,
        )
        #: Called when the earliest processing-time timer may have moved earlier (set by the executor).
        self.timer_changed: Callable[[], None] | None = None
        self.dirty = False
        #: Incremental, bounded state (`checkpoint.reducer_records`), set up by the checkpointer of a durable job.
        self.tiered: Any = None
        #: Which windows a drain finalised (`drain_frontier`): they stay closed after a restart.
        self.frontier = WindowFrontier()

    def state_layout(self) -> dict[str, Any]:
        """What this operator stores (part of the pipeline fingerprint)."""
        w = self.windowing
        return {
            "kind": "windowed",
            "window": repr(w.windowfn),
            "trigger": repr(w.triggerfn),
            "accumulation": repr(w.accumulation_mode),
            # the CombineFn a --runtime_type_check wrapper checks: the option keeps checkpoints compatible
            "fn": type(getattr(self.combine_fn, "checked_fn", self.combine_fn)).__qualname__,
        }

    def state_dirty(self) -> bool:
        """True when the state changed since the last snapshot."""
        return self.dirty

    # -- incremental state (the checkpointer's protocol for `StateTier` nodes) ------------------------------
    def attach_state_tier(self, tier: Any) -> None:
        """Keep the state incrementally in `tier`, with at most `tier.cache_entries` entries in memory."""
        from millstream.engine.runtime.checkpoint.reducer_records import ReducerState

        self.tiered = ReducerState(self.reducer, tier)

    def capture_incremental(self) -> Any:
        """What changed since the last checkpoint (`checkpoint.reducer_records.ReducerCapture`)."""
        self.dirty = False
        return self.tiered.capture()

    def restore_incremental(self, header: Any) -> None:
        """Load the checkpoint whose node header is `header` (entries are read from the tier as needed)."""
        self.tiered.restore(header)

    def _bound_state(self, elements: int | None = None) -> None:
        if self.tiered is not None:
            self.tiered.maybe_evict(elements)

    def open(self) -> None:
        try:
            self.combine_fn.setup()
        except Exception as e:
            raise_user_error(self.label, "<CombineFn.setup>", e)

    def close(self) -> None:
        try:
            self.combine_fn.teardown()
        except Exception:
            pass

    @property
    def dropped_late(self) -> int:
        """Elements dropped because they arrived after their window expired or their trigger finished."""
        r = self.reducer
        return r.dropped_late + r.dropped_closed + self.frontier.dropped

    def latest_late(self) -> list[dict[str, Any]]:
        """The latest elements this step dropped as late, newest first, with the reason (`LateDataSampler`).

        Kept by the reducer on its drop path only (a ring of `LATE_SAMPLES_KEPT`); formatted here, when asked.
        """
        out = []
        for wall, key, value, ts, reason, window, wm in reversed(self.reducer.late_samples):
            out.append(
                {
                    "time": wall,
                    "record": truncate_repr((key, value), RECORD_REPR_MAX),
                    "timestamp": _seconds_or_none(ts),
                    "window": f"[{_iso(window[0])}, {_iso(window[1])})",
                    "watermark": _seconds_or_none(wm),
                    "reason": _LATE_REASONS.get(reason, reason),
                }
            )
        return out

    def push(self, index: int, batch: Batch) -> None:
        vals = batch.values
        n = len(vals)
        self.elements_in += n
        try:
            keys = [kv[0] for kv in vals]
            values = [kv[1] for kv in vals]
        except (TypeError, IndexError, KeyError) as e:
            bad = next((x for x in vals if not (isinstance(x, tuple | list) and len(x) == 2)), vals[0])
            raise_user_error(
                self.label, bad, TypeError(f"expected (key, value) pairs, got {truncate_repr(bad)}")
            )
            raise AssertionError from e
        ts = batch.ts if batch.ts is not None else [MIN_MICROS] * n
        kept = self.frontier.keep(self.windowing.windowfn.assign_micros, ts)
        if kept is not None:
            keys, values, ts = [keys[i] for i in kept], [values[i] for i in kept], [ts[i] for i in kept]
        self.dirty = True
        self._catch_up_processing_time()
        before = self.next_timer()
        try:
            panes = self.reducer.process_bundle(keys, values, ts)
        except Exception as e:
            raise_user_error(self.label, "<bundle>", e)
        self._emit_panes(panes)
        self._emit_dropped()
        self._bound_state(None if panes else len(keys))  # a firing may add entries of its own: count them
        after = self.next_timer()
        if after is not None and (before is None or after < before) and self.timer_changed is not None:
            self.timer_changed()

    def _catch_up_processing_time(self) -> None:
        """Tell the reducer the current processing time before it sees data (new timers are relative to it)."""
        now = self.clock.now_us()
        if now > self.now_us:
            self.advance_processing_time(now)

    def on_input_watermark(self, micros: int) -> None:
        self.dirty = True
        self._catch_up_processing_time()
        try:
            panes = self.reducer.advance_input_watermark(micros)
        except Exception as e:
            raise_user_error(self.label, "<watermark>", e)
        self._emit_panes(panes)
        self._emit_dropped()
        self._bound_state()
        if micros >= MAX_MICROS:
            self.advance_output_watermark(MAX_MICROS)  # end of input: nothing can follow
        else:
            self.advance_output_watermark(min(micros, self.reducer.output_watermark()))

    def next_timer(self) -> int | None:
        """The earliest pending processing-time timer, in µs."""
        return self.reducer.next_processing_time_timer()

    def advance_processing_time(self, now_us: int) -> None:
        """Fire processing-time timers due at `now_us`."""
        set_current_step(self.label)
        self.dirty = True
        self.now_us = max(self.now_us, now_us)
        due = self.reducer.next_processing_time_timer()
        try:
            panes = self.reducer.advance_processing_time(now_us)
        except Exception as e:
            raise_user_error(self.label, "<processing-time timer>", e)
        self._emit_panes(panes)
        # no timer was due: nothing changed (the clock only moved), so no entry was added
        self._bound_state(0 if not panes and (due is None or due > now_us) else None)
        if self.input_wm > MIN_MICROS:
            self.advance_output_watermark(min(self.input_wm, self.reducer.output_watermark()))

    def _emit_panes(self, panes: list[Any]) -> None:
        if not panes:
            return
        values = [(p[0], p[2]) for p in panes]
        self.frontier.saw_panes([p[1] for p in panes])
        self.emit(Batch(values, [p[3] for p in panes], [p[1] for p in panes], [p[4] for p in panes]))

    def _emit_dropped(self) -> None:
        if self.late_tag is None:
            return
        dropped = self.reducer.take_dropped()
        if not dropped:
            return
        from millstream.engine.model.core import LateRecord
        from millstream.engine.model.timestamp import Timestamp

        records = [LateRecord(k, v, Timestamp(micros=t), w, reason) for k, v, t, reason, w in dropped]
        self.emit(Batch(records, [d[2] for d in dropped], [d[4] for d in dropped]), self.late_tag)
