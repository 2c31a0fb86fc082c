"""`DoFn` and its parameter markers (Beam's `DoFn.TimestampParam`, `WindowParam`, ...)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class _DoFnParam:
    """A marker given as a default argument of `process` to ask the runtime for a value."""

    def __init__(self, name: str, spec: Any = None) -> None:
        self.name = name
        self.spec = spec

    def __call__(self, spec: Any = None) -> _DoFnParam:
        return _DoFnParam(self.name, spec)

    def __repr__(self) -> str:
        return f"DoFn.{self.name}" + (f"({self.spec!r})" if self.spec is not None else "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DoFnParam) and other.name == self.name and other.spec is self.spec

    def __hash__(self) -> int:
        return hash((self.name, id(self.spec)))


class _ContextParam(_DoFnParam):
    """A context manager's value as a `process` argument (Beam's `DoFn.SetupContextParam` and
    `BundleContextParam`): the runtime builds and enters `context_manager_constructor(*args, **kwargs)` once per
    DoFn instance (setup) or per bundle, and exits it at teardown or the bundle's end."""

    scope = ""

    def __init__(
        self,
        context_manager_constructor: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        kind = type(self).__name__.strip("_")
        if not callable(context_manager_constructor) or hasattr(context_manager_constructor, "__enter__"):
            # a constructed (one-shot) context manager cannot be entered once per setup or bundle
            raise TypeError(
                f"{kind} needs a context manager constructor, not a context manager: write "
                f"{kind}(tempfile.TemporaryDirectory, args=(...)), not {kind}(tempfile.TemporaryDirectory(...))"
            )
        super().__init__(kind, None)
        self.spec = self  # each marker is its own (identity decides equality)
        self.label = name
        self.context_manager_constructor = context_manager_constructor
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})

    def create_and_enter(self) -> tuple[Any, Any]:
        """A new context manager and the value its `__enter__` returned."""
        cm = self.context_manager_constructor(*self.args, **self.kwargs)
        return cm, cm.__enter__()

    def __repr__(self) -> str:
        return f"DoFn.{self.name}({self.context_manager_constructor!r})"


class _SetupContextParam(_ContextParam):
    """Entered once per DoFn instance (at setup), exited at teardown.

    >>> import contextlib
    >>> DoFn.SetupContextParam(contextlib.nullcontext, args=(42,)).create_and_enter()[1]
    42
    """


class _BundleContextParam(_ContextParam):
    """Entered at the start of each bundle, exited at its end (like start_bundle/finish_bundle)."""


