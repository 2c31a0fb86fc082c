"""The combiner library (Beam's `apache_beam.transforms.combiners`), composed from CombinePerKey/Globally, with
the type hints Beam declares on each (checked when a pipeline is built, as Beam's)."""

from __future__ import annotations

import abc
import copy
import heapq
import random
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Union

from millstream.engine.model.combinefn import CombineFn, ListCombineFn
from millstream.engine.model.core import CombineGlobally, CombinePerKey, Map
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection
from millstream.engine.model.typehints import with_input_types, with_output_types

# The type variables of Beam's hints on these combiners: bound, when a pipeline is built, to its input's types
T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation
K: Any = TypeVar("K")  # type: ignore[misc]  # a value in hints, not an annotation
V: Any = TypeVar("V")  # type: ignore[misc]  # a value in hints, not an annotation


class _NumpyScalar(abc.ABC):  # noqa: B024 - an ABC for its __subclasshook__ (isinstance), nothing abstract
    """A numpy scalar class named `_name` (Beam's Mean accepts numpy's int64 and float64), matched by module and
    name so that numpy is never imported for it."""

    _name = ""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        return any(c.__module__ == "numpy" and c.__name__ == cls._name for c in other.__mro__)


class _NumpyInt64(_NumpyScalar):
    """numpy's int64, in a type hint."""

    _name = "int64"


class _NumpyFloat64(_NumpyScalar):
    """numpy's float64, in a type hint."""

    _name = "float64"


#: What Beam's MeanCombineFn declares it takes (a value for the construction-time check, not an annotation).
_NUMBER: Any = Union[float, int, _NumpyInt64, _NumpyFloat64]  # noqa: UP007 - Beam's hint spelling


