"""The state objects a stateful DoFn's methods receive (`DoFn.StateParam`): views over one (key, window)'s
cells dict, which `stateful_pardo.StatefulParDoNode` keeps (and checkpoints) per key and window."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from millstream.engine.model.timestamp import Timestamp, to_micros
from millstream.engine.model.userstate import (
    BagRuntimeState,
    BagStateSpec,
    CombiningValueRuntimeState,
    OrderedListRuntimeState,
    OrderedListStateSpec,
    ReadModifyWriteRuntimeState,
    ReadModifyWriteStateSpec,
    SetRuntimeState,
    SetStateSpec,
    StateSpec,
)

__all__ = ["STATE_IMPLS", "BagState", "CombiningState", "OrderedListState", "SetState", "ValueState"]


class ListView:
    """A read-only snapshot of a bag: the first `n` values of a list that is only ever appended to."""

    __slots__ = ("_values", "_n")

    def __init__(self, values: list[Any], n: int) -> None:
        self._values = values
        self._n = n

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self._values, self._n)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"BagState.read({self._values[: self._n]!r})"


class SetView(AbstractSet[Any]):
    """A read-only view of a set state's values (membership is O(1); iteration sees a copy)."""

    __slots__ = ("_values",)

    def __init__(self, values: set[Any]) -> None:
        self._values = values

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SetState.read({self._values!r})"


_EMPTY_SET: set[Any] = set()


class Cell:
    """One state cell of the current key and window: entry `name` of the (key, window)'s `cells` dict."""

    __slots__ = ("_cells", "_name")

    def __init__(self, cells: dict[str, Any], name: str) -> None:
        self._cells = cells
        self._name = name

    def clear(self) -> None:
        """Empty the cell (earlier `read` results keep their values)."""
        self._cells.pop(self._name, None)


class BagState(Cell, BagRuntimeState):
    """Bag state of the current key and window."""

    __slots__ = ()

    def add(self, value: Any) -> None:
        """Append a value."""
        values = self._cells.get(self._name)
        if values is None:
            self._cells[self._name] = [value]
        else:
            values.append(value)

    def read(self) -> Any:
        """The values added so far (a snapshot: later adds and clears do not change it)."""
        values = self._cells.get(self._name)
        return ListView(values, len(values)) if values else ()


class SetState(Cell, SetRuntimeState):
    """Set state of the current key and window."""

    __slots__ = ()

    def add(self, value: Any) -> None:
        """Add a value (no-op if present)."""
        values = self._cells.get(self._name)
        if values is None:
            self._cells[self._name] = {value}
        else:
            values.add(value)

    def read(self) -> Any:
        """The distinct values (a live read-only view supporting `in`, `len` and iteration)."""
        values = self._cells.get(self._name)
        return SetView(values if values is not None else _EMPTY_SET)


class ValueState(Cell, ReadModifyWriteRuntimeState):
    """Read-modify-write (value) state of the current key and window."""

    __slots__ = ()

    def read(self) -> Any:
        """The value, or None when unset."""
        return self._cells.get(self._name)

    def write(self, value: Any) -> None:
        """Replace the value."""
        self._cells[self._name] = value


class CombiningState(Cell, CombiningValueRuntimeState):
    """Combining state of the current key and window: one accumulator, updated with `add_input`."""

    __slots__ = ("_fn",)

    def __init__(self, cells: dict[str, Any], name: str, fn: Any) -> None:
        super().__init__(cells, name)
        self._fn = fn

    def add(self, value: Any) -> None:
        """Fold a value into the accumulator."""
        cells, fn = self._cells, self._fn
        acc = cells[self._name] if self._name in cells else fn.create_accumulator()
        cells[self._name] = fn.add_input(acc, value)

    def read(self) -> Any:
        """The CombineFn's output (of the empty accumulator when nothing was added, as in Beam)."""
        cells, fn = self._cells, self._fn
        acc = cells[self._name] if self._name in cells else fn.create_accumulator()
        return fn.extract_output(acc)


def _entry_time(entry: tuple[int, Any]) -> int:
    return entry[0]


class OrderedListState(Cell, OrderedListRuntimeState):
    """Ordered list state: (timestamp, value) pairs kept sorted by timestamp (stable for equal ones)."""

    __slots__ = ()

    def add(self, value: Any) -> None:
        """Insert a (timestamp, value) pair."""
        ts, v = value
        entries = self._cells.setdefault(self._name, [])
        bisect.insort_right(entries, (to_micros(ts), v), key=_entry_time)

    def read(self) -> Any:
        """Every pair, as (Timestamp, value), in timestamp order."""
        return [(Timestamp(micros=t), v) for t, v in self._cells.get(self._name, ())]

    def _bounds(self, min_timestamp: Any, limit_timestamp: Any) -> tuple[list[Any], int, int]:
        entries = self._cells.get(self._name, [])
        lo = bisect.bisect_left(entries, to_micros(min_timestamp), key=_entry_time)
        hi = bisect.bisect_left(entries, to_micros(limit_timestamp), key=_entry_time)
        return entries, lo, hi

    def read_range(self, min_timestamp: Any, limit_timestamp: Any) -> Any:
        """The pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        entries, lo, hi = self._bounds(min_timestamp, limit_timestamp)
        return [(Timestamp(micros=t), v) for t, v in entries[lo:hi]]

    def clear_range(self, min_timestamp: Any, limit_timestamp: Any) -> None:
        """Remove the pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        entries, lo, hi = self._bounds(min_timestamp, limit_timestamp)
        del entries[lo:hi]
        if not entries:
            self._cells.pop(self._name, None)


#: The cell class of each kind of state spec (CombiningValueStateSpec: `CombiningState`, which takes its fn).
STATE_IMPLS: tuple[tuple[type[StateSpec], type[Any]], ...] = (
    (BagStateSpec, BagState),
    (SetStateSpec, SetState),
    (ReadModifyWriteStateSpec, ValueState),
    (OrderedListStateSpec, OrderedListState),
)
