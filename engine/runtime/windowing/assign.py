"""Lazy window assignment: the runtime carries timestamps and asks the window fn only where windows matter."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.windowing import Windowing


class WindowResolver:
    """Assigns windows from integer timestamps for one windowing strategy."""

    def __init__(self, windowing: Windowing) -> None:
        from millstream.engine.model.window import GlobalWindow, GlobalWindows, SlidingWindows

        self.windowfn = windowing.windowfn
        self.is_global = isinstance(self.windowfn, GlobalWindows)
        self.multi = isinstance(self.windowfn, SlidingWindows)
        self.global_window = GlobalWindow()

    def assign(self, t_us: int) -> tuple[Any, ...]:
        """Every window an element with timestamp `t_us` belongs to."""
        if self.is_global:
            return (self.global_window,)
        window_of = self.windowfn.window_of
        return tuple(window_of(start, end) for start, end in self.windowfn.assign_micros(t_us))

    def assign_one(self, t_us: int) -> Any:
        """The first window of an element (exact for non-overlapping window fns)."""
        return self.assign(t_us)[0]

    def assign_batch(self, ts: list[int] | None) -> list[Any] | None:
        """Windows for a timestamp column: one window per element, or a tuple per element when overlapping."""
        if self.is_global:
            return None
        if ts is None:
            raise ValueError("windows of elements without timestamps are undefined outside the global window")
        if self.multi:
            return [self.assign(t) for t in ts]
        return [self.assign_one(t) for t in ts]


def pane_or_default(pane: Any) -> Any:
    """The pane of an element, or Beam's NO_FIRING pane for elements not produced by a trigger."""
    if pane is not None:
        return pane
    from millstream.engine.model.window import PaneInfo, PaneInfoTiming

    return PaneInfo(True, True, PaneInfoTiming.UNKNOWN, 0, 0)
