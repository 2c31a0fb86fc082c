"""The windowed reducer's per-key state records: one `WinState` per (key, window), one `KeyState` per key.

Plain slotted objects, no behaviour: the reducer (`windowing.reduce_fn_runner`) changes them, its keyed
state (`windowing.keyed_state`) indexes and evicts them, `windowing.snapshot` turns them into plain data.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KeyState", "WinState", "Window"]

#: A window as the reducer holds it: ``(start µs, end µs)``, end exclusive.
Window = tuple[int, int]


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
