"""Beam's `ApproximateUnique` and `ApproximateQuantiles` (``apache_beam.transforms.stats``), as CombineFns."""

from __future__ import annotations

import hashlib
import heapq
import math
import pickle
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, Union

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import CombineGlobally, CombinePerKey

# The type variable of Beam's hints on the global estimates: bound to the input's type when a pipeline is built
T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation

_HASH_SPACE = 2.0**64


def _hash64(value: Any) -> int:
    """A stable 64-bit hash of `value` (the same in every process, unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(pickle.dumps(value, protocol=4), digest_size=8).digest(), "big")


def _sample_size(size: int | None, error: float | None, where: str) -> int:
    """Beam's rule: exactly one of `size` (>= 16) and `error` (0.01..0.5) picks the sample size."""
    if (size is None) == (error is None):
        raise ValueError(f"{where}: give exactly one of size and error (got size={size!r}, error={error!r})")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 16:
            raise ValueError(
                f"{where}: size must be an integer >= 16 for the estimate's error < 50%, got {size!r}"
            )
        return size
    assert error is not None
    if not 0.01 <= error <= 0.5:
        raise ValueError(f"{where}: error must be between 0.01 and 0.5, got {error!r}")
    return math.ceil(4.0 / error**2)


class ApproximateUniqueCombineFn(CombineFn):
    """Estimates the number of distinct inputs from the `sample_size` smallest of their 64-bit hashes (a KMV
    sketch: the k-th smallest of n uniform hashes is about k/n of the hash space). Exact below `sample_size`.

    >>> ApproximateUniqueCombineFn(16).apply(["a", "b", "a"])
    2
    """

    def __init__(self, sample_size: int) -> None:
        self.sample_size = sample_size

    def create_accumulator(self, *args: Any, **kwargs: Any) -> set[int]:
        """An empty set of hashes (Beam's `CombineFn.create_accumulator`)."""
        return set()  # distinct hashes; pruned to the smallest `sample_size` when it doubles (amortised O(1))

    def _prune(self, hashes: set[int]) -> set[int]:
        if len(hashes) > 2 * self.sample_size:
            return set(heapq.nsmallest(self.sample_size, hashes))
        return hashes

    def add_input(self, accumulator: set[int], element: Any, *args: Any, **kwargs: Any) -> set[int]:
        """Add the element's 64-bit hash, keeping the smallest ones (Beam's `CombineFn.add_input`)."""
        accumulator.add(_hash64(element))
        return self._prune(accumulator)

    def merge_accumulators(self, accumulators: Iterable[set[int]], *args: Any, **kwargs: Any) -> set[int]:
        """The union of the hash sets, pruned to the smallest ones (Beam's `CombineFn.merge_accumulators`)."""
        merged: set[int] = set()
        for acc in accumulators:
            merged |= acc
            merged = self._prune(merged)
        return merged

    def extract_output(self, accumulator: set[int], *args: Any, **kwargs: Any) -> int:
        """The distinct count, estimated once the sample is full (Beam's `CombineFn.extract_output`)."""
        if len(accumulator) < self.sample_size:
            return len(accumulator)
        kth_smallest = max(heapq.nsmallest(self.sample_size, accumulator)) + 1
        return round((self.sample_size - 1) * _HASH_SPACE / kth_smallest)


class ApproximateUnique:
    """The approximate number of distinct elements (Beam's `ApproximateUnique`): `Globally` or `PerKey`, with the
    sample `size` or the estimation `error` (about 2/sqrt(size)).

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create([1, 2, 2, 3]) | beam.ApproximateUnique.Globally(size=16) | beam.Map(print)
    3
    """

    @staticmethod
    def Globally(size: int | None = None, error: float | None = None) -> CombineGlobally:  # noqa: N802
        """The estimate over the whole PCollection (per window)."""
        fn = ApproximateUniqueCombineFn(_sample_size(size, error, "ApproximateUnique.Globally"))
        combine = CombineGlobally(fn)
        combine.with_input_types(T).with_output_types(int)  # Beam's hints
        return combine

    @staticmethod
    def PerKey(size: int | None = None, error: float | None = None) -> CombinePerKey:  # noqa: N802
        """The estimate for each key of a PCollection of `(key, value)`."""
        return CombinePerKey(
            ApproximateUniqueCombineFn(_sample_size(size, error, "ApproximateUnique.PerKey"))
        )


