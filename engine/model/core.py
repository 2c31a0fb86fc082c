"""The primitive transforms and the Map family, with Beam's names and semantics (`apache_beam.transforms.core`).

Primitives (executed by the runtime): Create, ParDo, GroupByKey, CombinePerKey, Flatten, WindowInto.
Everything else is composed from them.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.dofn import DoFn, is_async_callable, param_markers
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import AsSideInput, DoOutputsTuple, PBegin, PCollection
from millstream.engine.model.windowing import Windowing


def label_from_callable(fn: Any) -> str:
    """A readable label for a callable, as Beam writes it: `parse` or `<lambda at file.py:12>`."""
    if hasattr(fn, "default_label"):
        return str(fn.default_label())
    name = getattr(fn, "__name__", None)
    if name == "<lambda>":
        code = getattr(fn, "__code__", None)
        if code is not None:
            return f"<lambda at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}>"
    return name or type(fn).__name__


class Create(PTransform):
    """A bounded PCollection from an in-memory iterable (elements get the minimum timestamp)."""

    primitive = True

    def __init__(self, values: Iterable[Any], reshuffle: bool = True) -> None:
        if isinstance(values, (str, bytes)):
            raise TypeError(
                f"Create needs an iterable of elements, not a {type(values).__name__}; wrap it in a list"
            )
        if isinstance(values, dict):
            values = values.items()
        try:
            self.values = list(values)
        except TypeError:
            raise TypeError(f"Create needs an iterable of elements, got {type(values).__name__}") from None
        super().__init__()

    def default_label(self) -> str:
        """The label "Create" (Beam's PTransform.default_label)."""
        return "Create"

    def expand(self, pbegin: Any) -> PCollection:
        """The created PCollection; Create applies only to the pipeline (Beam's PTransform.expand)."""
        if not isinstance(pbegin, PBegin):
            raise TypeError(f"Create is a root transform: apply it to the pipeline, not to {pbegin!r}")
        from millstream.engine.model.typecheck import infer_element_type

        out = PCollection(pbegin.pipeline)
        out.element_type = infer_element_type(self.values)
        return out


class _ExceptionHandling:
    """How a ParDo routes failing elements to a dead-letter output (`with_exception_handling`)."""

    def __init__(
        self,
        main_tag: str,
        dead_letter_tag: str,
        exc_class: type[BaseException] | tuple[type[BaseException], ...],
        partial: bool,
        on_failure_callback: Callable[[BaseException, Any], Any] | None,
    ) -> None:
        self.main_tag = main_tag
        self.dead_letter_tag = dead_letter_tag
        self.exc_class = exc_class
        self.partial = partial
        self.on_failure_callback = on_failure_callback


class ParDo(PTransform):
    """Apply a DoFn to every element (Beam's ParDo), with optional side inputs and tagged outputs."""

    primitive = True

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(fn, type) and issubclass(fn, DoFn):
            raise TypeError(
                f"ParDo needs a DoFn instance: write ParDo({fn.__name__}()), not ParDo({fn.__name__})"
            )
        if not isinstance(fn, DoFn):
            raise TypeError(
                f"ParDo needs a DoFn instance, got {type(fn).__name__}; for a plain function use Map or FlatMap"
            )
        from millstream.engine.model.splittable import runnable

        # a splittable DoFn runs through its restriction runner; other DoFns are run as they are
        self.fn = fn = runnable(fn)
        self.args = args
        self.kwargs = kwargs
        self.side_inputs: list[AsSideInput] = [
            a for a in (*args, *kwargs.values()) if isinstance(a, AsSideInput)
        ]
        self.output_tags: tuple[str, ...] | None = None
        self.main_tag: str | None = None
        self.allow_unknown_tags = False
        self.exception_handling: _ExceptionHandling | None = None
        self.is_async = is_async_callable(fn.process)
        from millstream.engine.model.userstate import is_stateful_dofn, validate_stateful_dofn

        if is_stateful_dofn(fn):
            validate_stateful_dofn(fn)  # a TimerSpec without @on_timer fails here, as in Beam
        from millstream.engine.model.splittable import SplittableDoFnRunner
        from millstream.engine.model.watermark_estimators import check_watermark_estimator_param

        # a splittable DoFn's runner checked its user's own signature (it hides the tracker and the estimator)
        if not isinstance(fn, SplittableDoFnRunner):
            process = fn.fn if isinstance(fn, CallableWrapperDoFn) else fn.process
            check_watermark_estimator_param(param_markers(process), f"ParDo({type(fn).__name__})")
        super().__init__()

    def default_label(self) -> str:
        """The label "ParDo(<the DoFn's label>)" (Beam's PTransform.default_label)."""
        return f"ParDo({self.fn.default_label()})"

    def with_outputs(
        self, *tags: str, main: str | None = None, allow_unknown_tags: bool | None = None
    ) -> ParDo:
        """Declare additional outputs; applying the result returns a DoOutputsTuple."""
        for t in tags:
            if not isinstance(t, str):
                raise TypeError(f"output tags must be strings, got {t!r}")
        new = copy.copy(self)
        new.output_tags = tuple(tags)
        new.main_tag = main
        new.allow_unknown_tags = allow_unknown_tags if allow_unknown_tags is not None else not tags
        return new

    def with_exception_handling(
        self,
        main_tag: str = "good",
        dead_letter_tag: str = "bad",
        exc_class: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        partial: bool = False,
        on_failure_callback: Callable[[BaseException, Any], Any] | None = None,
        **unsupported: Any,
    ) -> ParDo:
        """Route elements whose processing raises to a dead-letter output; applying it returns (good, bad).

        Each bad record is `(element, (exception type, repr(exception), traceback lines))` as in Beam; the
        error tuple also carries `.step` (this step's label) and `.message`.
        """
        given = {k: v for k, v in unsupported.items() if v not in (None, False, 1)}
        if given:
            raise ValueError(
                f"with_exception_handling: option(s) {sorted(given)} are not supported by millstream"
            )
        new = copy.copy(self)
        new.exception_handling = _ExceptionHandling(
            main_tag, dead_letter_tag, exc_class, partial, on_failure_callback
        )
        return new

    def expand(self, pcoll: Any) -> Any:
        """The main output, plus the tagged or dead-letter outputs asked for (Beam's ParDo.expand)."""
        if not isinstance(pcoll, PCollection):
            raise TypeError(f"{self.label} must be applied to a PCollection, got {pcoll!r}")
        pipeline = pcoll.pipeline
        from millstream.engine.model.splittable import SplittableDoFnRunner

        user_fn = self.fn.fn if isinstance(self.fn, SplittableDoFnRunner) else self.fn
        # a splittable DoFn marked `unbounded_per_element` may output forever for one element (Beam's rule)
        bounded = pcoll.is_bounded and not getattr(
            getattr(user_fn, "process", None), "unbounded_per_element", False
        )
        main = PCollection(pipeline, windowing=pcoll._windowing, is_bounded=bounded)
        if self.exception_handling is not None:
            eh = self.exception_handling
            if self.output_tags:
                raise ValueError("with_exception_handling cannot be combined with with_outputs yet")
            bad = PCollection(
                pipeline, tag=eh.dead_letter_tag, windowing=pcoll._windowing, is_bounded=bounded
            )
            return DoOutputsTuple(main, {eh.dead_letter_tag: bad}, eh.main_tag)
        if self.output_tags is None:
            return main
        tagged = {
            t: PCollection(pipeline, tag=t, windowing=pcoll._windowing, is_bounded=bounded)
            for t in self.output_tags
        }
        return _DynamicOutputs(main, tagged, self.main_tag, self.allow_unknown_tags, pcoll)


class _DynamicOutputs(DoOutputsTuple):
    """Outputs of `with_outputs()` without tags: a tag's PCollection is created when first asked for."""

    def __init__(
        self,
        main: PCollection,
        tagged: dict[str, PCollection],
        main_tag: str | None,
        allow_unknown: bool,
        source: PCollection,
    ) -> None:
        super().__init__(main, tagged, main_tag)
        self._allow_unknown = allow_unknown
        self._source = source

    def __getitem__(self, tag: str | int | None) -> PCollection:
        if isinstance(tag, str) and tag != self._main_tag and tag not in self._tagged and self._allow_unknown:
            pc = PCollection(self._main.pipeline, tag=tag, windowing=self._source._windowing)
            pc.producer = self._main.producer
            self._tagged[tag] = pc
            if pc.producer is not None:
                pc.producer.outputs[tag] = pc
            return pc
        return super().__getitem__(tag)


class CallableWrapperDoFn(DoFn):
    """The DoFn behind Map, FlatMap, Filter, MapTuple and FlatMapTuple; the runtime runs it a batch at a time."""

    KINDS = ("map", "flatmap", "filter", "maptuple", "flatmaptuple")

    def __init__(self, fn: Callable[..., Any], kind: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(kind)
        self.fn = fn
        self.kind = kind
        self.markers = param_markers(fn)
        self.is_async = is_async_callable(fn)

    def default_label(self) -> str:
        """The wrapped callable's label (Beam's DoFn.default_label)."""
        return label_from_callable(self.fn)

    def process(self, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Apply the callable to one element as Map, FlatMap, Filter or a Tuple form (Beam's DoFn.process)."""
        kind = self.kind
        if kind == "map":
            return [self.fn(element, *args, **kwargs)]
        if kind == "flatmap":
            return self.fn(element, *args, **kwargs)
        if kind == "filter":
            return [element] if self.fn(element, *args, **kwargs) else []
        if kind == "maptuple":
            return [self.fn(*element, *args, **kwargs)]
        return self.fn(*element, *args, **kwargs)


def _callable_pardo(name: str, kind: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ParDo:
    if not callable(fn):
        raise TypeError(f"{name} can be used only with callable objects. Received {fn!r} instead.")
    if isinstance(fn, DoFn):
        raise TypeError(f"{name} needs a function; use ParDo for the DoFn {type(fn).__name__}")
    pardo = ParDo(CallableWrapperDoFn(fn, kind), *args, **kwargs)
    pardo.label = f"{name}({label_from_callable(fn)})"
    return pardo


def Map(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ParDo:  # noqa: N802 - Beam's name
    """One output per element: `fn(element, *args, **kwargs)`."""
    return _callable_pardo("Map", "map", fn, args, kwargs)


def _identity(x: Any) -> Any:
    return x


def FlatMap(fn: Callable[..., Any] = _identity, *args: Any, **kwargs: Any) -> ParDo:  # noqa: N802
    """Zero or more outputs per element: the iterable `fn(element, *args, **kwargs)`."""
    return _callable_pardo("FlatMap", "flatmap", fn, args, kwargs)


def Filter(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ParDo:  # noqa: N802
    """The elements for which `fn(element, *args, **kwargs)` is true."""
    return _callable_pardo("Filter", "filter", fn, args, kwargs)


def MapTuple(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ParDo:  # noqa: N802
    """Map over tuple elements unpacked as arguments: `fn(*element, *args, **kwargs)`."""
    return _callable_pardo("MapTuple", "maptuple", fn, args, kwargs)


def FlatMapTuple(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ParDo:  # noqa: N802
    """FlatMap over tuple elements unpacked as arguments."""
    return _callable_pardo("FlatMapTuple", "flatmaptuple", fn, args, kwargs)


class Flatten(PTransform):
    """Merge several PCollections into one."""

    primitive = True

    def __init__(self, pipeline: Any = None, **kwargs: Any) -> None:
        self.pipeline = pipeline
        super().__init__()

    def expand(self, pcolls: Any) -> PCollection:
        """The one PCollection merging the inputs, bounded if all are (Beam's Flatten.expand)."""
        if isinstance(pcolls, PCollection):
            pcolls = (pcolls,)
        if isinstance(pcolls, dict):
            pcolls = tuple(pcolls.values())
        if not isinstance(pcolls, (tuple, list)) or not all(isinstance(p, PCollection) for p in pcolls):
            raise TypeError(f"Flatten needs a tuple, list or dict of PCollections, got {pcolls!r}")
        if not pcolls:
            if self.pipeline is None:
                raise ValueError("Flatten of no PCollections needs Flatten(pipeline=p)")
            return PCollection(self.pipeline)
        windowing = pcolls[0]._windowing
        return PCollection(
            pcolls[0].pipeline, windowing=windowing, is_bounded=all(p.is_bounded for p in pcolls)
        )


class FlattenWith(PTransform):
    """``pcoll | FlattenWith(other, ...)``: `pcoll` merged with other PCollections, or with the outputs of root
    transforms applied to the pipeline (Beam's FlattenWith)."""

    def __init__(self, *others: Any) -> None:
        for i, other in enumerate(others):
            if not isinstance(other, (PCollection, PTransform)):
                raise TypeError(
                    f"FlattenWith argument {i} must be a PCollection or a PTransform, got {type(other).__name__}"
                )
        self.others = others
        super().__init__()

    def expand(self, pcoll: Any) -> PCollection:
        """Flatten of `pcoll` and the others (transforms are applied to `pcoll`'s pipeline first)."""
        if not isinstance(pcoll, PCollection):
            raise TypeError(f"FlattenWith must be applied to a PCollection, got {pcoll!r}")
        pcolls = [pcoll]
        for other in self.others:
            pcolls.append(other if isinstance(other, PCollection) else pcoll.pipeline | other)
        return tuple(pcolls) | Flatten()


class Partition(PTransform):
    """Split a PCollection into `n` by `fn(element, n, *args) -> index`."""

    def __init__(self, fn: Any, n: int, *args: Any, **kwargs: Any) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"Partition needs a positive number of partitions, got {n!r}")
        self.fn = fn.partition_for if hasattr(fn, "partition_for") else fn
        if not callable(self.fn):
            raise TypeError(f"Partition needs a callable or a PartitionFn, got {fn!r}")
        self.n = n
        self.args = args
        self.kwargs = kwargs
        super().__init__(f"Partition({label_from_callable(self.fn)})")

    def expand(self, pcoll: PCollection) -> Any:
        """Route each element to the output its partition function picks (Beam's Partition.expand)."""
        fn, n, args, kwargs = self.fn, self.n, self.args, self.kwargs

        def route(element: Any, *side: Any, **kw: Any) -> Any:
            from millstream.engine.model.pvalue import TaggedOutput

            index = fn(element, n, *side, **kw)
            if not isinstance(index, int) or not 0 <= index < n:
                raise ValueError(f"partition function returned {index!r}, expected an int in [0, {n})")
            return [TaggedOutput(str(index), element)]

        outputs = pcoll | ParDo(CallableWrapperDoFn(route, "flatmap"), *args, **kwargs).with_outputs(
            *[str(i) for i in range(n)]
        )
        return tuple(outputs[str(i)] for i in range(n))


class PartitionFn:
    """Beam's PartitionFn: `partition_for(element, num_partitions, *args) -> int`."""

    def partition_for(self, element: Any, num_partitions: int, *args: Any, **kwargs: Any) -> int:
        """The partition index of `element`."""
        raise NotImplementedError


class LateRecord(NamedTuple):
    """An element dropped by a windowed aggregation because it arrived too late for its window."""

    key: Any
    value: Any
    timestamp: Any
    window: Any
    reason: str  # "late": past end of window + allowed lateness; "closed": the window's trigger had finished


class _KeyedAggregation(PTransform):
    """Shared by GroupByKey and CombinePerKey: the optional side output of late data."""

    late_tag: str | None = None

    def with_late_data(self, tag: str = "late") -> Any:
        """Also output the elements dropped as late, as `LateRecord`s; applying it returns (main, late).

        Beam drops such data silently; millstream counts it in the `dropped_late` metric and, with this, lets
        the pipeline keep it (e.g. to write it to a dead-letter sink).
        """
        new = copy.copy(self)
        new.late_tag = tag
        return new

    #: Set on the inner aggregation of `_grouped_by_key_coder`, whose keys are encoded already.
    _keys_encoded = False

    def _key_coder(self, pcoll: PCollection) -> Any:
        """The coder registered (`coders.registry.register_coder`) for the key type this aggregation's input
        is hinted with (its `with_input_types`, else the PCollection's element type), or None."""
        if self._keys_encoded:
            return None
        from millstream.engine.model import typecheck
        from millstream.engine.model.coders import registry

        hint = typecheck.input_hint(self) or pcoll.element_type
        hint = typecheck.normalize(hint)
        args = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
        if len(args) != 2 or not isinstance(args[0], type):
            return None
        return registry.registered_coder(args[0])

    def _grouped_by_key_coder(self, pcoll: PCollection, coder: Any) -> Any:
        """Beam's grouping by the key coder's encoding: keys whose encodings are equal are one key, whatever
        their Python equality says. The keys are encoded, aggregated as bytes and decoded again; the output
        keys are the coder's decoded values, as Beam's. The step becomes a composite of the three (it has parts)."""
        inner = copy.copy(self)
        inner._keys_encoded = True
        encoded = pcoll | "EncodeKeys" >> Map(_encode_key, coder)
        out = encoded | type(self).__name__ >> inner
        if isinstance(out, DoOutputsTuple):
            main = out[None] | "DecodeKeys" >> Map(_decode_key, coder)
            late = out[self.late_tag] | "DecodeLateKeys" >> Map(_decode_late_key, coder)
            return DoOutputsTuple(main, {self.late_tag: late}, None)  # type: ignore[dict-item]
        return out | "DecodeKeys" >> Map(_decode_key, coder)

    def _outputs(self, pcoll: PCollection) -> Any:
        _check_keyed_input(self, pcoll)
        main = PCollection(pcoll.pipeline, windowing=pcoll._windowing, is_bounded=pcoll.is_bounded)
        if self.late_tag is None:
            return main
        late = PCollection(
            pcoll.pipeline, tag=self.late_tag, windowing=pcoll._windowing, is_bounded=pcoll.is_bounded
        )
        return DoOutputsTuple(main, {self.late_tag: late}, None)


class GroupByKey(_KeyedAggregation):
    """Group (key, value) pairs by key, per window and pane: outputs (key, list of values)."""

    primitive = True

    def expand(self, pcoll: PCollection) -> Any:
        """The grouped output, plus the late output if asked for (Beam's GroupByKey.expand)."""
        coder = self._key_coder(pcoll)
        if coder is not None:
            return self._grouped_by_key_coder(pcoll, coder)
        return self._outputs(pcoll)


class CombinePerKey(_KeyedAggregation):
    """Combine the values of each key (and window) with a CombineFn or a callable such as `sum`."""

    primitive = True

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.fn = CombineFn.maybe_from_callable(fn)
        #: Side inputs among the extra arguments: they are known per window only while running, so the
        #: combine becomes GroupByKey + CombineValues (a ParDo, which resolves side inputs), as in Beam.
        self.side_args: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        if any(isinstance(a, AsSideInput) for a in (*args, *kwargs.values())):
            self.side_args = (args, kwargs)
            self.primitive = False
        elif args or kwargs:
            from millstream.engine.model.combinefn import CallableWrapperCombineFn

            if isinstance(self.fn, CallableWrapperCombineFn):
                self.fn = CallableWrapperCombineFn(fn, *args, **kwargs)
            else:
                self.fn = _BoundCombineFn(self.fn, args, kwargs)
        #: Emit extract_output(create_accumulator()) for this key when the global window saw no input.
        self.default_key: Any = _NO_DEFAULT
        super().__init__(f"CombinePerKey({self.fn.default_label()})")

    def with_hot_key_fanout(self, fanout: Any) -> CombinePerKey:
        """Beam's hot-key hint; one process holds every key, so there is nothing to fan out."""
        return self

    def expand(self, pcoll: PCollection) -> Any:
        """The combined output, plus the late output if asked for (Beam's CombinePerKey.expand)."""
        if self.side_args is not None:
            if self.late_tag is not None:
                raise ValueError(
                    f"{self.label}: with_late_data is not supported with side inputs to the CombineFn"
                )
            args, kwargs = self.side_args
            return pcoll | "GroupByKey" >> GroupByKey() | "Combine" >> CombineValues(self.fn, *args, **kwargs)
        coder = self._key_coder(pcoll)
        if coder is not None:
            return self._grouped_by_key_coder(pcoll, coder)
        return self._outputs(pcoll)


_NO_DEFAULT = object()


class _BoundCombineFn(CombineFn):
    """A CombineFn with extra arguments bound to every call."""

    def __init__(self, fn: CombineFn, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def default_label(self) -> str:
        return self.fn.default_label()

    def create_accumulator(self, *a: Any, **k: Any) -> Any:
        return self.fn.create_accumulator(*self.args, **self.kwargs)

    def add_input(self, accumulator: Any, element: Any, *a: Any, **k: Any) -> Any:
        return self.fn.add_input(accumulator, element, *self.args, **self.kwargs)

    def merge_accumulators(self, accumulators: Iterable[Any], *a: Any, **k: Any) -> Any:
        return self.fn.merge_accumulators(accumulators, *self.args, **self.kwargs)

    def extract_output(self, accumulator: Any, *a: Any, **k: Any) -> Any:
        return self.fn.extract_output(accumulator, *self.args, **self.kwargs)


def _encode_key(kv: Any, coder: Any) -> tuple[Any, Any]:
    """(key, value) with the key as its coder's bytes."""
    return coder.encode(kv[0]), kv[1]


def _decode_key(kv: Any, coder: Any) -> tuple[Any, Any]:
    """(key bytes, value) with the key decoded by its coder."""
    return coder.decode(kv[0]), kv[1]


def _decode_late_key(record: LateRecord, coder: Any) -> LateRecord:
    """A late record whose key was encoded for grouping, with the key decoded."""
    return record._replace(key=coder.decode(record.key))


def _check_keyed_input(transform: PTransform, pcoll: Any) -> None:
    if not isinstance(pcoll, PCollection):
        raise TypeError(f"{transform.label} must be applied to a PCollection of (key, value), got {pcoll!r}")


class CombineGlobally(PTransform):
    """Combine all elements (per window) into one value."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.has_defaults = True
        self.as_view = False
        super().__init__(f"CombineGlobally({CombineFn.maybe_from_callable(fn).default_label()})")

    def without_defaults(self) -> CombineGlobally:
        """Output nothing (instead of the empty result) when the input is empty."""
        new = copy.copy(self)
        new.has_defaults = False
        return new

    def with_defaults(self, has_defaults: bool = True) -> CombineGlobally:
        """Output the combine of no elements when the input is empty (the default)."""
        new = copy.copy(self)
        new.has_defaults = has_defaults
        return new

    def as_singleton_view(self) -> CombineGlobally:
        """Return an AsSingleton side input of the result."""
        new = copy.copy(self)
        new.as_view = True
        return new

    def expand(self, pcoll: PCollection) -> Any:
        """Combine all elements under one key, or into a singleton side input (Beam's CombineGlobally)."""
        from millstream.engine.model.pvalue import AsSingleton
        from millstream.engine.model.window import GlobalWindows

        combine = CombinePerKey(self.fn, *self.args, **self.kwargs)
        global_windowed = isinstance(pcoll.windowing.windowfn, GlobalWindows)
        if self.has_defaults and not self.as_view:
            if not global_windowed:
                raise ValueError(
                    "Default values are not yet supported in CombineGlobally() if the output PCollection is "
                    "not windowed by GlobalWindows. Instead, use CombineGlobally().without_defaults() to output "
                    "an empty PCollection if the input PCollection is empty, or "
                    "CombineGlobally().as_singleton_view() to get the default output of the CombineFn if the "
                    "input PCollection is empty."
                )
            combine.default_key = None
        pairs = pcoll | "KeyWithVoid" >> self._typed_key_with_void(pcoll) | "CombinePerKey" >> combine
        unkey: PTransform = Map(_second)
        value_type = typing.get_args(pairs.element_type)[1:2] if pairs.element_type is not None else ()
        if value_type and value_type[0] is not typing.Any:
            # the CombineFn's declared output, as Beam infers it from its UnKey lambda
            unkey = unkey.with_output_types(value_type[0])
        result = pairs | "UnKey" >> unkey
        if self.as_view:
            fn = CombineFn.maybe_from_callable(self.fn)
            default = fn.apply([], *self.args, **self.kwargs) if self.has_defaults else None
            return AsSingleton(result, default_value=default)
        return result

    def _typed_key_with_void(self, pcoll: PCollection) -> PTransform:
        """``Map`` pairing each element with the key None, typed as Beam types it: ``Tuple[None, <the input's
        type>]`` out, and in the input type declared on this transform (so the CombineFn's input type is
        checked against the elements' at construction)."""
        from millstream.engine.model.typehints import declared_hints

        element = pcoll.element_type if pcoll.element_type is not None else typing.Any
        keyed = Map(_key_with_none).with_output_types(typing.Tuple[None, element])  # noqa: UP006
        declared = declared_hints(self).get("input")
        if declared and declared[0]:
            keyed = keyed.with_input_types(declared[0][0])
        return keyed


def _key_with_none(x: Any) -> Any:
    return (None, x)


def _second(kv: Any) -> Any:
    return kv[1]


class CombineValues(PTransform):
    """Combine the iterable value of each (key, values) pair."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.fn = CombineFn.maybe_from_callable(fn)
        self.args = args
        self.kwargs = kwargs
        super().__init__(f"CombineValues({self.fn.default_label()})")

    def expand(self, pcoll: PCollection) -> PCollection:
        """Combine each pair's iterable of values with the CombineFn (Beam's CombineValues.expand)."""
        # A ParDo, so side inputs among the arguments arrive resolved for each element's window.
        return pcoll | "Combine" >> ParDo(_CombineValuesDoFn(self.fn), *self.args, **self.kwargs)


class _CombineValuesDoFn(DoFn):
    """`(key, values)` -> `(key, combined)`, the CombineFn called with the (resolved) extra arguments."""

    def __init__(self, fn: CombineFn) -> None:
        from millstream.engine.model.typecheck import combine_values_dofn_hints

        self.fn = fn
        hints = combine_values_dofn_hints(fn)
        if hints:  # the CombineFn's types, on its pairs, as Beam's CombineValuesDoFn declares them
            self._millstream_type_hints = hints

    def default_label(self) -> str:
        return f"CombineValues({self.fn.default_label()})"

    def process(self, element: Any, *args: Any, **kwargs: Any) -> Any:
        fn = self.fn
        key, values = element
        acc = fn.add_inputs(fn.create_accumulator(*args, **kwargs), values, *args, **kwargs)
        yield (key, fn.extract_output(acc, *args, **kwargs))


class WindowInto(PTransform):
    """Assign elements to windows and set the trigger, accumulation mode and allowed lateness."""

    primitive = True

    def __init__(
        self,
        windowfn: Any,
        trigger: Any = None,
        accumulation_mode: Any = None,
        timestamp_combiner: Any = None,
        allowed_lateness: Any = 0,
    ) -> None:
        from millstream.engine.model.trigger import DefaultTrigger, TriggerFn

        if isinstance(windowfn, Windowing):
            self.windowing = windowfn
        else:
            # a trigger that is not a TriggerFn at all is reported by Windowing, naming what was passed
            if (
                isinstance(trigger, TriggerFn)
                and not isinstance(trigger, DefaultTrigger)
                and accumulation_mode is None
            ):
                raise ValueError("accumulation_mode must be provided for non-trivial triggers")
            self.windowing = Windowing(
                windowfn, trigger, accumulation_mode, timestamp_combiner, allowed_lateness
            )
        super().__init__(f"WindowInto({type(self.windowing.windowfn).__name__})")

    def expand(self, pcoll: PCollection) -> PCollection:
        """The input re-windowed with this windowing strategy (Beam's WindowInto.expand)."""
        if not isinstance(pcoll, PCollection):
            raise TypeError(f"WindowInto must be applied to a PCollection, got {pcoll!r}")
        return PCollection(pcoll.pipeline, windowing=self.windowing, is_bounded=pcoll.is_bounded)
