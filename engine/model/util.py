"""Keyed utilities composed from the primitives (Beam's `apache_beam.transforms.util`)."""

from __future__ import annotations

import typing
from typing import Any, TypeVar

from millstream.engine.model import inference
from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import CombinePerKey, Flatten, GroupByKey, Map, ParDo
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection
from millstream.engine.model.timestamp import TimestampedValue
from millstream.engine.model.typehints import with_input_types, with_output_types

T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation
K: Any = TypeVar("K")  # type: ignore[misc]  # a value in hints, not an annotation
V: Any = TypeVar("V")  # type: ignore[misc]  # a value in hints, not an annotation


def _tuple_hint(*items: Any) -> Any:
    """``Tuple[items]`` built at run time (a value for the construction-time check, not an annotation)."""
    return typing.Tuple[items]  # noqa: UP006 - Beam's hint spelling


# WithKeys' output is a pair (Beam infers it from its lambda; code such as Beam's ordered_window_elements asks
# `isinstance(pcoll.element_type, TupleConstraint)`); a value for the construction-time check, not an annotation
_ANY_T: Any = _tuple_hint(Any, T)


def _key(kv: Any) -> Any:
    return kv[0]


def _value(kv: Any) -> Any:
    return kv[1]


def _swap(kv: Any) -> Any:
    return (kv[1], kv[0])


def _typed_by_parts(step: PTransform, pcoll: PCollection, output: Any) -> PTransform:
    """`step` (Keys', Values' or KvSwap's Map) with the output type Beam infers from its ``MapTuple`` lambda:
    `output(key type, value type)` for a tuple input (its first two parts, Any for a missing one; a variadic
    tuple's part for both), else untyped (Any). As in Beam, these transforms declare no hints (Beam's
    decorators sit under `ptransform_fn`, which drops them), so their input is not checked."""
    hint = pcoll.element_type
    parts = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
    if not parts or parts == ((),):
        return step
    if len(parts) == 2 and parts[1] is Ellipsis:
        parts = (parts[0], parts[0])
    key, value = (*parts, Any)[:2]
    return step.with_output_types(output(key, value))