class DoFn:
    """Per-element processing: setup, start_bundle, process, finish_bundle, teardown (Beam's DoFn)."""

    ElementParam = _DoFnParam("ElementParam")
    TimestampParam = _DoFnParam("TimestampParam")
    WindowParam = _DoFnParam("WindowParam")
    PaneInfoParam = _DoFnParam("PaneInfoParam")
    KeyParam = _DoFnParam("KeyParam")
    StateParam = _DoFnParam("StateParam")
    TimerParam = _DoFnParam("TimerParam")
    SideInputParam = _DoFnParam("SideInputParam")
    WatermarkEstimatorParam = _DoFnParam("WatermarkEstimatorParam")
    BundleFinalizerParam = _DoFnParam("BundleFinalizerParam")
    #: ``tracker=DoFn.RestrictionParam(provider)`` makes a DoFn splittable (`splittable.py`); without a provider
    #: the DoFn itself is the RestrictionProvider.
    RestrictionParam = _DoFnParam("RestrictionParam")
    SetupContextParam = _SetupContextParam
    BundleContextParam = _BundleContextParam

    def default_label(self) -> str:
        """The label of a ParDo using this DoFn."""
        return type(self).__name__

    def setup(self) -> None:
        """Called once per DoFn instance before any bundle."""

    def start_bundle(self) -> None:
        """Called before each bundle (one batch of elements)."""

    def process(self, element: Any, *args: Any, **kwargs: Any) -> Any:
        """Process one element; yield or return an iterable of outputs (may be `async def`)."""
        raise NotImplementedError(f"{type(self).__name__}.process")

    def finish_bundle(self) -> Any:
        """Called after each bundle; may yield WindowedValues."""

    def teardown(self) -> None:
        """Called once when the DoFn instance is discarded."""

    def process_batch(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        """Process a whole batch (a list, numpy array or pyarrow array, by the batch parameter's type hint) of
        elements sharing one timestamp and window; yield output batches (or elements, under
        `yields_elements`). Defined instead of, or beside, `process` (Beam's batched DoFns):

        >>> import numpy as np, millstream as beam
        >>> from collections.abc import Iterator
        >>> class Double(beam.DoFn):
        ...     def process_batch(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        ...         yield batch * 2
        >>> with beam.Pipeline() as p:
        ...     _ = p | beam.Create([1, 2, 3]) | beam.ParDo(Double()) | beam.Map(print)
        2
        4
        6
        """
        raise NotImplementedError(f"{type(self).__name__}.process_batch")

    @staticmethod
    def yields_batches(fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: this `process` yields batches (of the DoFn's output batch type), not elements."""
        fn._millstream_yields = "batches"  # type: ignore[attr-defined]
        return fn

    @staticmethod
    def yields_elements(fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: this `process_batch` yields elements, not batches."""
        fn._millstream_yields = "elements"  # type: ignore[attr-defined]
        return fn

    def get_input_batch_type(self, input_element_type: Any = None) -> Any:
        """The batch type `process_batch` takes: its batch parameter's annotation (None without one)."""
        from millstream.engine.model.batch import first_param_hint

        if type(self).process_batch is DoFn.process_batch:
            return None
        return first_param_hint(self.process_batch)

    def get_output_batch_type(self, input_element_type: Any = None) -> Any:
        """The batch type this DoFn yields: from `process_batch`'s (or a `yields_batches` `process`'s)
        ``Iterator[B]`` return annotation, else the input batch type."""
        from millstream.engine.model.batch import yielded_hint, yields

        if type(self).process_batch is not DoFn.process_batch and yields(self.process_batch) != "elements":
            return yielded_hint(self.process_batch) or self.get_input_batch_type(input_element_type)
        if yields(self.process) == "batches":
            return yielded_hint(self.process)
        return None

    @staticmethod
    def unbounded_per_element() -> Callable[[Any], Any]:
        """Beam's decorator of a splittable DoFn's `process` whose restrictions may never end (a polling
        source): the ParDo's output is an unbounded PCollection (``is_bounded`` False), as in Beam."""

        def mark(process: Any) -> Any:
            process.unbounded_per_element = True
            return process

        return mark


def param_markers(fn: Callable[..., Any]) -> dict[str, _DoFnParam]:
    """The DoFn parameter markers a callable declares as defaults, by argument name."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in sig.parameters.items() if isinstance(p.default, _DoFnParam)}


def provider_of(marker: Any, fn: Any) -> Any:
    """The provider a `DoFn.RestrictionParam` / `DoFn.WatermarkEstimatorParam` names, or the DoFn itself when
    it names none (Beam's rule)."""
    return marker.spec if marker.spec is not None else fn


def require_methods(obj: Any, methods: tuple[str, ...], what: str, where: str, hint: str = "") -> None:
    """Refuse `obj` unless it has every one of `methods` (the duck-typed interfaces of Beam's splittable DoFns
    and legacy IO, which user classes need not inherit): the error names the step, what was expected of which
    class, and what it lacks; `hint` says how to fix it."""
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise TypeError(
            f"{where}: {what} needs {', '.join(methods)}; {type(obj).__name__} lacks {', '.join(missing)}"
            + (f"; {hint}" if hint else "")
        )


def is_async_callable(fn: Any) -> bool:
    """True for `async def` functions and async generator functions."""
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


class WindowedValue:
    """A value with its timestamp, windows and pane (Beam's `apache_beam.utils.windowed_value`)."""

    __slots__ = ("value", "micros", "windows", "pane_info")

    def __init__(self, value: Any, timestamp: Any, windows: Any, pane_info: Any = None) -> None:
        from millstream.engine.model.timestamp import to_micros

        self.value = value
        self.micros = to_micros(timestamp)
        self.windows = tuple(windows)
        self.pane_info = pane_info

    @property
    def timestamp(self) -> Any:
        """The timestamp as a Timestamp."""
        from millstream.engine.model.timestamp import Timestamp

        return Timestamp(micros=self.micros)

    def __repr__(self) -> str:
        return f"WindowedValue({self.value!r}, {self.micros}, {self.windows!r})"
