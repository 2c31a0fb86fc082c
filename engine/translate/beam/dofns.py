"""User `DoFn`s and `CombineFn`s wrapped as ``apache_beam`` ones, with values converted at the edges.

A millstream DoFn asks for its parameters with millstream's markers (``DoFn.TimestampParam``, state and timer
specs) and emits millstream values (`TaggedOutput`, `TimestampedValue`, `WindowedValue`). The wrapper built
here is a Beam DoFn whose ``process`` and ``@on_timer`` methods declare the matching Beam parameters, so the
Beam runner supplies them; it converts Beam's timestamps, windows and panes to millstream's before calling the
user's method and converts what the method emits back. User metrics (`Metrics.counter` ...) are collected per
bundle and reported to Beam's metrics at the end of the bundle. An ``async def process`` runs to completion
per bundle, at most ``concurrency`` elements at a time (millstream's ``--async_concurrency``).

>>> import apache_beam as beam
>>> import millstream as ms
>>> class Double(ms.DoFn):
...     def process(self, x):
...         yield 2 * x
>>> with beam.Pipeline() as p:  # doctest: +SKIP
...     _ = p | beam.Create([1, 2]) | beam.ParDo(wrap_dofn(Double(), 64))
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam.transforms import userstate as beam_userstate
from apache_beam.transforms.window import TimestampedValue as BeamTimestampedValue
from apache_beam.utils.timestamp import Timestamp as BeamTimestamp
from apache_beam.utils.windowed_value import WindowedValue as BeamWindowedValue

from millstream.engine.model import metrics as ms_metrics
from millstream.engine.model import userstate as ms_userstate
from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import CallableWrapperDoFn
from millstream.engine.model.dofn import DoFn, WindowedValue, param_markers, provider_of
from millstream.engine.model.pvalue import TaggedOutput
from millstream.engine.model.splittable import SplittableDoFnRunner
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, Timestamp, TimestampedValue, to_micros
from millstream.engine.model.watermark_estimators import estimator_provider
from millstream.engine.model.window import GlobalWindow, IntervalWindow, PaneInfo, PaneInfoTiming
from millstream.engine.translate.beam.legacy import (
    BeamRestrictionProvider,
    BeamWatermarkEstimatorProvider,
    user_estimator,
)


class UntranslatableError(ValueError):
    """A step that has no Beam counterpart; raised before anything is submitted."""


# ------------------------------------------------------------------------------------------------------
# Values


# The ends of time differ: millstream's bounds are Java's bound (Long.MAX_VALUE / 1000) in microseconds, Beam's
# the same number in milliseconds, 1000x larger. They are converted at the edge, so that a DoFn sees
# millstream's values on Beam's runners too (a global-window grouping is stamped with the global window's max
# timestamp), and a timer or output at millstream's bound lands on Beam's.
_BEAM_MAX = beam.utils.timestamp.MAX_TIMESTAMP.micros
_BEAM_MIN = beam.utils.timestamp.MIN_TIMESTAMP.micros
_BEAM_GW_MAX = beam.transforms.window.GlobalWindow().max_timestamp().micros
_BEAM_GW_END = beam.transforms.window.GlobalWindow().end.micros
_MS_GW_MAX = GlobalWindow().max_timestamp().micros
_MS_GW_END = GlobalWindow().end.micros


def to_ms_micros(micros: int) -> int:
    """A Beam time in µs as millstream's: Beam's bounds and global-window times become millstream's (portable
    runners keep ms, so the global window's max timestamp comes back as Java's, rounded to the ms)."""
    if micros >= _BEAM_MAX // 1000 * 1000:
        return MAX_MICROS
    if micros <= _BEAM_MIN:
        return MIN_MICROS
    if _BEAM_GW_MAX // 1000 * 1000 <= micros <= _BEAM_GW_END:
        return _MS_GW_MAX
    return micros


def to_beam_micros(micros: int) -> int:
    """A millstream time in µs as Beam's: millstream's bounds and global-window times become Beam's."""
    if micros >= MAX_MICROS:
        return _BEAM_MAX
    if micros <= MIN_MICROS:
        return _BEAM_MIN
    if micros == _MS_GW_MAX:
        return _BEAM_GW_MAX
    if micros == _MS_GW_END:
        return _BEAM_GW_END
    return micros


