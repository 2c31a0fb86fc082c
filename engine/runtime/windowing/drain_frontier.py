"""Windows a drain finalised stay closed when the job is started again.

A drain fires every window (watermark to +infinity) with a final pane. A restarted job starts its operators
empty, so data for one of those windows would open it again and emit a second first ("#0") and last pane for
it. Instead each windowed step remembers how far the windows it fired reach (`fired_until`: the latest end of
a window that emitted a pane), and after a drain that becomes its `closed_until`: an element any of whose
windows ends at or before it is dropped as late (counted in ``dropped_late``). Both values travel in every
checkpoint's manifest (``"windows"``), so they survive stops, restarts and further drains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from millstream.engine.model.timestamp import MIN_MICROS
from millstream.engine.runtime.graph.capabilities import WindowedNode


class WindowFrontier:
    """One windowed step's frontier: how far its fired windows reach, and up to where windows are closed."""

    __slots__ = ("fired_until", "closed_until", "dropped")

    def __init__(self) -> None:
        self.fired_until = MIN_MICROS
        self.closed_until = MIN_MICROS
        self.dropped = 0

    def saw_panes(self, windows: Iterable[Any]) -> None:
        """Panes of these windows were emitted."""
        end = max((getattr(w, "end_us", MIN_MICROS) for w in windows), default=MIN_MICROS)
        if end > self.fired_until:
            self.fired_until = end

    def keep(self, assign: Any, timestamps: Sequence[int]) -> list[int] | None:
        """Indexes of the elements to keep (None: all of them); the others fall into a closed window."""
        closed = self.closed_until
        if closed <= MIN_MICROS:
            return None
        kept = [i for i, t in enumerate(timestamps) if all(w[1] > closed for w in assign(t))]
        if len(kept) == len(timestamps):
            return None
        self.dropped += len(timestamps) - len(kept)
        return kept


def capture_frontiers(nodes: Iterable[Any]) -> dict[str, list[int]]:
    """``{step: [fired_until, closed_until]}`` of the windowed steps, for a checkpoint's manifest."""
    out = {}
    for node in nodes:
        frontier = node.frontier if isinstance(node, WindowedNode) else None
        if isinstance(frontier, WindowFrontier):
            out[node.label] = [frontier.fired_until, frontier.closed_until]
    return out


def restore_frontiers(nodes: Iterable[Any], stored: dict[str, Any], drained: bool) -> None:
    """Load the frontiers of a checkpoint; after a drain everything fired before is closed."""
    for node in nodes:
        frontier = node.frontier if isinstance(node, WindowedNode) else None
        values = stored.get(node.label)
        if not isinstance(frontier, WindowFrontier) or not values:
            continue
        fired, closed = int(values[0]), int(values[1])
        frontier.fired_until = fired
        frontier.closed_until = max(closed, fired) if drained else closed
