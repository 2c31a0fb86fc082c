"""`Batch`: the unit that moves through the runtime — parallel lists of values, timestamps, windows, panes.

Columns that are uniform are `None` instead of a list, so the common case allocates nothing per element:
``ts is None`` means every element has the minimum timestamp; ``wins is None`` means windows are derived
from the timestamp by the consuming PCollection's window fn (lazy assignment; the global window by default);
``panes is None`` means "no firing" (elements not produced by a trigger).
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS


class Batch:
    """Parallel columns of elements; immutable once emitted (consumers build new lists)."""

    __slots__ = ("values", "ts", "wins", "panes")

    def __init__(
        self,
        values: list[Any],
        ts: list[int] | None = None,
        wins: list[Any] | None = None,
        panes: list[Any] | None = None,
    ) -> None:
        self.values = values
        self.ts = ts
        self.wins = wins
        self.panes = panes

    def __len__(self) -> int:
        return len(self.values)

    def timestamp(self, i: int) -> int:
        """The timestamp of element `i` in microseconds."""
        ts = self.ts
        return MIN_MICROS if ts is None else ts[i]

    def __repr__(self) -> str:
        return f"Batch({len(self.values)} elements)"


class Watermark:
    """A watermark message on a channel: no later element will have an earlier timestamp."""

    __slots__ = ("micros",)

    def __init__(self, micros: int) -> None:
        self.micros = micros

    def __repr__(self) -> str:
        if self.micros >= MAX_MICROS:
            return "Watermark(+inf)"
        if self.micros <= MIN_MICROS:
            return "Watermark(-inf)"
        return f"Watermark({self.micros})"