def to_ms_timestamp(ts: Any) -> Timestamp:
    """A Beam timestamp as millstream's."""
    return Timestamp(micros=to_ms_micros(ts.micros))


def to_beam_timestamp(value: Any) -> BeamTimestamp:
    """Anything millstream accepts as a time (Timestamp, seconds) as Beam's Timestamp."""
    if isinstance(value, BeamTimestamp):
        return value
    return BeamTimestamp(micros=to_beam_micros(to_micros(value)))


def to_ms_window(window: Any) -> Any:
    """A Beam window as millstream's (global or interval)."""
    if isinstance(window, beam.transforms.window.GlobalWindow):
        return GlobalWindow()
    return IntervalWindow.from_micros(window.start.micros, window.end.micros)


def to_beam_window(window: Any) -> Any:
    """A millstream window as Beam's."""
    if isinstance(window, GlobalWindow):
        return beam.transforms.window.GlobalWindow()
    return beam.transforms.window.IntervalWindow(
        BeamTimestamp(micros=window.start_us), BeamTimestamp(micros=window.end_us)
    )


def to_ms_pane(pane: Any) -> PaneInfo:
    """A Beam PaneInfo as millstream's."""
    return PaneInfo(
        pane.is_first, pane.is_last, PaneInfoTiming(pane.timing), pane.index, pane.nonspeculative_index
    )


def to_beam_output(value: Any) -> Any:
    """What a millstream DoFn emitted, as Beam's output objects (plain values pass unchanged)."""
    kind = type(value)
    if kind is TaggedOutput:
        return beam.pvalue.TaggedOutput(value.tag, to_beam_output(value.value))
    if kind is TimestampedValue:
        return BeamTimestampedValue(value.value, BeamTimestamp(micros=to_beam_micros(value.micros)))
    if kind is WindowedValue:
        windows = tuple(to_beam_window(w) for w in value.windows)
        return BeamWindowedValue(value.value, BeamTimestamp(micros=to_beam_micros(value.micros)), windows)
    return value


def _outputs(result: Any) -> Iterable[Any]:
    if result is None:
        return ()
    return (to_beam_output(v) for v in result)


# ------------------------------------------------------------------------------------------------------
# Metrics


class _ForwardingDistribution:
    """Stands for a millstream `DistributionResult`: each value added to `sum` goes to Beam's distribution.

    millstream's `Distribution.update(v)` does ``d.sum += v`` on this object; `sum` reads as 0, so the
    value assigned is exactly ``v``, and Beam's cell gets one `update(v)` per millstream update.
    """

    __slots__ = ("_beam",)

    def __init__(self, beam_distribution: Any) -> None:
        self._beam = beam_distribution

    count = property(lambda self: 0, lambda self, v: None)
    min = property(lambda self: None, lambda self, v: None)
    max = property(lambda self: None, lambda self, v: None)

    @property
    def sum(self) -> int:
        return 0

    @sum.setter
    def sum(self, value: Any) -> None:
        self._beam.update(value)


class _ForwardingDistributions(dict):  # type: ignore[type-arg]
    """The `distributions` of a bridge container: every key forwards to Beam's distribution of that name."""

    def get(self, key: Any, default: Any = None) -> Any:
        return _ForwardingDistribution(
            beam.metrics.Metrics.distribution(key.metric.namespace, key.metric.name)
        )

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _MetricsBridge:
    """Collects a bundle's millstream metric updates and reports them to Beam's metrics."""

    def __init__(self) -> None:
        self.container = self._container()

    @staticmethod
    def _container() -> ms_metrics.MetricsContainer:
        c = ms_metrics.MetricsContainer()
        c.distributions = _ForwardingDistributions()
        return c

    def enter(self) -> None:
        ms_metrics.set_current_container(self.container)

    def flush(self) -> None:
        c = self.container
        for key, n in c.counters.items():
            beam.metrics.Metrics.counter(key.metric.namespace, key.metric.name).inc(n)
        for key, gauge in c.gauges.items():
            beam.metrics.Metrics.gauge(key.metric.namespace, key.metric.name).set(gauge.value)
        self.container = self._container()
        ms_metrics.set_current_container(self.container)


# ------------------------------------------------------------------------------------------------------
# State and timers


