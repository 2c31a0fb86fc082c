"""The optional parts of a reducer's state interface, declared as `Protocol`s: what the fast paths keep beyond
the keyed state every reducer has (`windowing.keyed_state`).

The checkpoint's reducer records (`checkpoint.reducer_records`) check them with ``isinstance`` once, when a
node's state is attached, to choose which parts of the interface apply; docs/state.md ("The reducer's state
interface") describes them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from millstream.engine.runtime.windowing.window_state import Window

__all__ = ["FiredWindowStore", "SlicedContainers"]


@runtime_checkable
class FiredWindowStore(Protocol):
    """A reducer that keeps the accumulators of fired windows for late data (the fast paths), per window and
    key; entries may be evicted to the state store and are taken back by late data."""

    def fired_entries(self) -> dict[Window, dict[Any, Any]]:
        """Fired windows that may still get late data: ``{window: {key: accumulator}}`` (in memory)."""
        ...

    def fired_evicted(self, w: Window) -> None:
        """Some entries of fired window `w` were moved to the state store."""
        ...

    def fired_is_new(self, w: Window) -> bool:
        """True when window `w` fired since the last checkpoint."""
        ...

    def take_fired_changes(self, everything: bool) -> tuple[set[Window], list[tuple[Window, Any]]]:
        """Fired windows new since the last call (all with `everything`) and entries taken by late data."""
        ...

    def restore_fired_changes(self, new: set[Window], gone: list[tuple[Window, Any]]) -> None:
        """Record changes taken by `take_fired_changes` again (their checkpoint was not written)."""
        ...


@runtime_checkable
class SlicedContainers(Protocol):
    """A reducer that buffers per container (a slot or a window: Flink's sliced window aggregation) and key,
    folding buffers into accumulators; a container's entries may be evicted to the state store, and stored
    parts are merged back into what is in memory."""

    def containers(self) -> tuple[dict[Any, dict[Any, list[Any]]], dict[Any, dict[Any, Any]]]:
        """``({container: {key: buffered values}}, {container: {key: folded accumulator}})``, in memory."""
        ...

    def folded_keys(self) -> dict[Any, set[Any]]:
        """Container -> keys whose buffer was folded since the last checkpoint (the caller may clear it)."""
        ...

    def container_evicted(self, nid: Any) -> bool:
        """True when some entries of container `nid` are in the state store."""
        ...

    def evict_container(self, nid: Any) -> None:
        """Some entries of container `nid` were moved to the state store."""
        ...

    def fold(self, acc: Any, vals: list[Any]) -> Any:
        """`acc` (None: a new accumulator) with `vals` added."""
        ...

    def empty_accumulator(self) -> Any:
        """A new accumulator."""
        ...

    def merge_stored(self, stored: Any, acc: Any) -> Any:
        """A stored part of an entry merged with its in-memory part."""
        ...