@with_input_types(Any)
@with_output_types(int)
class CountCombineFn(CombineFn):
    """Counts elements."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """A count of 0 (Beam's CombineFn.create_accumulator)."""
        return 0

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Count one input and return the count (Beam's CombineFn.add_input)."""
        return accumulator + 1

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Count many inputs and return the count (Beam's CombineFn.add_inputs)."""
        return accumulator + sum(1 for _ in elements)

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The sum of the counts (Beam's CombineFn.merge_accumulators)."""
        return sum(accumulators)

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The count (Beam's CombineFn.extract_output)."""
        return accumulator


def _pair_hint(key: Any, value: Any) -> Any:
    """``Tuple[key, value]`` built at run time (a value for the construction-time check, not an annotation)."""
    return typing.Tuple[key, value]  # noqa: UP006 - Beam's hint spelling


def _with_one(x: Any) -> Any:
    return (x, None)


class CombinerWithoutDefaults(PTransform):
    """A global combiner with Beam's `without_defaults()`: output nothing for an empty window."""

    has_defaults = True

    def with_defaults(self, has_defaults: bool = True) -> Any:
        """A copy that outputs the combine of no elements for an empty input (or not, with False)."""
        new = copy.copy(self)
        new.has_defaults = has_defaults
        return new

    def without_defaults(self) -> Any:
        """A copy that outputs nothing for an empty input: needed in non-global windows."""
        return self.with_defaults(False)

    def _globally(self, fn: CombineFn) -> CombineGlobally:
        combine = CombineGlobally(fn)
        return combine if self.has_defaults else combine.without_defaults()


class Count:
    """Count elements: Globally, PerKey, PerElement."""

    @with_input_types(T)
    @with_output_types(int)
    class Globally(CombinerWithoutDefaults):
        """The number of elements."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """Count the elements of each window with CombineGlobally (Beam's Count.Globally)."""
            return pcoll | "CountGlobally" >> self._globally(CountCombineFn())

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, int])
    class PerKey(PTransform):
        """The number of values per key."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """Count the values of each key with CombinePerKey (Beam's Count.PerKey)."""
            return pcoll | "CountPerKey" >> CombinePerKey(CountCombineFn())

    @with_input_types(T)
    @with_output_types(tuple[T, int])
    class PerElement(PTransform):
        """(element, number of occurrences) for each distinct element."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """Key each element by itself and count per key (Beam's Count.PerElement)."""
            # typed as Beam types them: the pairs' key is the input's type, so the counts are keyed by it
            element = pcoll.element_type if pcoll.element_type is not None else Any
            paired = Map(_with_one).with_output_types(_pair_hint(element, Any))
            counted = CombinePerKey(CountCombineFn()).with_output_types(_pair_hint(element, int))
            return pcoll | "PairWithVoid" >> paired | "CountPerKey" >> counted


@with_input_types(_NUMBER)
@with_output_types(float)
class MeanCombineFn(CombineFn):
    """The arithmetic mean; NaN for no elements (as Beam)."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """A [sum, count] pair of zeros (Beam's CombineFn.create_accumulator)."""
        return [0, 0]

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Add one input to the sum and count and return them (Beam's CombineFn.add_input)."""
        accumulator[0] += element
        accumulator[1] += 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The [sum, count] pairs summed (Beam's CombineFn.merge_accumulators)."""
        total, count = 0, 0
        for s, c in accumulators:
            total += s
            count += c
        return [total, count]

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The sum divided by the count, NaN for no inputs (Beam's CombineFn.extract_output)."""
        total, count = accumulator
        return total / count if count else float("NaN")


class Mean:
    """Arithmetic means: Globally, PerKey."""

    class Globally(CombinerWithoutDefaults):
        """The mean of all elements."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """The mean of each window with CombineGlobally (Beam's Mean.Globally)."""
            return pcoll | "MeanGlobally" >> self._globally(MeanCombineFn())

    class PerKey(PTransform):
        """The mean of the values of each key."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """The mean of each key's values with CombinePerKey (Beam's Mean.PerKey)."""
            return pcoll | "MeanPerKey" >> CombinePerKey(MeanCombineFn())


class _Keyed:
    """Orders by `key(x)`, reversed when asked, without requiring x itself to be comparable."""

    __slots__ = ("k", "v", "reverse")

    def __init__(self, v: Any, key: Callable[[Any], Any] | None, reverse: bool) -> None:
        self.v = v
        self.k = key(v) if key is not None else v
        self.reverse = reverse

    def __lt__(self, other: _Keyed) -> bool:
        return bool(other.k < self.k) if self.reverse else bool(self.k < other.k)


@with_input_types(T)
@with_output_types(list[T])
class TopCombineFn(CombineFn):
    """The n largest elements (by `key`), or the n smallest with `reverse=True`, sorted largest first."""

    def __init__(self, n: int, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Top needs a non-negative count, got {n!r}")
        self._n = n
        self._key = key
        self._reverse = reverse

    def default_label(self) -> str:
        """The label "Top(n)" (Beam's CombineFn.default_label)."""
        return f"Top({self._n})"

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty min-heap of the kept elements (Beam's CombineFn.create_accumulator)."""
        return []

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Keep one input if it is among the n largest so far (Beam's CombineFn.add_input)."""
        item = _Keyed(element, self._key, self._reverse)
        if len(accumulator) < self._n:
            heapq.heappush(accumulator, item)
        elif self._n and accumulator[0] < item:
            heapq.heapreplace(accumulator, item)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The n largest of all the heaps' elements (Beam's CombineFn.merge_accumulators)."""
        merged: list[Any] = []
        for acc in accumulators:
            for item in acc:
                v = item.v if isinstance(item, _Keyed) else item
                self.add_input(merged, v)
        return merged

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The kept elements, largest first (Beam's CombineFn.extract_output)."""
        items = [a if isinstance(a, _Keyed) else _Keyed(a, self._key, self._reverse) for a in accumulator]
        return [i.v for i in sorted(items, reverse=True)]


class Top:
    """The n largest/smallest elements: Of, Largest, Smallest, PerKey, LargestPerKey, SmallestPerKey."""

    @with_input_types(T)
    @with_output_types(list[T])
    class Of(CombinerWithoutDefaults):
        """The n largest elements globally (by `key`, or smallest with `reverse=True`)."""

        def __init__(self, n: int, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
            super().__init__(f"Top({n})")
            self._fn = TopCombineFn(n, key, reverse)

        def expand(self, pcoll: PCollection) -> PCollection:
            """The top n of each window with CombineGlobally (Beam's Top.Of)."""
            return pcoll | "TopGlobally" >> self._globally(self._fn)

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, list[V]])
    class PerKey(PTransform):
        """The n largest values of each key."""

        def __init__(self, n: int, key: Callable[[Any], Any] | None = None, reverse: bool = False) -> None:
            super().__init__(f"TopPerKey({n})")
            self._fn = TopCombineFn(n, key, reverse)

        def expand(self, pcoll: PCollection) -> PCollection:
            """The top n of each key's values with CombinePerKey (Beam's Top.PerKey)."""
            return pcoll | "TopPerKey" >> CombinePerKey(self._fn)

    @staticmethod
    def Largest(n: int, key: Callable[[Any], Any] | None = None) -> PTransform:  # noqa: N802
        """The n largest elements."""
        return Top.Of(n, key)

    @staticmethod
    def Smallest(n: int, key: Callable[[Any], Any] | None = None) -> PTransform:  # noqa: N802
        """The n smallest elements."""
        return Top.Of(n, key, reverse=True)

    @staticmethod
    def LargestPerKey(n: int, key: Callable[[Any], Any] | None = None) -> PTransform:  # noqa: N802
        """The n largest values of each key."""
        return Top.PerKey(n, key)

    @staticmethod
    def SmallestPerKey(n: int, key: Callable[[Any], Any] | None = None) -> PTransform:  # noqa: N802
        """The n smallest values of each key."""
        return Top.PerKey(n, key, reverse=True)


@with_input_types(T)
@with_output_types(list[T])
class SampleCombineFn(CombineFn):
    """A uniform random sample of n elements (reservoir sampling with random priorities)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Sample needs a non-negative size, got {n!r}")
        self._n = n

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty min-heap of prioritised elements (Beam's CombineFn.create_accumulator)."""
        return []

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Keep one input if its random priority is among the n highest (Beam's CombineFn.add_input)."""
        item = (random.random(), element)
        if len(accumulator) < self._n:
            heapq.heappush(accumulator, _Prioritised(item))
        elif self._n and accumulator[0].p < item[0]:
            heapq.heapreplace(accumulator, _Prioritised(item))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The n highest-priority elements of all the heaps (Beam's CombineFn.merge_accumulators)."""
        items = [i for acc in accumulators for i in acc]
        prioritised = [i if isinstance(i, _Prioritised) else _Prioritised(tuple(i)) for i in items]
        # add_input keeps a min-heap (the root is the weakest kept priority); nlargest returns descending order,
        # which would make the root the strongest, so re-heapify before the accumulator is used again.
        merged = heapq.nlargest(self._n, prioritised)
        heapq.heapify(merged)
        return merged

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The sampled elements (Beam's CombineFn.extract_output)."""
        return [i.v if isinstance(i, _Prioritised) else i[1] for i in accumulator]


class _Prioritised:
    __slots__ = ("p", "v")

    def __init__(self, item: tuple[float, Any]) -> None:
        self.p, self.v = item

    def __lt__(self, other: _Prioritised) -> bool:
        return self.p < other.p


class Sample:
    """Random samples: FixedSizeGlobally, FixedSizePerKey."""

    @with_input_types(T)
    @with_output_types(list[T])
    class FixedSizeGlobally(CombinerWithoutDefaults):
        """A sample of n elements of the whole collection."""

        def __init__(self, n: int) -> None:
            super().__init__(f"Sample({n})")
            self._fn = SampleCombineFn(n)

        def expand(self, pcoll: PCollection) -> PCollection:
            """Sample n elements of each window with CombineGlobally (Beam's Sample.FixedSizeGlobally)."""
            return pcoll | "SampleGlobally" >> self._globally(self._fn)

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, list[V]])
    class FixedSizePerKey(PTransform):
        """A sample of n values of each key."""

        def __init__(self, n: int) -> None:
            super().__init__(f"SamplePerKey({n})")
            self._fn = SampleCombineFn(n)

        def expand(self, pcoll: PCollection) -> PCollection:
            """Sample n values of each key with CombinePerKey (Beam's Sample.FixedSizePerKey)."""
            return pcoll | "SamplePerKey" >> CombinePerKey(self._fn)


@with_input_types(T)
@with_output_types(list[T])
class ToListCombineFn(ListCombineFn):
    """All elements as one list."""


@with_input_types(T)
@with_output_types(list[T])
class ToList(CombinerWithoutDefaults):
    """All elements (per window) as one list."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """All elements of each window as one list with CombineGlobally (Beam's combiners.ToList)."""
        return pcoll | "ToList" >> self._globally(ToListCombineFn())


@with_input_types(tuple[K, V])
@with_output_types(dict[K, V])
class ToDictCombineFn(CombineFn):
    """(key, value) pairs as one dict."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty dict (Beam's CombineFn.create_accumulator)."""
        return {}

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Set one (key, value) input in the dict and return it (Beam's CombineFn.add_input)."""
        key, value = element
        accumulator[key] = value
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The dicts merged into one (Beam's CombineFn.merge_accumulators)."""
        out: dict[Any, Any] = {}
        for a in accumulators:
            out.update(a)
        return out

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The dict (Beam's CombineFn.extract_output)."""
        return accumulator


@with_input_types(tuple[K, V])
@with_output_types(dict[K, V])
class ToDict(CombinerWithoutDefaults):
    """(key, value) pairs (per window) as one dict."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """The (key, value) pairs of each window as one dict (Beam's combiners.ToDict)."""
        return pcoll | "ToDict" >> self._globally(ToDictCombineFn())


@with_input_types(T)
@with_output_types(set[T])
class ToSetCombineFn(CombineFn):
    """All elements as one set."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty set (Beam's CombineFn.create_accumulator)."""
        return set()

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Add one input to the set and return it (Beam's CombineFn.add_input)."""
        accumulator.add(element)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The union of the sets (Beam's CombineFn.merge_accumulators)."""
        out: set[Any] = set()
        for a in accumulators:
            out |= set(a)
        return out

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """A copy of the set (Beam's CombineFn.extract_output)."""
        return set(accumulator)


@with_input_types(T)
@with_output_types(set[T])
class ToSet(CombinerWithoutDefaults):
    """All elements (per window) as one set."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """All elements of each window as one set with CombineGlobally (Beam's combiners.ToSet)."""
        return pcoll | "ToSet" >> self._globally(ToSetCombineFn())


__all__ = [
    "CombinerWithoutDefaults",
    "Count",
    "CountCombineFn",
    "Mean",
    "MeanCombineFn",
    "Sample",
    "SampleCombineFn",
    "ToDict",
    "ToDictCombineFn",
    "ToList",
    "ToListCombineFn",
    "ToSet",
    "ToSetCombineFn",
    "Top",
    "TopCombineFn",
]