class _TimerProxy:
    """A Beam timer that accepts millstream times (`Timestamp`, seconds)."""

    __slots__ = ("_timer",)

    def __init__(self, timer: Any) -> None:
        self._timer = timer

    def set(self, timestamp: Any, dynamic_timer_tag: str = "", output_timestamp: Any = None) -> None:
        """Set the timer to fire at `timestamp`. Beam Python's timers take no output timestamp, so on Beam's
        runners a processing-time timer holds the watermark at the setting element's timestamp, as Beam's own
        do, whatever `output_timestamp` says (a limit of Beam's Python SDK; docs/runners.md)."""
        self._timer.set(to_beam_timestamp(timestamp), dynamic_timer_tag=dynamic_timer_tag)

    def clear(self, dynamic_timer_tag: str = "") -> None:
        """Clear the timer."""
        self._timer.clear(dynamic_timer_tag=dynamic_timer_tag)


class _OrderedListProxy:
    """Beam's ordered-list state with millstream's sort keys: Beam sorts on its own `Timestamp` only, and
    millstream's and Beam's timestamps do not compare with each other, so keys are converted both ways."""

    __slots__ = ("_state",)

    def __init__(self, state: Any) -> None:
        self._state = state

    @staticmethod
    def _from_beam(pairs: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Timestamp, Any]]:
        return ((to_ms_timestamp(ts), value) for ts, value in pairs)

    def add(self, value: tuple[Any, Any]) -> None:
        """Add a ``(timestamp, value)`` pair."""
        if not isinstance(value, tuple) or len(value) != 2:
            raise TypeError(f"OrderedListState.add takes a (timestamp, value) pair, got {value!r}")
        self._state.add((to_beam_timestamp(value[0]), value[1]))

    def read(self) -> Iterable[tuple[Timestamp, Any]]:
        """Every pair, in timestamp order."""
        return self._from_beam(self._state.read())

    def read_range(self, min_timestamp: Any, limit_timestamp: Any) -> Iterable[tuple[Timestamp, Any]]:
        """The pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        return self._from_beam(
            self._state.read_range(to_beam_timestamp(min_timestamp), to_beam_timestamp(limit_timestamp))
        )

    def clear_range(self, min_timestamp: Any, limit_timestamp: Any) -> None:
        """Remove the pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        self._state.clear_range(to_beam_timestamp(min_timestamp), to_beam_timestamp(limit_timestamp))

    def clear(self) -> None:
        """Remove every pair."""
        self._state.clear()


class BeamCombineFn(beam.CombineFn):
    """A millstream CombineFn (or `_BoundCombineFn`) as a Beam CombineFn."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def setup(self, *args: Any, **kwargs: Any) -> None:
        setup = getattr(type(self.fn), "setup", None)
        if setup is not None and setup is not CombineFn.__dict__.get("setup"):
            self.fn.setup()

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn.create_accumulator()

    def add_input(self, mutable_accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        return self.fn.add_input(mutable_accumulator, element)

    def merge_accumulators(self, accumulators: Any, *args: Any, **kwargs: Any) -> Any:
        return self.fn.merge_accumulators(list(accumulators))

    def compact(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        return self.fn.compact(accumulator) if hasattr(self.fn, "compact") else accumulator

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        return self.fn.extract_output(accumulator)

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        teardown = getattr(self.fn, "teardown", None)
        if teardown is not None:
            teardown()

    def default_label(self) -> str:
        return str(self.fn.default_label())


_PICKLE_CODER = beam.coders.PickleCoder()


def _beam_state_spec(spec: Any) -> Any:
    """A millstream StateSpec as Beam's (values pickled: millstream keeps Python objects)."""
    name = spec.name
    if isinstance(spec, ms_userstate.CombiningValueStateSpec):
        return beam_userstate.CombiningValueStateSpec(name, _PICKLE_CODER, BeamCombineFn(spec.combine_fn))
    for ms_cls, beam_cls in (
        (ms_userstate.BagStateSpec, beam_userstate.BagStateSpec),
        (ms_userstate.SetStateSpec, beam_userstate.SetStateSpec),
        (ms_userstate.ReadModifyWriteStateSpec, beam_userstate.ReadModifyWriteStateSpec),
        (ms_userstate.OrderedListStateSpec, beam_userstate.OrderedListStateSpec),
    ):
        if isinstance(spec, ms_cls):
            return beam_cls(name, _PICKLE_CODER)
    raise UntranslatableError(f"state spec {spec!r} has no Beam counterpart")


