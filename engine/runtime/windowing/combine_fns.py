"""Adapting a duck-typed Beam CombineFn for the windowed reducer, plus the combine fns the reducer itself needs.

The reducer calls a combine fn through `CombineOps`: bound methods resolved once (no attribute lookups per
element) and a bulk ``add_inputs`` (the combine fn's own when it has one, else a loop over ``add_input``).
`ListCombineFn` is GroupByKey expressed as a combine: it collects the values of a pane into a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["CombineOps", "ListCombineFn", "SumCombineFn", "combine_ops"]


class ListCombineFn:
    """GroupByKey as a CombineFn: the accumulator is the list of values, the output a copy of it."""

    def create_accumulator(self) -> list[Any]:
        """An empty list."""
        return []

    def add_input(self, acc: list[Any], value: Any) -> list[Any]:
        """Append one value."""
        acc.append(value)
        return acc

    def add_inputs(self, acc: list[Any], values: Iterable[Any]) -> list[Any]:
        """Append many values."""
        acc.extend(values)
        return acc

    def merge_accumulators(self, accs: Iterable[list[Any]]) -> list[Any]:
        """Concatenate."""
        out: list[Any] = []
        for a in accs:
            out.extend(a)
        return out

    def extract_output(self, acc: list[Any]) -> list[Any]:
        """A copy, so that accumulating panes do not alias the live buffer."""
        return list(acc)

    def __eq__(self, other: object) -> bool:
        return type(other) is ListCombineFn

    def __hash__(self) -> int:
        return hash(ListCombineFn)


class SumCombineFn:
    """Sum of numbers (an empty pane sums to 0), with a bulk ``add_inputs``."""

    def create_accumulator(self) -> Any:
        """Zero."""
        return 0

    def add_input(self, acc: Any, value: Any) -> Any:
        """acc + value."""
        return acc + value

    def add_inputs(self, acc: Any, values: Iterable[Any]) -> Any:
        """acc + sum(values)."""
        return acc + sum(values)

    def merge_accumulators(self, accs: Iterable[Any]) -> Any:
        """Sum of the partial sums."""
        return sum(accs)

    def extract_output(self, acc: Any) -> Any:
        """The sum."""
        return acc


class CombineOps:
    """The five operations of a combine fn, resolved once, with a bulk add that always exists."""

    __slots__ = ("fn", "create", "add_input", "add_inputs", "merge", "extract")

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.create: Callable[[], Any] = fn.create_accumulator
        self.add_input: Callable[[Any, Any], Any] = fn.add_input
        self.merge: Callable[[Iterable[Any]], Any] = fn.merge_accumulators
        self.extract: Callable[[Any], Any] = fn.extract_output
        bulk = getattr(fn, "add_inputs", None)
        if bulk is None:
            add = fn.add_input

            def bulk(acc: Any, values: Iterable[Any]) -> Any:
                for v in values:
                    acc = add(acc, v)
                return acc

        self.add_inputs: Callable[[Any, Iterable[Any]], Any] = bulk


def combine_ops(fn: Any) -> CombineOps:
    """`CombineOps` for a duck-typed Beam CombineFn (``None`` means GroupByKey: `ListCombineFn`)."""
    if fn is None:
        fn = ListCombineFn()
    for name in ("create_accumulator", "add_input", "merge_accumulators", "extract_output"):
        if not callable(getattr(fn, name, None)):
            raise TypeError(f"combine fn {fn!r} has no {name}()")
    return CombineOps(fn)