class ApproximateQuantilesCombineFn(CombineFn):
    """`num_quantiles` evenly spaced order statistics: the minimum, the maximum and the ones between.

    Unlike Beam's bounded-memory sketch, the accumulator keeps every input, so the quantiles are exact and
    the memory grows with the input of a key and window.

    >>> ApproximateQuantilesCombineFn(3).apply([5, 1, 3, 2, 4])
    [1, 3, 5]
    """

    def __init__(
        self,
        num_quantiles: int,
        key: Callable[[Any], Any] | None = None,
        reverse: bool = False,
        weighted: bool = False,
        input_batched: bool = False,
    ) -> None:
        if not isinstance(num_quantiles, int) or num_quantiles < 2:
            raise ValueError(
                f"ApproximateQuantiles: num_quantiles must be an integer >= 2, got {num_quantiles!r}"
            )
        self.num_quantiles = num_quantiles
        self.key = key
        self.reverse = reverse
        self.weighted = weighted
        self.input_batched = input_batched

    def create_accumulator(self, *args: Any, **kwargs: Any) -> list[Any]:
        """An empty list of inputs (Beam's `CombineFn.create_accumulator`)."""
        return []

    def add_input(self, accumulator: list[Any], element: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """Append the input, or extend by it when inputs are batched (Beam's `CombineFn.add_input`)."""
        # weighted inputs are (value, weight); batched inputs are lists of those
        if self.input_batched:
            accumulator.extend(element)
        else:
            accumulator.append(element)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[Any]], *args: Any, **kwargs: Any) -> list[Any]:
        """The concatenation of the accumulated inputs (Beam's `CombineFn.merge_accumulators`)."""
        return [x for acc in accumulators for x in acc]

    def extract_output(self, accumulator: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """The `num_quantiles` evenly spaced order statistics (Beam's `CombineFn.extract_output`)."""
        if not accumulator:
            return []
        key = self.key or (lambda x: x)
        if self.weighted:
            pairs = sorted(accumulator, key=lambda vw: key(vw[0]), reverse=self.reverse)
            total = sum(w for _, w in pairs)
            out, seen, i = [], 0.0, 0
            for q in range(self.num_quantiles):
                target = total * q / (self.num_quantiles - 1)
                while i < len(pairs) - 1 and seen + pairs[i][1] <= target and q > 0:
                    seen += pairs[i][1]
                    i += 1
                out.append(pairs[i][0])
            return out
        values = sorted(accumulator, key=key, reverse=self.reverse)
        last = len(values) - 1
        return [values[round(q * last / (self.num_quantiles - 1))] for q in range(self.num_quantiles)]


class ApproximateQuantiles:
    """Quantiles of a PCollection (Beam's `ApproximateQuantiles`): `Globally` or `PerKey`, `num_quantiles` values
    from the minimum to the maximum. See `ApproximateQuantilesCombineFn` for the memory it needs.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create(range(101)) | beam.ApproximateQuantiles.Globally(5) | beam.Map(print)
    [0, 25, 50, 75, 100]
    """

    @staticmethod
    def Globally(
        num_quantiles: int,
        key: Callable[[Any], Any] | None = None,
        reverse: bool = False,  # noqa: N802
        weighted: bool = False,
        input_batched: bool = False,
    ) -> CombineGlobally:
        """The quantiles of the whole PCollection (per window)."""
        fn = ApproximateQuantilesCombineFn(num_quantiles, key, reverse, weighted, input_batched)
        # Beam's hints: values, or batches of them, or (value, weight) pairs in; a list of values out
        taken = Union[T, Sequence[T], tuple[T, float]]  # noqa: UP007
        combine = CombineGlobally(fn)
        combine.with_input_types(taken).with_output_types(list[T])
        return combine

    @staticmethod
    def PerKey(
        num_quantiles: int,
        key: Callable[[Any], Any] | None = None,
        reverse: bool = False,  # noqa: N802
        weighted: bool = False,
        input_batched: bool = False,
    ) -> CombinePerKey:
        """The quantiles of each key's values."""
        return CombinePerKey(
            ApproximateQuantilesCombineFn(num_quantiles, key, reverse, weighted, input_batched)
        )


__all__ = [
    "ApproximateQuantiles",
    "ApproximateQuantilesCombineFn",
    "ApproximateUnique",
    "ApproximateUniqueCombineFn",
]