# ------------------------------------------------------------------------------------------------------
# Parameters

#: millstream marker name -> (Beam parameter, conversion of the value Beam passes).
_SIMPLE_PARAMS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "ElementParam": (beam.DoFn.ElementParam, lambda v: v),
    "TimestampParam": (beam.DoFn.TimestampParam, to_ms_timestamp),
    # millstream-internal: a processing-time timer's fire time stands for the processing time on Beam
    "ProcessingTimeParam": (beam.DoFn.TimestampParam, to_ms_timestamp),
    "WindowParam": (beam.DoFn.WindowParam, to_ms_window),
    "PaneInfoParam": (beam.DoFn.PaneInfoParam, to_ms_pane),
    "KeyParam": (beam.DoFn.KeyParam, lambda v: v),
    "BundleFinalizerParam": (beam.DoFn.BundleFinalizerParam, lambda v: v),
}


class _Specs:
    """The Beam state and timer specs standing for one DoFn's millstream specs."""

    def __init__(self) -> None:
        self.states: dict[int, Any] = {}
        self.timers: dict[int, Any] = {}

    def state(self, spec: Any) -> Any:
        if id(spec) not in self.states:
            self.states[id(spec)] = _beam_state_spec(spec)
        return self.states[id(spec)]

    def timer(self, spec: Any) -> Any:
        if id(spec) not in self.timers:
            self.timers[id(spec)] = beam_userstate.TimerSpec(
                spec.name.removeprefix(spec.prefix), spec.time_domain
            )
        return self.timers[id(spec)]


def _same(value: Any) -> Any:
    return value


def _plan(
    markers: dict[str, Any], specs: _Specs, where: str, dofn: Any = None
) -> list[tuple[str, Any, Callable[[Any], Any]]]:
    """(argument name, Beam parameter, conversion) for each millstream marker of a method (of `dofn`)."""
    plan = []
    for arg, marker in markers.items():
        if marker.name in _SIMPLE_PARAMS:
            param, conv = _SIMPLE_PARAMS[marker.name]
            plan.append((arg, param, conv))
        elif marker.name == "StateParam":
            ordered = isinstance(marker.spec, ms_userstate.OrderedListStateSpec)
            plan.append(
                (arg, beam.DoFn.StateParam(specs.state(marker.spec)), _OrderedListProxy if ordered else _same)
            )
        elif marker.name == "TimerParam":
            plan.append((arg, beam.DoFn.TimerParam(specs.timer(marker.spec)), _TimerProxy))
        elif marker.name == "RestrictionParam":
            # Beam runs the restrictions (split, checkpointed, resumed); the user code claims through Beam's
            # thread-safe tracker, which delegates to the user's own
            provider = provider_of(marker, dofn)
            plan.append((arg, beam.DoFn.RestrictionParam(BeamRestrictionProvider(provider)), _same))
        elif marker.name == "WatermarkEstimatorParam":
            # Beam holds the output watermark with the estimator's and keeps its state with residuals; the user
            # code sets/reads its own estimator, which Beam's delegates to
            provider = estimator_provider(marker, dofn, where)
            beam_provider = BeamWatermarkEstimatorProvider(provider, to_beam_timestamp, to_ms_timestamp)
            plan.append((arg, beam.DoFn.WatermarkEstimatorParam(beam_provider), user_estimator))
        else:
            raise UntranslatableError(
                f"{where}: DoFn.{marker.name} has no Beam counterpart in the translation"
            )
    return plan


def _signature(plan: list[tuple[str, Any, Any]], element: bool, var_keyword: bool) -> inspect.Signature:
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    if element:
        params.append(P("element", P.POSITIONAL_OR_KEYWORD))
    params += [P(f"_p{i}", P.POSITIONAL_OR_KEYWORD, default=param) for i, (_, param, _) in enumerate(plan)]
    if var_keyword:
        params.append(P("kwargs", P.VAR_KEYWORD))
    return inspect.Signature(params)


#: Prefix of the keyword side inputs / extra arguments that stand for the user's positional arguments.
_POSITIONAL = "_ms_arg"


