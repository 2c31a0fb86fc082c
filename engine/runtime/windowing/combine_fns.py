"""Adapting a duck-typed Beam CombineFn for the windowed reducer.

The reducer calls a combine fn through `CombineOps`: bound methods resolved once (no attribute lookups per
element) and a bulk ``add_inputs`` (the combine fn's own when it has one, else a loop over ``add_input``).
GroupByKey is the model's `ListCombineFn` (re-exported here with `SumCombineFn`: one implementation each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from millstream.engine.model.combinefn import ListCombineFn, SumCombineFn

__all__ = ["CombineOps", "ListCombineFn", "SumCombineFn", "combine_ops"]


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
