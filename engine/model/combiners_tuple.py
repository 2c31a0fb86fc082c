"""Beam's tuple and latest-value combiners, composed from CombineFn, ParDo and the global/per-key combines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, Union

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.combiners import CombinerWithoutDefaults
from millstream.engine.model.core import CombinePerKey, Map
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection
from millstream.engine.model.timestamp import MIN_TIMESTAMP, Duration, Timestamp
from millstream.engine.model.typehints import with_input_types, with_output_types

# The type variables of Beam's hints on Latest: bound, when a pipeline is built, to its input's types
T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation
K: Any = TypeVar("K")  # type: ignore[misc]  # a value in hints, not an annotation
V: Any = TypeVar("V")  # type: ignore[misc]  # a value in hints, not an annotation

#: Beam's `TimestampType`: what a timestamp paired with a value by Latest may be (a value, not an annotation).
TimestampType: Any = Union[int, float, Timestamp, Duration]  # noqa: UP007 - Beam's hint spelling


class TupleCombineFn(CombineFn):
    """Combines tuples component-wise: the i-th component of every input by the i-th CombineFn (or callable)."""

    def __init__(self, *combiners: Any, merge_accumulators_batch_size: int | None = None) -> None:
        self._combiners = [CombineFn.maybe_from_callable(c) for c in combiners]

    def _check(self, inputs: Any) -> Any:
        if len(inputs) != len(self._combiners):
            raise ValueError(
                f"{type(self).__name__} of {len(self._combiners)} combiners got a tuple of "
                f"{len(inputs)} components: {inputs!r}"
            )
        return inputs

    def create_accumulator(self) -> list[Any]:
        """One accumulator per component."""
        return [c.create_accumulator() for c in self._combiners]

    def add_input(self, accumulator: list[Any], element: Any) -> list[Any]:
        """Add each component of `element` to its own accumulator."""
        return [c.add_input(a, e) for c, a, e in zip(self._combiners, accumulator, self._check(element))]

    def merge_accumulators(self, accumulators: Iterable[list[Any]]) -> list[Any]:
        """Merge the accumulators component-wise."""
        columns = zip(*accumulators)
        return [c.merge_accumulators(col) for c, col in zip(self._combiners, columns)]

    def compact(self, accumulator: list[Any]) -> list[Any]:
        """Compact each component's accumulator."""
        return [c.compact(a) for c, a in zip(self._combiners, accumulator)]

    def extract_output(self, accumulator: list[Any]) -> tuple[Any, ...]:
        """The tuple of each component's output."""
        return tuple(c.extract_output(a) for c, a in zip(self._combiners, accumulator))


class SingleInputTupleCombineFn(TupleCombineFn):
    """Combines each single input by every CombineFn: the output is the tuple of their results."""

    def add_input(self, accumulator: list[Any], element: Any) -> list[Any]:
        """Add `element` to every accumulator."""
        return [c.add_input(a, element) for c, a in zip(self._combiners, accumulator)]


@with_input_types(tuple[T, TimestampType])
@with_output_types(T)
class LatestCombineFn(CombineFn):
    """The value with the latest timestamp among `(value, timestamp)` inputs."""

    def create_accumulator(self) -> tuple[Any, Any]:
        """No value yet, at the minimum timestamp."""
        return (None, MIN_TIMESTAMP)

    def add_input(self, accumulator: tuple[Any, Any], element: tuple[Any, Any]) -> tuple[Any, Any]:
        """Keep the later of the two (the accumulator on a tie, as Beam)."""
        return accumulator if accumulator[1] > element[1] else element

    def merge_accumulators(self, accumulators: Iterable[tuple[Any, Any]]) -> tuple[Any, Any]:
        """The latest of the accumulators."""
        result = self.create_accumulator()
        for accumulator in accumulators:
            result = self.add_input(result, accumulator)
        return result

    def extract_output(self, accumulator: tuple[Any, Any]) -> Any:
        """The latest value."""
        return accumulator[0]


def _with_timestamp(element: Any, timestamp: Any = DoFn.TimestampParam) -> tuple[Any, Any]:
    return (element, timestamp)


def _kv_with_timestamp(element: Any, timestamp: Any = DoFn.TimestampParam) -> tuple[Any, tuple[Any, Any]]:
    key, value = element
    return (key, (value, timestamp))


class Latest:
    """The element with the latest timestamp, globally or per key."""

    @with_input_types(T)
    @with_output_types(T)
    class Globally(CombinerWithoutDefaults):
        """The latest element of each window."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """Pair elements with their timestamps and keep the latest per window (Beam's Latest.Globally)."""
            return (
                pcoll | "AddTimestamp" >> Map(_with_timestamp) | "Latest" >> self._globally(LatestCombineFn())
            )

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, V])
    class PerKey(PTransform):
        """The latest value of each key, per window."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """Pair values with their timestamps and keep the latest per key (Beam's Latest.PerKey)."""
            return (
                pcoll
                | "AddTimestamp" >> Map(_kv_with_timestamp)
                | "Latest" >> CombinePerKey(LatestCombineFn())
            )


__all__ = ["Latest", "LatestCombineFn", "SingleInputTupleCombineFn", "TupleCombineFn"]