def split_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The user's extra arguments as keywords only (positional ones renamed), so Beam's parameters come first."""
    out = {f"{_POSITIONAL}{i}": a for i, a in enumerate(args)}
    out.update(kwargs)
    return out


def _join_arguments(kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    positional: list[tuple[int, Any]] = []
    keywords: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name.startswith(_POSITIONAL):
            positional.append((int(name[len(_POSITIONAL) :]), value))
        else:
            keywords[name] = value
    return [v for _, v in sorted(positional)], keywords


# ------------------------------------------------------------------------------------------------------
# The wrapper


class _WrapperBase(beam.DoFn):
    """Lifecycle and bundle handling shared by every generated wrapper class."""

    _ms_plan: list[tuple[str, Any, Callable[[Any], Any]]] = []
    _ms_async = False

    def __init__(self, fn: Any, concurrency: int, label: str) -> None:
        super().__init__()
        self._fn = fn
        self._concurrency = max(1, concurrency)
        self._label = label
        self._bridge: _MetricsBridge | None = None
        self._pending: list[tuple[Any, BeamTimestamp, Any, dict[str, Any], list[Any], dict[str, Any]]] = []

    def __reduce__(self) -> Any:
        # The class is generated per DoFn; workers regenerate it instead of unpickling it by value.
        return (wrap_dofn, (self._fn, self._concurrency, self._label))

    def default_label(self) -> str:
        return self._label

    def _enter(self) -> _MetricsBridge:
        if self._bridge is None:
            self._bridge = _MetricsBridge()
        self._bridge.enter()
        ms_metrics.set_current_step(self._label)
        return self._bridge

    def setup(self) -> None:
        self._enter()
        self._fn.setup()

    def start_bundle(self) -> None:
        self._enter()
        self._fn.start_bundle()

    def finish_bundle(self) -> Any:
        bridge = self._enter()
        out: list[Any] = []
        if self._pending:
            out += self._drain_async()
        result = self._fn.finish_bundle()
        if result is not None:
            out += list(_outputs(result))
        bridge.flush()
        return out or None

    def teardown(self) -> None:
        self._fn.teardown()

    def _call(self, element: Any, params: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Beam passes some parameters by keyword (_p0, ...: a splittable DoFn's restriction), the rest by position
        plan = self._ms_plan
        values = list(params) + [
            kwargs.pop(f"_p{i}") for i in range(len(params), len(plan)) if f"_p{i}" in kwargs
        ]
        call_kwargs = {arg: conv(v) for (arg, _, conv), v in zip(plan, values)}
        args, keywords = _join_arguments(kwargs)
        keywords.update(call_kwargs)
        return args, keywords

    def _drain_async(self) -> list[Any]:
        pending, self._pending = self._pending, []
        fn, limit = self._fn, self._concurrency

        async def one(sem: asyncio.Semaphore, item: Any) -> list[Any]:
            element, ts, windows, _, args, keywords = item
            async with sem:
                result = fn.process(element, *args, **keywords)
                if inspect.isasyncgen(result):
                    values = [v async for v in result]
                else:
                    values = await result
                    values = [] if values is None else list(values)
            out = []
            for v in values:
                v = to_beam_output(v)
                tag = None
                if isinstance(v, beam.pvalue.TaggedOutput):
                    tag, v = v.tag, v.value
                if isinstance(v, BeamTimestampedValue):
                    wv = BeamWindowedValue(v.value, v.timestamp, windows)
                else:
                    wv = BeamWindowedValue(v, ts, windows)
                out.append(beam.pvalue.TaggedOutput(tag, wv) if tag is not None else wv)
            return out

        async def run_all() -> list[list[Any]]:
            sem = asyncio.Semaphore(limit)
            return list(await asyncio.gather(*(one(sem, item) for item in pending)))

        return [v for chunk in asyncio.run(run_all()) for v in chunk]


def _make_process(is_async: bool) -> Callable[..., Any]:
    if is_async:

        def process_async(self: Any, element: Any, ts: Any, window: Any, *params: Any, **kwargs: Any) -> None:
            self._enter()
            args, keywords = self._call(element, params, kwargs)
            self._pending.append((element, ts, (window,), {}, args, keywords))

        return process_async

    def process(self: Any, element: Any, *params: Any, **kwargs: Any) -> Any:
        self._enter()
        args, keywords = self._call(element, params, kwargs)
        if self._ms_element_kw is not None:  # `process(self, element=DoFn.ElementParam, ...)`
            keywords[self._ms_element_kw] = element
            return _outputs(self._fn.process(*args, **keywords))
        return _outputs(self._fn.process(element, *args, **keywords))

    return process


def _make_timer_callback(
    method_name: str, plan: list[tuple[str, Any, Callable[[Any], Any]]]
) -> Callable[..., Any]:
    def callback(self: Any, *params: Any, **named: Any) -> Any:
        self._enter()
        # Beam passes a timer callback's parameters by keyword (_p0, _p1, ...), process's by position
        values = list(params) + [named[f"_p{i}"] for i in range(len(params), len(plan))]
        kwargs = {arg: conv(v) for (arg, _, conv), v in zip(plan, values)}
        return _outputs(getattr(self._fn, method_name)(**kwargs))

    return callback


def wrap_dofn(fn: DoFn, concurrency: int, label: str | None = None) -> beam.DoFn:
    """A Beam DoFn running the millstream DoFn `fn` (see the module docstring)."""
    label = label or fn.default_label()
    if isinstance(fn, SplittableDoFnRunner):  # Beam runs the restrictions itself: wrap the user's DoFn
        fn = fn.fn
    markers = dict(fn.markers) if isinstance(fn, CallableWrapperDoFn) else param_markers(fn.process)
    is_async = (
        bool(getattr(fn, "is_async", False))
        or inspect.iscoroutinefunction(fn.process)
        or inspect.isasyncgenfunction(fn.process)
    )
    # Beam gives the element positionally; a DoFn declaring it as `element=DoFn.ElementParam` gets it by keyword
    element_kw = next((arg for arg, m in markers.items() if m.name == "ElementParam"), None)
    if element_kw is not None and not is_async:
        del markers[element_kw]
    else:
        element_kw = None
    specs = _Specs()
    plan = _plan(markers, specs, f"step '{label}'", fn)
    attrs: dict[str, Any] = {
        "_ms_plan": plan,
        "_ms_async": is_async,
        "_ms_element_kw": element_kw,
        "__module__": __name__,
    }
    process = _make_process(is_async)
    if is_async:
        # the timestamp and window of each element are needed to emit its outputs at the end of the bundle
        P = inspect.Parameter
        sig = _signature(plan, element=True, var_keyword=True)
        extra = [
            P("_ts", P.POSITIONAL_OR_KEYWORD, default=beam.DoFn.TimestampParam),
            P("_window", P.POSITIONAL_OR_KEYWORD, default=beam.DoFn.WindowParam),
        ]
        params = list(sig.parameters.values())
        process.__signature__ = sig.replace(parameters=params[:2] + extra + params[2:])  # type: ignore[attr-defined]
    else:
        process.__signature__ = _signature(plan, element=True, var_keyword=True)  # type: ignore[attr-defined]
    attrs["process"] = process
    if not isinstance(fn, CallableWrapperDoFn):
        _, timers = ms_userstate.get_dofn_specs(fn)
        for i, spec in enumerate(sorted(timers, key=lambda t: t.name)):
            user_method = spec._attached_callback
            if user_method is None:
                raise UntranslatableError(f"step '{label}': timer {spec!r} has no @on_timer callback")
            timer_plan = _plan(param_markers(getattr(fn, user_method.__name__)), specs, f"step '{label}'")
            name = f"_ms_on_timer_{i}"
            cb = _make_timer_callback(user_method.__name__, timer_plan)
            cb.__name__ = cb.__qualname__ = name
            cb.__signature__ = _signature(timer_plan, element=False, var_keyword=False)  # type: ignore[attr-defined]
            attrs[name] = beam_userstate.on_timer(specs.timer(spec))(cb)
    cls = type(f"Beam[{type(fn).__name__}]", (_WrapperBase,), attrs)
    return cls(fn, concurrency, label)


__all__ = [
    "BeamCombineFn",
    "UntranslatableError",
    "split_arguments",
    "to_beam_micros",
    "to_beam_output",
    "to_beam_timestamp",
    "to_beam_window",
    "to_ms_micros",
    "to_ms_pane",
    "to_ms_timestamp",
    "to_ms_window",
    "wrap_dofn",
]
