"""Splittable DoFns (Beam's `RestrictionProvider` and `DoFn.RestrictionParam`), run one restriction at a time.

A DoFn whose `process` declares ``tracker=DoFn.RestrictionParam(provider)`` is run, for each element, as Beam's
SDK runs it without dynamic splitting: ``initial_restriction(element)`` -> ``split(element, restriction)`` ->
for every part, ``process(element, tracker=create_tracker(part))`` to the end, then ``tracker.check_done()``
(every position claimed, or a claim refused past the end). Nothing is split while a restriction is processed
and a restriction is not checkpointed part-way: a restored run processes the element again from its initial
restriction (issue 14). ``defer_remainder`` (resuming later, for polling sources) is not supported and says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from millstream.engine.model.dofn import DoFn, WindowedValue, param_markers, provider_of, require_methods
from millstream.engine.model.io import ProcessingTimeReader
from millstream.engine.model.pvalue import TaggedOutput
from millstream.engine.model.timestamp import Timestamp, TimestampedValue
from millstream.engine.model.watermark_estimators import check_watermark_estimator_param, estimator_provider


class RestrictionProvider:
    """Creates and splits the restrictions of a splittable DoFn (Beam's ``transforms.core.RestrictionProvider``).

    Subclasses implement `initial_restriction` and `create_tracker`; the rest have Beam's defaults.
    """

    def initial_restriction(self, element: Any) -> Any:
        """The whole restriction of `element` (e.g. ``OffsetRange(0, size)``)."""
        raise NotImplementedError(f"{type(self).__name__}.initial_restriction")

    def create_tracker(self, restriction: Any) -> Any:
        """A RestrictionTracker for `restriction`."""
        raise NotImplementedError(f"{type(self).__name__}.create_tracker")

    def split(self, element: Any, restriction: Any) -> Iterator[Any]:
        """Parts of `restriction` to process separately (default: the restriction itself)."""
        yield restriction

    def restriction_size(self, element: Any, restriction: Any) -> float:
        """The size of `restriction` (Beam uses it to balance work; millstream only reports it)."""
        raise NotImplementedError(f"{type(self).__name__}.restriction_size")

    def split_and_size(self, element: Any, restriction: Any) -> Iterator[tuple[Any, float]]:
        """(part, size) for every part of `split`."""
        for part in self.split(element, restriction):
            yield part, self.restriction_size(element, part)

    def truncate(self, element: Any, restriction: Any) -> Any:
        """The restriction to finish when draining: all of a bounded one (None: nothing)."""
        if self.create_tracker(restriction).is_bounded():
            return restriction
        return None

    def restriction_coder(self) -> Any:
        """The coder of restrictions (pickling by default)."""
        from millstream.engine.model.coders import PickleCoder

        return PickleCoder()


def restriction_param_name(fn: Any) -> str | None:
    """The name of `fn.process`'s RestrictionParam argument, or None when the DoFn is not splittable."""
    process = getattr(fn, "process", None)
    if process is None:
        return None
    names = [name for name, m in param_markers(process).items() if m.name == "RestrictionParam"]
    if len(names) > 1:
        raise ValueError(f"{type(fn).__name__}.process declares more than one RestrictionParam: {names}")
    return names[0] if names else None


class TrackerView:
    """What a splittable `process` sees of its tracker (Beam's RestrictionTrackerView): claims, the current
    restriction and progress; `defer_remainder` fails clearly, since millstream finishes each restriction."""

    def __init__(self, tracker: Any, label: str) -> None:
        self._tracker = tracker
        self._label = label

    def current_restriction(self) -> Any:
        """The restriction being processed."""
        return self._tracker.current_restriction()

    def try_claim(self, position: Any) -> bool:
        """Claim `position`; when False, `process` must return."""
        return bool(self._tracker.try_claim(position))

    def current_progress(self) -> Any:
        """The tracker's progress."""
        return self._tracker.current_progress()

    def is_bounded(self) -> bool:
        """Whether the restriction is finite."""
        return bool(self._tracker.is_bounded())

    def defer_remainder(self, deferred_time: Any = None) -> None:
        """Not supported: millstream processes every restriction to its end (issue 14)."""
        raise NotImplementedError(
            f"{self._label}: defer_remainder (resuming a restriction later) is not supported by millstream, "
            "which processes each restriction to completion (issue 14); claim every position instead"
        )


#: what the runner calls on a restriction tracker (Beam's RestrictionTracker interface)
_TRACKER_METHODS = ("current_restriction", "try_claim", "check_done")


class SplittableDoFnRunner(DoFn):
    """Runs a splittable DoFn: every element's restrictions, each processed to the end with its tracker.

    `process` has the user's signature minus the RestrictionParam, so the runtime supplies the other
    parameters (timestamp, window, ...) as for any DoFn. Other attributes are the user DoFn's.
    """

    #: the keyword the runner adds to the signature so that the runtime passes each element's timestamp
    #: (the timestamp of outputs that carry none, which the watermark estimator observes)
    _TIMESTAMP_KW = "_splittable_element_timestamp"

    def __init__(self, fn: DoFn, param: str) -> None:
        self.fn = fn
        self.param = param
        where = f"ParDo({type(fn).__name__})"
        markers = param_markers(fn.process)
        check_watermark_estimator_param(markers, where)
        marker = markers[param]
        provider = provider_of(marker, fn)
        require_methods(
            provider,
            ("initial_restriction", "create_tracker"),
            "DoFn.RestrictionParam needs a RestrictionProvider: it",
            where,
            "pass one, or make the DoFn itself a RestrictionProvider",
        )
        self.provider: Any = provider
        estimators = [name for name, m in markers.items() if m.name == "WatermarkEstimatorParam"]
        self.estimator_param: str | None = estimators[0] if estimators else None
        self.estimator_provider: Any = (
            estimator_provider(markers[self.estimator_param], fn, where) if self.estimator_param else None
        )
        self._clock: Any = None
        sig = inspect.signature(fn.process)
        taken = {param, self.estimator_param}
        params = [p for name, p in sig.parameters.items() if name not in taken]
        if self.estimator_param is not None:
            # keyword-only, placed before a **kwargs if there is one (a signature's order rule)
            extra = inspect.Parameter(
                self._TIMESTAMP_KW, inspect.Parameter.KEYWORD_ONLY, default=DoFn.TimestampParam
            )
            at = next(
                (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params)
            )
            params.insert(at, extra)

        def process(element: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            return self._process(element, args, kwargs)

        process.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        self.process = process  # type: ignore[method-assign]

    def use_clock(self, clock: Any) -> None:
        """The job's processing-time clock, handed to estimators that read one (``WalltimeWatermarkEstimator``)."""
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        # the user's own attributes (pipeline visitors set them, e.g. `transform.fn.file_to_read`)
        if name in ("fn", "param", "provider", "estimator_param", "estimator_provider", "_clock"):
            raise AttributeError(name)
        return getattr(self.fn, name)

    def _process(self, element: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any]:
        label = type(self.fn).__name__
        element_ts = kwargs.pop(self._TIMESTAMP_KW, None)
        restriction = self.provider.initial_restriction(element)
        for part in self.provider.split(element, restriction):
            tracker = self.provider.create_tracker(part)
            require_methods(tracker, _TRACKER_METHODS, "a RestrictionTracker", f"ParDo({label})")
            call = {**kwargs, self.param: TrackerView(tracker, label)}
            estimator = None
            if self.estimator_param is not None:
                estimator = self._new_estimator(element, part)
                call[self.estimator_param] = estimator
            # the restriction ends inside this call, so its estimator never holds the step's output
            # watermark locally (a hold matters only to a restriction resumed later: issue 14)
            result = self.fn.process(element, *args, **call)
            if result is not None:
                if estimator is None:
                    yield from result
                else:
                    for out in result:
                        estimator.observe_timestamp(_output_timestamp(out, element_ts))
                        yield out
            tracker.check_done()  # Beam's trackers all have it: a restriction left unclaimed is an error

    def _new_estimator(self, element: Any, restriction: Any) -> Any:
        provider = self.estimator_provider
        estimator = provider.create_watermark_estimator(
            provider.initial_estimator_state(element, restriction)
        )
        if isinstance(estimator, ProcessingTimeReader):
            if self._clock is None:
                raise RuntimeError(
                    f"ParDo({type(self.fn).__name__}): its watermark estimator reads processing time, but the "
                    "step was given no clock (the runtime hands over the job's clock when it plans the step)"
                )
            estimator.use_clock(self._clock)
        return estimator

    def default_label(self) -> str:
        """The user DoFn's label."""
        return self.fn.default_label()

    def setup(self) -> None:
        """The user DoFn's setup."""
        self.fn.setup()

    def start_bundle(self) -> None:
        """The user DoFn's start_bundle."""
        self.fn.start_bundle()

    def finish_bundle(self) -> Any:
        """The user DoFn's finish_bundle."""
        return self.fn.finish_bundle()

    def teardown(self) -> None:
        """The user DoFn's teardown."""
        self.fn.teardown()


def _output_timestamp(out: Any, element_ts: Any) -> Any:
    """The timestamp an output of `process` will carry: its own, else the element's (Beam's rule)."""
    if type(out) is TaggedOutput:
        out = out.value
    if isinstance(out, (TimestampedValue, WindowedValue)):
        return Timestamp(micros=out.micros)
    return element_ts


def runnable(fn: DoFn) -> DoFn:
    """`fn`, or the runner of a splittable `fn` (one with a RestrictionParam)."""
    param = restriction_param_name(fn)
    return fn if param is None else SplittableDoFnRunner(fn, param)


__all__ = ["RestrictionProvider", "SplittableDoFnRunner", "TrackerView", "restriction_param_name", "runnable"]
