"""`CombineFn`: associative, commutative aggregation applied incrementally (add_input / merge_accumulators)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class CombineFn:
    """Beam's CombineFn: create_accumulator, add_input, merge_accumulators, extract_output (+ compact)."""

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Called once before use."""

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        """Called once after use."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """A new, empty accumulator."""
        raise NotImplementedError(f"{type(self).__name__}.create_accumulator")

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Fold one input into the accumulator; returns the (possibly same) accumulator."""
        raise NotImplementedError(f"{type(self).__name__}.add_input")

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Fold many inputs into the accumulator."""
        add_input = self.add_input
        if args or kwargs:
            for element in elements:
                accumulator = add_input(accumulator, element, *args, **kwargs)
        else:  # the common case without side arguments: no argument unpacking per element
            for element in elements:
                accumulator = add_input(accumulator, element)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Merge several accumulators into one."""
        raise NotImplementedError(f"{type(self).__name__}.merge_accumulators")

    def compact(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """Optionally shrink an accumulator before it is stored or sent."""
        return accumulator

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The result for an accumulator."""
        raise NotImplementedError(f"{type(self).__name__}.extract_output")

    def apply(self, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Combine an iterable in one go; extra arguments reach every method, as in Beam."""
        accumulator = self.add_inputs(self.create_accumulator(*args, **kwargs), elements, *args, **kwargs)
        return self.extract_output(accumulator, *args, **kwargs)

    def default_label(self) -> str:
        """The label of a Combine using this fn."""
        return type(self).__name__

    @staticmethod
    def maybe_from_callable(fn: Any, has_side_inputs: bool = False) -> CombineFn:
        """A CombineFn from a CombineFn or a callable reducing an iterable (e.g. `sum`, `max`)."""
        if isinstance(fn, CombineFn):
            return fn
        if isinstance(fn, type) and issubclass(fn, CombineFn):
            raise TypeError(f"pass an instance of {fn.__name__}, not the class (write {fn.__name__}())")
        if not callable(fn):
            raise TypeError(f"expected a CombineFn or a callable, got {type(fn).__name__} {fn!r}")
        try:
            known = _KNOWN_CALLABLES.get(fn)
        except TypeError:  # an unhashable callable (e.g. an instance defining __eq__) is no builtin
            known = None
        if known is not None:
            return known()
        return CallableWrapperCombineFn(fn)

    def for_input_type(self, input_type: Any) -> CombineFn:
        """Beam API; millstream keeps no type information."""
        return self


class CallableWrapperCombineFn(CombineFn):
    """Wraps `fn(iterable) -> value` as a CombineFn, buffering a few inputs between calls (as Beam does)."""

    _BUFFER_SIZE = 10

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._fn = fn
        self._args = args
        self._kwargs = kwargs

    def _call(self, values: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Arguments bound at construction first, then those passed per call (Beam passes side inputs per call).
        return self._fn(values, *self._args, *args, **{**self._kwargs, **kwargs})

    def default_label(self) -> str:
        """The wrapped callable's name (Beam's CombineFn.default_label)."""
        return getattr(self._fn, "__name__", type(self._fn).__name__)

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty buffer of inputs (Beam's CombineFn.create_accumulator)."""
        return []

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Buffer one input, reduced with the callable when full (Beam's CombineFn.add_input)."""
        accumulator.append(element)
        if len(accumulator) > self._BUFFER_SIZE:
            accumulator = [self._call(accumulator, args, kwargs)]
        return accumulator

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Buffer many inputs, reduced with the callable when full (Beam's CombineFn.add_inputs)."""
        accumulator.extend(elements)
        if len(accumulator) > self._BUFFER_SIZE:
            accumulator = [self._call(accumulator, args, kwargs)]
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Reduce the buffers' contents with the callable into one (Beam's CombineFn.merge_accumulators)."""
        merged = [x for acc in accumulators for x in acc]
        return [self._call(merged, args, kwargs)]

    def compact(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """Reduce a buffer of several inputs to one value with the callable (Beam's CombineFn.compact)."""
        if len(accumulator) <= 1:
            return accumulator
        return [self._call(accumulator, args, kwargs)]

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The callable applied to the buffered inputs (Beam's CombineFn.extract_output)."""
        return self._call(accumulator, args, kwargs)


class SumCombineFn(CombineFn):
    """`sum` as an incremental CombineFn."""

    def default_label(self) -> str:
        """The label "sum" (Beam's CombineFn.default_label)."""
        return "sum"

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """A running total of 0 (Beam's CombineFn.create_accumulator)."""
        return 0

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Add one input to the running total and return it (Beam's CombineFn.add_input)."""
        return accumulator + element

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Add many inputs to the running total and return it (Beam's CombineFn.add_inputs)."""
        return accumulator + sum(elements)

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The sum of the running totals (Beam's CombineFn.merge_accumulators)."""
        return sum(accumulators)

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The running total (Beam's CombineFn.extract_output)."""
        return accumulator


_EMPTY_MARK = "__millstream_empty__"


def _is_empty_mark(accumulator: Any) -> bool:
    """True for the "no input yet" accumulator of min/max, also after a codec turned its tuple into a list.

    The accumulator is otherwise a user value, so this never calls the value's `==` (numpy arrays answer with
    an array, and some types say True to anything).
    """
    return (
        type(accumulator) in (tuple, list)
        and len(accumulator) == 1
        and type(accumulator[0]) is str
        and accumulator[0] == _EMPTY_MARK
    )


class _ExtremeCombineFn(CombineFn):
    """Incremental `min`/`max`; an empty input fails exactly like `min([])` does."""

    _fn: Callable[..., Any] = min
    _EMPTY = (_EMPTY_MARK,)

    def default_label(self) -> str:
        return self._fn.__name__

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        return self._EMPTY

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        if accumulator is self._EMPTY or _is_empty_mark(accumulator):
            return element
        return self._fn(accumulator, element)

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        present = [a for a in accumulators if a is not self._EMPTY and not _is_empty_mark(a)]
        return self._fn(present) if present else self._EMPTY

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        if accumulator is self._EMPTY or _is_empty_mark(accumulator):
            return self._fn([])  # raises ValueError as the plain callable would
        return accumulator


class MinCombineFn(_ExtremeCombineFn):
    """`min` as an incremental CombineFn."""

    _fn = staticmethod(min)  # type: ignore[assignment]


class MaxCombineFn(_ExtremeCombineFn):
    """`max` as an incremental CombineFn."""

    _fn = staticmethod(max)  # type: ignore[assignment]


class ListCombineFn(CombineFn):
    """Collects all inputs into a list (the accumulator of GroupByKey)."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """An empty list (Beam's CombineFn.create_accumulator)."""
        return []

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Append one input to the list and return it (Beam's CombineFn.add_input)."""
        accumulator.append(element)
        return accumulator

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Append many inputs to the list and return it (Beam's CombineFn.add_inputs)."""
        accumulator.extend(elements)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The lists concatenated (Beam's CombineFn.merge_accumulators)."""
        return [x for acc in accumulators for x in acc]

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """A copy of the list (Beam's CombineFn.extract_output)."""
        return list(accumulator)  # a copy: an accumulating pane must not change after it was emitted


_KNOWN_CALLABLES: dict[Any, type[CombineFn]] = {
    sum: SumCombineFn,
    min: MinCombineFn,
    max: MaxCombineFn,
}
