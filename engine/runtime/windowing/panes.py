"""The windowed reducer's panes: the `Pane` it emits, and Beam's per-window pane bookkeeping (`PaneBuilder`).

A pane's numbering (index, non-speculative index), timing (EARLY / ON_TIME / LATE), what happens to the
window's accumulator after it (reset when discarding, dropped when the trigger finished) and whether the
window's watermark hold is released are decided here, the way Beam's ReduceFnRunner decides them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from millstream.engine.model.window import BoundedWindow, PaneInfo, PaneInfoTiming
from millstream.engine.runtime.windowing.combine_fns import CombineOps
from millstream.engine.runtime.windowing.window_state import WinState

__all__ = ["Pane", "PaneBuilder"]

_EARLY = PaneInfoTiming.EARLY
_ON_TIME = PaneInfoTiming.ON_TIME
_LATE = PaneInfoTiming.LATE

#: Distinct PaneInfo values kept for reuse (panes share them; the numbering is bounded in practice).
_PANE_INFOS_KEPT = 4096


class Pane(NamedTuple):
    """An emitted pane: one key's output for one window, with its timestamp and Beam's PaneInfo."""

    key: Any
    window: BoundedWindow
    value: Any
    timestamp_us: int
    pane_info: PaneInfo


class PaneBuilder:
    """Builds one reducer's panes from window states, updating their pane bookkeeping as Beam does."""

    __slots__ = ("_ops", "_discarding", "_window_of", "_has_ontime_pane", "_infos")

    def __init__(
        self,
        ops: CombineOps,
        discarding: bool,
        window_of: Callable[[int, int], BoundedWindow],
        has_ontime_pane: bool,
    ) -> None:
        self._ops = ops
        self._discarding = discarding
        self._window_of = window_of
        # an ON_TIME pane is still to come: an early pane keeps the window's hold
        self._has_ontime_pane = has_ontime_pane
        self._infos: dict[tuple[bool, bool, int, int, int], PaneInfo] = {}

    def info(
        self, is_first: bool, is_last: bool, timing: int, index: int, nonspeculative_index: int
    ) -> PaneInfo:
        """The (shared) PaneInfo with these fields."""
        k = (is_first, is_last, timing, index, nonspeculative_index)
        p = self._infos.get(k)
        if p is None:
            p = PaneInfo(is_first, is_last, timing, index, nonspeculative_index)
            if len(self._infos) < _PANE_INFOS_KEPT:
                self._infos[k] = p
        return p

    def emit(self, key: Any, ws: WinState, finished: bool, out_wm: int, maybe_ontime: bool) -> Pane:
        """The pane a trigger firing emits for `ws` (`finished`: the trigger finished with it).

        Its timing comes from the output watermark `out_wm` (ON_TIME only when `maybe_ontime`, i.e. fired by
        the watermark); the window's accumulator is reset or dropped and its hold released as Beam does.
        """
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
            if not (out_wm < w[1] and self._has_ontime_pane):
                ws.hold = ws.hold_min = None
        return Pane(
            key,
            self._window_of(*w),
            value,
            ts,
            self.info(index == 0, bool(finished), timing, index, nonspeculative_index),
        )

    def final(self, key: Any, ws: WinState, out_wm: int) -> Pane:
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
            self.info(index == 0, True, timing, index, nonspeculative_index),
        )
