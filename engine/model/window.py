"""Windows, window functions, timestamp combiners and pane descriptions, as in `apache_beam.transforms.window`.

Configuration and values only: the runtime that groups elements into windows and fires panes lives in
`millstream.engine.runtime` (see `windowing/reduce_fn_runner.py`). The user-facing API speaks Beam (seconds, `Timestamp`
objects); the hot path speaks integer microseconds: every `WindowFn` has `assign_micros` /
`assign_batch` (non-merging window fns) returning windows by their integer bounds, and windows carry
cheap integer fields (`start_us`, `end_us`).

`PaneInfo` and `PaneInfoTiming` live in Beam's `apache_beam.utils.windowed_value`; they are defined here
(the facade re-exports them there) because they describe window firings.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from millstream.engine.model.timestamp import (
    END_OF_GLOBAL_WINDOW_MICROS,
    MIN_MICROS,
    Duration,
    Timestamp,
    TimestampedValue,
    to_micros,
)

__all__ = [
    "BoundedWindow",
    "FixedWindows",
    "GlobalWindow",
    "GlobalWindows",
    "IntervalWindow",
    "NonMergingWindowFn",
    "PaneInfo",
    "PaneInfoTiming",
    "Sessions",
    "SlidingWindows",
    "TimestampCombiner",
    "TimestampedValue",
    "WindowFn",
]

#: End (exclusive) of the global window in microseconds; its max_timestamp is END_OF_GLOBAL_WINDOW_MICROS.
GLOBAL_WINDOW_END_MICROS = END_OF_GLOBAL_WINDOW_MICROS + 1


class BoundedWindow:
    """A window of event time ``[start, end)``; ``max_timestamp()`` is the last microsecond inside it."""

    __slots__ = ("start_us", "end_us")

    start_us: int
    end_us: int

    @property
    def start(self) -> Timestamp:
        """Start of the window (inclusive) as a `Timestamp`."""
        return Timestamp(micros=self.start_us)

    @property
    def end(self) -> Timestamp:
        """End of the window (exclusive) as a `Timestamp`."""
        return Timestamp(micros=self.end_us)

    def max_timestamp(self) -> Timestamp:
        """The largest timestamp inside the window: ``end - 1µs``."""
        return Timestamp(micros=self.end_us - 1)

    def max_timestamp_micros(self) -> int:
        """`max_timestamp()` as integer microseconds."""
        return self.end_us - 1

    def bounds(self) -> tuple[int, int]:
        """The window as ``(start_us, end_us)``, the form the runtime keys state by."""
        return (self.start_us, self.end_us)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundedWindow) or type(self) is not type(other):
            return NotImplemented
        return self.start_us == other.start_us and self.end_us == other.end_us

    def __hash__(self) -> int:
        return hash((self.start_us, self.end_us))

    def __lt__(self, other: BoundedWindow) -> bool:
        # Beam orders windows by end first; ties are broken by start (Beam: by hash) for determinism.
        return (self.end_us, self.start_us) < (other.end_us, other.start_us)

    def __le__(self, other: BoundedWindow) -> bool:
        return (self.end_us, self.start_us) <= (other.end_us, other.start_us)

    def __gt__(self, other: BoundedWindow) -> bool:
        return (self.end_us, self.start_us) > (other.end_us, other.start_us)

    def __ge__(self, other: BoundedWindow) -> bool:
        return (self.end_us, self.start_us) >= (other.end_us, other.start_us)


class IntervalWindow(BoundedWindow):
    """A window for timestamps in ``[start, end)``; equal, hashed and ordered by its bounds."""

    __module__ = "millstream.transforms.window"  # where Beam users find it
    __slots__ = ()

    def __init__(self, start: Any, end: Any) -> None:
        self.start_us = to_micros(start)
        self.end_us = to_micros(end)

    @classmethod
    def from_micros(cls, start_us: int, end_us: int) -> IntervalWindow:
        """An IntervalWindow from integer microsecond bounds (no conversion)."""
        w = cls.__new__(cls)
        w.start_us = start_us
        w.end_us = end_us
        return w

    def intersects(self, other: IntervalWindow) -> bool:
        """Whether the two half-open intervals overlap."""
        return other.start_us < self.end_us and self.start_us < other.end_us

    def union(self, other: IntervalWindow) -> IntervalWindow:
        """The smallest window covering both."""
        return IntervalWindow.from_micros(min(self.start_us, other.start_us), max(self.end_us, other.end_us))

    def __repr__(self) -> str:
        return f"[{self.start_us / 1e6}, {self.end_us / 1e6})"


class GlobalWindow(BoundedWindow):
    """The single window holding all of time (the window of `GlobalWindows`); a singleton."""

    __module__ = "millstream.transforms.window"  # where Beam users find it
    __slots__ = ()
    _instance: GlobalWindow | None = None

    def __new__(cls) -> GlobalWindow:
        """The one GlobalWindow, created on first use (Beam's GlobalWindow)."""
        if cls._instance is None:
            inst = super().__new__(cls)
            inst.start_us = MIN_MICROS
            inst.end_us = GLOBAL_WINDOW_END_MICROS
            cls._instance = inst
        return cls._instance

    def __repr__(self) -> str:
        return "GlobalWindow"

    def __reduce__(self) -> tuple[Any, ...]:
        return (GlobalWindow, ())


class WindowFn:
    """Assigns elements to windows (and, for merging window fns, merges windows), as Beam's WindowFn.

    Subclasses used by the runtime implement the integer API: `assign_micros(ts_us)` returns the
    window bounds ``[(start_us, end_us), ...]`` of one timestamp and `assign_batch` does it for a list.
    """

    class AssignContext:
        """Context passed to `WindowFn.assign` (Beam's API)."""

        def __init__(self, timestamp: Any, element: Any = None, window: BoundedWindow | None = None) -> None:
            self.timestamp = Timestamp.of(timestamp)
            self.element = element
            self.window = window

    class MergeContext:
        """Context passed to `WindowFn.merge`; `merge` is called once per group of windows to merge."""

        def __init__(self, windows: Iterable[BoundedWindow]) -> None:
            self.windows = list(windows)

        def merge(self, to_be_merged: Sequence[BoundedWindow], merge_result: BoundedWindow) -> None:
            """Record that ``to_be_merged`` become ``merge_result``."""
            raise NotImplementedError

    def assign(self, assign_context: WindowFn.AssignContext) -> list[BoundedWindow]:
        """The windows of an element (Beam's API; allocates window objects)."""
        return [self.window_of(s, e) for s, e in self.assign_micros(assign_context.timestamp.micros)]

    def assign_micros(self, ts_us: int) -> list[tuple[int, int]]:
        """The windows of timestamp ``ts_us`` as ``(start_us, end_us)`` bounds."""
        raise NotImplementedError

    def assign_batch(self, timestamps_us: Sequence[int]) -> list[list[tuple[int, int]]]:
        """`assign_micros` for every timestamp of a batch."""
        f = self.assign_micros
        return [f(t) for t in timestamps_us]

    def window_of(self, start_us: int, end_us: int) -> BoundedWindow:
        """The window object for bounds produced by this window fn."""
        return IntervalWindow.from_micros(start_us, end_us)

    def merge(self, merge_context: WindowFn.MergeContext) -> None:
        """Merge windows (no-op for non-merging window fns)."""
        raise NotImplementedError

    def merge_bounds(
        self, windows: Iterable[tuple[int, int]]
    ) -> list[tuple[list[tuple[int, int]], tuple[int, int]]]:
        """Integer merging: groups ``(to_be_merged, merge_result)`` of window bounds (empty if nothing merges)."""
        return []

    def is_merging(self) -> bool:
        """Whether this window fn merges windows."""
        return True

    def get_transformed_output_time(self, window: BoundedWindow, input_timestamp: Timestamp) -> Timestamp:
        """Beam's hook for OUTPUT_AT_EARLIEST_TRANSFORMED (unused: that combiner is not supported)."""
        return input_timestamp


class NonMergingWindowFn(WindowFn):
    """A window fn whose windows never merge."""

    def merge(self, merge_context: WindowFn.MergeContext) -> None:
        """No merging."""

    def is_merging(self) -> bool:
        """Never merges."""
        return False


class GlobalWindows(NonMergingWindowFn):
    """Assigns everything to the single `GlobalWindow`."""

    _BOUNDS = [(MIN_MICROS, GLOBAL_WINDOW_END_MICROS)]

    def assign_micros(self, ts_us: int) -> list[tuple[int, int]]:
        """Always the global window."""
        return [(MIN_MICROS, GLOBAL_WINDOW_END_MICROS)]

    def assign_batch(self, timestamps_us: Sequence[int]) -> list[list[tuple[int, int]]]:
        """The global window for every timestamp."""
        b = self._BOUNDS
        return [b] * len(timestamps_us)

    def window_of(self, start_us: int, end_us: int) -> BoundedWindow:
        """The global window singleton."""
        return GlobalWindow()

    @classmethod
    def windowed_value(cls, value: Any, timestamp: Any = None, pane_info: Any = None) -> Any:
        """`value` in the global window at `timestamp` (default: the minimum timestamp), as Beam's."""
        from millstream.engine.model.dofn import WindowedValue

        return WindowedValue(
            value, MIN_MICROS if timestamp is None else timestamp, (GlobalWindow(),), pane_info
        )

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return "GlobalWindows()"


class FixedWindows(NonMergingWindowFn):
    """Tumbling windows ``[N * size + offset, (N + 1) * size + offset)``; size and offset in seconds."""

    def __init__(self, size: Any, offset: Any = 0) -> None:
        size_us = to_micros(size)
        if size_us <= 0:
            raise ValueError("The size parameter must be strictly positive.")
        self.size_us = size_us
        self.offset_us = to_micros(offset) % size_us

    @property
    def size(self) -> Duration:
        """Window size as a `Duration`."""
        return Duration(micros=self.size_us)

    @property
    def offset(self) -> Timestamp:
        """Offset (normalised to ``[0, size)``) as a `Timestamp`."""
        return Timestamp(micros=self.offset_us)

    def assign_micros(self, ts_us: int) -> list[tuple[int, int]]:
        """The one window containing ``ts_us``."""
        start = ts_us - (ts_us - self.offset_us) % self.size_us
        return [(start, start + self.size_us)]

    def start_of(self, ts_us: int) -> int:
        """Start (µs) of the window containing ``ts_us``."""
        return ts_us - (ts_us - self.offset_us) % self.size_us

    def assign_batch(self, timestamps_us: Sequence[int]) -> list[list[tuple[int, int]]]:
        """One window per timestamp."""
        size, off = self.size_us, self.offset_us
        out = []
        for t in timestamps_us:
            s = t - (t - off) % size
            out.append([(s, s + size)])
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is FixedWindows and (self.size_us, self.offset_us) == (
            other.size_us,
            other.offset_us,
        )

    def __hash__(self) -> int:
        return hash((FixedWindows, self.size_us, self.offset_us))

    def __repr__(self) -> str:
        return f"FixedWindows({self.size_us / 1e6}, offset={self.offset_us / 1e6})"


class SlidingWindows(NonMergingWindowFn):
    """Windows ``[N * period + offset, N * period + offset + size)``: each timestamp is in ~size/period windows."""

    def __init__(self, size: Any, period: Any, offset: Any = 0) -> None:
        size_us = to_micros(size)
        period_us = to_micros(period)
        if size_us <= 0:
            raise ValueError("The size parameter must be strictly positive.")
        if period_us <= 0:
            raise ValueError("The period parameter must be strictly positive.")
        self.size_us = size_us
        self.period_us = period_us
        self.offset_us = to_micros(offset) % period_us

    @property
    def size(self) -> Duration:
        """Window size as a `Duration`."""
        return Duration(micros=self.size_us)

    @property
    def period(self) -> Duration:
        """Window period as a `Duration`."""
        return Duration(micros=self.period_us)

    @property
    def offset(self) -> Timestamp:
        """Offset (normalised to ``[0, period)``) as a `Timestamp`."""
        return Timestamp(micros=self.offset_us)

    def assign_micros(self, ts_us: int) -> list[tuple[int, int]]:
        """All windows containing ``ts_us``, latest start first (Beam's order)."""
        size, period = self.size_us, self.period_us
        start = ts_us - (ts_us - self.offset_us) % period
        return [(s, s + size) for s in range(start, ts_us - size, -period)]

    def __eq__(self, other: object) -> bool:
        return type(other) is SlidingWindows and (self.size_us, self.period_us, self.offset_us) == (
            other.size_us,
            other.period_us,
            other.offset_us,
        )

    def __hash__(self) -> int:
        return hash((SlidingWindows, self.size_us, self.period_us, self.offset_us))

    def __repr__(self) -> str:
        return f"SlidingWindows({self.size_us / 1e6}, {self.period_us / 1e6}, offset={self.offset_us / 1e6})"


class Sessions(WindowFn):
    """Session windows: each element gets the proto-window ``[t, t + gap)``; overlapping windows merge."""

    def __init__(self, gap_size: Any) -> None:
        gap_us = to_micros(gap_size)
        if gap_us <= 0:
            raise ValueError("The size parameter must be strictly positive.")
        self.gap_us = gap_us

    @property
    def gap_size(self) -> Duration:
        """The gap as a `Duration`."""
        return Duration(micros=self.gap_us)

    def assign_micros(self, ts_us: int) -> list[tuple[int, int]]:
        """The proto-window ``[t, t + gap)``."""
        return [(ts_us, ts_us + self.gap_us)]

    def merge_bounds(
        self, windows: Iterable[tuple[int, int]]
    ) -> list[tuple[list[tuple[int, int]], tuple[int, int]]]:
        """Groups of strictly overlapping windows (sorted by start) and the window each group becomes."""
        groups: list[tuple[list[tuple[int, int]], tuple[int, int]]] = []
        run: list[tuple[int, int]] = []
        end = MIN_MICROS
        for w in sorted(windows):
            if run and end > w[0]:
                run.append(w)
                if w[1] > end:
                    end = w[1]
            else:
                if len(run) > 1:
                    groups.append((run, (run[0][0], end)))
                run = [w]
                end = w[1]
        if len(run) > 1:
            groups.append((run, (run[0][0], end)))
        return groups

    def merge(self, merge_context: WindowFn.MergeContext) -> None:
        """Beam's API: call ``merge_context.merge`` for every group of overlapping windows."""
        by_bounds = {(w.start_us, w.end_us): w for w in merge_context.windows}
        for group, (s, e) in self.merge_bounds(by_bounds):
            merge_context.merge([by_bounds[b] for b in group], IntervalWindow.from_micros(s, e))

    def __eq__(self, other: object) -> bool:
        return type(other) is Sessions and self.gap_us == other.gap_us

    def __hash__(self) -> int:
        return hash((Sessions, self.gap_us))

    def __repr__(self) -> str:
        return f"Sessions({self.gap_us / 1e6})"


class TimestampCombiner(str, enum.Enum):
    """How the output timestamp of a pane is chosen (Beam's TimestampCombiner)."""

    OUTPUT_AT_EOW = "end_of_window"
    OUTPUT_AT_EARLIEST = "earliest"
    OUTPUT_AT_LATEST = "latest"


class PaneInfoTiming(enum.IntEnum):
    """Whether a pane fired before (EARLY), at (ON_TIME) or after (LATE) the watermark passed its window."""

    EARLY = 0
    ON_TIME = 1
    LATE = 2
    UNKNOWN = 3

    @classmethod
    def to_string(cls, value: int) -> str:
        """The timing's name (Beam's API)."""
        return cls(value).name

    @classmethod
    def from_string(cls, value: str) -> PaneInfoTiming:
        """The timing with that name (Beam's API)."""
        return cls[value]


class PaneInfo:
    """Describes one firing of a window: timing, first/last, index and non-speculative index (immutable)."""

    __slots__ = ("_is_first", "_is_last", "_timing", "_index", "_nonspeculative_index", "_hash")

    def __init__(
        self, is_first: bool, is_last: bool, timing: int, index: int, nonspeculative_index: int
    ) -> None:
        self._is_first = bool(is_first)
        self._is_last = bool(is_last)
        self._timing = PaneInfoTiming(timing)
        self._index = index
        self._nonspeculative_index = nonspeculative_index
        self._hash = hash((self._is_first, self._is_last, int(self._timing), index, nonspeculative_index))

    @property
    def is_first(self) -> bool:
        """True for the first pane of a window."""
        return self._is_first

    @property
    def is_last(self) -> bool:
        """True when the trigger finished with this pane (or the window expired with it)."""
        return self._is_last

    @property
    def timing(self) -> PaneInfoTiming:
        """EARLY, ON_TIME or LATE."""
        return self._timing

    @property
    def index(self) -> int:
        """0-based index of the pane among the window's panes."""
        return self._index

    @property
    def nonspeculative_index(self) -> int:
        """Index among non-EARLY panes (-1 for EARLY panes)."""
        return self._nonspeculative_index

    @property
    def encoded_byte(self) -> int:
        """Beam's one-byte encoding of first/last/timing."""
        return int(self._is_first) | (int(self._is_last) << 1) | (int(self._timing) << 2)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, PaneInfo):
            return NotImplemented
        return (
            self._is_first == other._is_first
            and self._is_last == other._is_last
            and self._timing == other._timing
            and self._index == other._index
            and self._nonspeculative_index == other._nonspeculative_index
        )

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_hash"):
            raise AttributeError("PaneInfo is immutable")
        object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            PaneInfo,
            (self._is_first, self._is_last, int(self._timing), self._index, self._nonspeculative_index),
        )

    def __repr__(self) -> str:
        return (
            f"PaneInfo(first: {self._is_first!r}, last: {self._is_last!r}, timing: {self._timing.name}, "
            f"index: {self._index}, nonspeculative_index: {self._nonspeculative_index})"
        )


#: The pane of an element that did not come out of a trigger firing (Beam's PANE_INFO_UNKNOWN).
PANE_INFO_UNKNOWN = PaneInfo(True, True, PaneInfoTiming.UNKNOWN, 0, 0)