class Keys(PTransform):
    """The keys of (key, value) pairs."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """The key of each pair (Beam's Keys.expand)."""
        return pcoll | "Keys" >> _typed_by_parts(Map(_key), pcoll, lambda k, v: k)


class Values(PTransform):
    """The values of (key, value) pairs."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """The value of each pair (Beam's Values.expand)."""
        return pcoll | "Values" >> _typed_by_parts(Map(_value), pcoll, lambda k, v: v)


class KvSwap(PTransform):
    """(key, value) -> (value, key)."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """Each pair swapped (Beam's KvSwap.expand)."""
        return pcoll | "KvSwap" >> _typed_by_parts(Map(_swap), pcoll, lambda k, v: _tuple_hint(v, k))


@with_input_types(T)
@with_output_types(_ANY_T)
class WithKeys(PTransform):
    """Pair each element with a key: a constant or `fn(element)`."""

    def __init__(self, k: Any, *args: Any, **kwargs: Any) -> None:
        self.k = k
        self.args = args
        self.kwargs = kwargs
        super().__init__()

    def expand(self, pcoll: PCollection) -> PCollection:
        """Each element paired with the constant key or the key function's result (Beam's WithKeys.expand)."""
        k, args, kwargs = self.k, self.args, self.kwargs
        if callable(k):
            keyed = Map(lambda v: (k(v, *args, **kwargs), v))
        else:
            keyed = Map(lambda v: (k, v))
        return pcoll | "WithKeys" >> keyed.with_output_types(self._pair_type(pcoll))

    def _pair_type(self, pcoll: PCollection) -> Any:
        """The pairs' type as Beam infers it from its lambda: the constant key's type, or what the key function
        returns for the elements (Any when it takes extra arguments, which Beam's lambda passes on unread)."""
        element = pcoll.element_type if pcoll.element_type is not None else Any
        if not callable(self.k):
            key = inference.instance_type(self.k)
        elif self.args or self.kwargs:
            key = Any
        else:  # called from Beam's lambda, itself inferred one level down from Map's
            key = inference.infer_return_type(self.k, [element], depth=inference.DEFAULT_DEPTH - 2)
        return _tuple_hint(key, element)


@with_input_types(T)
@with_output_types(T)
class Reshuffle(PTransform):
    """Beam's Reshuffle: a redistribution point. On one process there is nothing to redistribute, so elements
    pass through unchanged (timestamps and windows kept), which is exactly the observable semantics."""

    def __init__(self, num_buckets: int | None = None) -> None:
        super().__init__()

    def expand(self, pcoll: PCollection) -> PCollection:
        """The input unchanged: one process has nothing to redistribute (Beam's Reshuffle.expand)."""
        return pcoll | "Identity" >> Map(_identity)


def _identity(x: Any) -> Any:
    return x


class CoGroupByKey(PTransform):
    """Join several keyed PCollections: (key, {tag: [values]}) for a dict input, (key, ([..], [..])) for a tuple."""

    def __init__(self, *, pipeline: Any = None) -> None:
        self.pipeline = pipeline
        super().__init__()

    def expand(self, pcolls: Any) -> PCollection:
        """Tag, flatten and group the inputs; each key's values per input (Beam's CoGroupByKey.expand)."""
        if isinstance(pcolls, dict):
            tags = list(pcolls.keys())
            inputs = [pcolls[t] for t in tags]
            as_dict = True
        elif isinstance(pcolls, (tuple, list)):
            inputs = list(pcolls)
            tags = list(range(len(inputs)))
            as_dict = False
        else:
            raise TypeError(f"CoGroupByKey needs a dict or tuple of PCollections, got {pcolls!r}")
        if not inputs:
            raise ValueError("CoGroupByKey needs at least one input PCollection")
        n = len(inputs)
        tagged = [pc | f"Tag[{tag}]" >> Map(_tag_with, i) for i, (tag, pc) in enumerate(zip(tags, inputs))]
        grouped = tuple(tagged) | "Flatten" >> Flatten() | "GroupByKey" >> GroupByKey()

        def assemble(kv: Any) -> Any:
            key, tagged_values = kv
            columns: list[list[Any]] = [[] for _ in range(n)]
            for i, v in tagged_values:
                columns[i].append(v)
            if as_dict:
                return (key, {tag: columns[i] for i, tag in enumerate(tags)})
            return (key, tuple(columns))

        return grouped | "Assemble" >> Map(assemble)


def _tag_with(kv: Any, i: int) -> Any:
    return (kv[0], (i, kv[1]))


class _DistinctCombineFn(CombineFn):
    """Keeps nothing: only the key matters."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    def add_inputs(self, accumulator: Any, elements: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    def merge_accumulators(self, accumulators: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        return None


class Distinct(PTransform):
    """Each distinct element once (per window)."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """Group each element as a key and output the keys (Beam's Distinct.expand)."""
        return (
            pcoll
            | "ToPairs" >> Map(_with_none)
            | "Group" >> CombinePerKey(_DistinctCombineFn())
            | "Keys" >> Map(_key)
        )


def _with_none(x: Any) -> Any:
    return (x, None)


RemoveDuplicates = Distinct


class _AddTimestamp(DoFn):
    """The element with its timestamp, as a `TimestampedValue` (which the runtime unwraps again)."""

    def process(self, element: Any, timestamp: Any = DoFn.TimestampParam) -> Any:
        """The element and its timestamp."""
        yield TimestampedValue(element, timestamp)


class _AddWindow(DoFn):
    """(element, timestamp, window), stamped with the element's timestamp."""

    def process(
        self, element: Any, timestamp: Any = DoFn.TimestampParam, window: Any = DoFn.WindowParam
    ) -> Any:
        """The element with its timestamp and window."""
        yield TimestampedValue((element, timestamp, window), timestamp)


class _AddTimestampInValue(DoFn):
    """(key, TimestampedValue(value, timestamp)): nested in the pair, so it stays a TimestampedValue."""

    def process(self, element: Any, timestamp: Any = DoFn.TimestampParam) -> Any:
        """The pair with its value's timestamp nested in it."""
        key, value = element
        yield (key, TimestampedValue(value, timestamp))


class _AddWindowInValue(DoFn):
    """(key, (value, timestamp, window)), stamped with the element's timestamp."""

    def process(
        self, element: Any, timestamp: Any = DoFn.TimestampParam, window: Any = DoFn.WindowParam
    ) -> Any:
        """The pair with its value's timestamp and window nested in it."""
        key, value = element
        yield TimestampedValue((key, (value, timestamp, window)), timestamp)


class Reify:
    """Beam's `Reify`: an element's implicit timestamp and window made explicit in its value.

    As in Beam, `Reify.Timestamp` yields `TimestampedValue(element, timestamp)` from a DoFn, which the runtime
    unwraps, so its output equals its input; the `...InValue` forms keep the value nested in the (key, value)
    pair, where it stays visible.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = (p | beam.Create([("k", "v")]) | beam.Reify.WindowInValue()
    ...          | beam.MapTuple(lambda k, v: print(k, v[0], v[1].micros, v[2])))
    k v -9223372036854775 GlobalWindow
    """

    @with_input_types(T)
    @with_output_types(T)
    class Timestamp(PTransform):
        """Each element wrapped in a TimestampedValue with its timestamp (unwrapped again on output)."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """ParDo of the wrapping DoFn (Beam's Reify.Timestamp.expand)."""
            return pcoll | "AddTimestampInfo" >> ParDo(_AddTimestamp())

    @with_input_types(T)
    @with_output_types(T)
    class Window(PTransform):
        """Each element as (element, timestamp, window)."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """ParDo of the window-reifying DoFn (Beam's Reify.Window.expand)."""
            return pcoll | "AddWindowInfo" >> ParDo(_AddWindow())

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, V])
    class TimestampInValue(PTransform):
        """(key, value) as (key, TimestampedValue(value, timestamp))."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """ParDo of the value-wrapping DoFn (Beam's Reify.TimestampInValue.expand)."""
            return pcoll | "AddTimestampInfo" >> ParDo(_AddTimestampInValue())

    @with_input_types(tuple[K, V])
    @with_output_types(tuple[K, V])
    class WindowInValue(PTransform):
        """(key, value) as (key, (value, timestamp, window))."""

        def expand(self, pcoll: PCollection) -> PCollection:
            """ParDo of the window-reifying DoFn (Beam's Reify.WindowInValue.expand)."""
            return pcoll | "AddWindowInfo" >> ParDo(_AddWindowInValue())
