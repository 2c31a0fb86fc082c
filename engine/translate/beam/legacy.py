"""Beam's legacy IO and splittable DoFns written against millstream's classes, as ``apache_beam``'s own objects.

A user's `BoundedSource` (``millstream.io.iobase``) is wrapped in a Beam ``BoundedSource`` read by Beam's
``Read``: Beam splits it into bundles, asks it for range trackers, which are Beam ``RangeTracker``s delegating
to the user's, and dynamic splits reach the user's tracker. The user's ``read`` gets back its own tracker. A
legacy `Sink` is wrapped in a Beam ``Sink`` written by Beam's ``Write`` (initialize, a writer per bundle,
pre-finalize, finalize). A splittable DoFn's `RestrictionProvider` becomes a Beam ``RestrictionProvider`` whose
trackers are Beam ``RestrictionTracker``s delegating to the user's, so Beam splits and checkpoints the
restrictions itself. A ``DoFn.WatermarkEstimatorParam``'s provider becomes a Beam ``WatermarkEstimatorProvider``
whose estimators delegate to the user's, converting timestamps at the edge; the user's `process` gets its own
estimator back.

>>> from millstream.engine.model.restriction_trackers import OffsetRange, OffsetRestrictionTracker
>>> t = BeamRestrictionTracker(OffsetRestrictionTracker(OffsetRange(0, 4)))
>>> t.try_claim(0), t.current_progress().fraction_completed
(True, 0.25)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import iobase as beam_iobase
from apache_beam.transforms import core as beam_core

from millstream.engine.model.io import ProcessingTimeReader


class BeamRangeTracker(beam_iobase.RangeTracker):
    """A Beam RangeTracker delegating to a millstream one (``inner``), so Beam's Read can split the bundle."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def start_position(self) -> Any:
        """The user tracker's start."""
        return self.inner.start_position()

    def stop_position(self) -> Any:
        """The user tracker's stop."""
        return self.inner.stop_position()

    def try_claim(self, position: Any) -> bool:
        """The user tracker's claim."""
        return bool(self.inner.try_claim(position))

    def set_current_position(self, position: Any) -> None:
        """The user tracker's position (for records that are not split points)."""
        self.inner.set_current_position(position)

    def position_at_fraction(self, fraction: float) -> Any:
        """Where the user tracker puts `fraction` of its range."""
        return self.inner.position_at_fraction(fraction)

    def try_split(self, position: Any) -> Any:
        """The user tracker's split at `position` (None: refused)."""
        return self.inner.try_split(position)

    def fraction_consumed(self) -> float:
        """The user tracker's progress."""
        return float(self.inner.fraction_consumed())

    def split_points(self) -> tuple[Any, Any]:
        """The user tracker's split points."""
        return tuple(self.inner.split_points())  # type: ignore[return-value]

    def set_split_points_unclaimed_callback(self, callback: Any) -> None:
        """Passed to the user tracker."""
        self.inner.set_split_points_unclaimed_callback(callback)


class BeamBoundedSource(beam_iobase.BoundedSource):
    """A millstream (legacy-API) BoundedSource as Beam's: bundles, trackers and records are the user's."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def estimate_size(self) -> int | None:
        """The user source's estimate (None when it has none)."""
        try:
            size = self.source.estimate_size()
        except NotImplementedError:
            return None
        return None if size is None else int(size)

    def split(
        self, desired_bundle_size: int, start_position: Any = None, stop_position: Any = None
    ) -> Iterator[beam_iobase.SourceBundle]:
        """The user source's bundles, each source wrapped again."""
        for b in self.source.split(desired_bundle_size, start_position, stop_position):
            yield beam_iobase.SourceBundle(
                b.weight, BeamBoundedSource(b.source), b.start_position, b.stop_position
            )

    def get_range_tracker(self, start_position: Any, stop_position: Any) -> BeamRangeTracker:
        """The user source's tracker, seen by Beam as a Beam RangeTracker."""
        return BeamRangeTracker(self.source.get_range_tracker(start_position, stop_position))

    def read(self, range_tracker: Any) -> Iterator[Any]:
        """The user source's records, read with the user's own tracker."""
        inner = range_tracker.inner if isinstance(range_tracker, BeamRangeTracker) else range_tracker
        return iter(self.source.read(inner))

    def default_output_coder(self) -> Any:
        """Pickled values: millstream sources emit any Python object."""
        return beam.coders.PickleCoder()

    def display_data(self) -> dict[str, Any]:
        """The user source's class, for Beam's job graph."""
        return {"source": type(self.source).__name__}


class BeamWriter(beam_iobase.Writer):
    """A Beam Writer delegating to a millstream legacy Writer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, value: Any) -> None:
        """The user writer's write."""
        self.inner.write(value)

    def close(self) -> Any:
        """The user writer's result."""
        return self.inner.close()

    def at_capacity(self) -> bool:
        """The user writer's answer."""
        return bool(self.inner.at_capacity())


class BeamSink(beam_iobase.Sink):
    """A millstream legacy Sink as Beam's, for Beam's ``Write``."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def initialize_write(self) -> Any:
        """The user sink's initialization."""
        return self.sink.initialize_write()

    def open_writer(self, init_result: Any, uid: str) -> BeamWriter:
        """The user sink's writer for one Beam bundle."""
        return BeamWriter(self.sink.open_writer(init_result, uid))

    def pre_finalize(self, init_result: Any, writer_results: Any) -> list[Any]:
        """The user sink's pre-finalize, with every writer's result, as the one element Beam's ``Write`` emits
        and hands to `finalize_write` as a singleton (so the user's `finalize_write` gets its result as is)."""
        return [self.sink.pre_finalize(init_result, list(writer_results))]

    def finalize_write(self, init_result: Any, writer_results: Any, pre_finalize_result: Any) -> Any:
        """The user sink's finalize (a generator is run to the end, as locally)."""
        outputs = self.sink.finalize_write(init_result, list(writer_results), pre_finalize_result)
        return None if outputs is None else list(outputs)

    def display_data(self) -> dict[str, Any]:
        """The user sink's class, for Beam's job graph."""
        return {"sink": type(self.sink).__name__}


class BeamRestrictionTracker(beam_iobase.RestrictionTracker):
    """A Beam RestrictionTracker delegating to a millstream one (``inner``): Beam may split it while it runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def current_restriction(self) -> Any:
        """The user tracker's restriction."""
        return self.inner.current_restriction()

    def current_progress(self) -> beam_iobase.RestrictionProgress:
        """The user tracker's progress as Beam's."""
        progress = self.inner.current_progress()
        return beam_iobase.RestrictionProgress(
            completed=progress.completed_work, remaining=progress.remaining_work
        )

    def check_done(self) -> None:
        """The user tracker's check that the restriction was processed to its end."""
        self.inner.check_done()

    def try_split(self, fraction_of_remainder: float) -> Any:
        """The user tracker's split (None: refused)."""
        return self.inner.try_split(fraction_of_remainder)

    def try_claim(self, position: Any) -> bool:
        """The user tracker's claim."""
        return bool(self.inner.try_claim(position))

    def is_bounded(self) -> bool:
        """Whether the user's restriction is bounded."""
        return bool(self.inner.is_bounded())


class BeamRestrictionProvider(beam_core.RestrictionProvider):
    """A millstream RestrictionProvider as Beam's; its trackers are `BeamRestrictionTracker`s."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def initial_restriction(self, element: Any) -> Any:
        """The user provider's restriction for `element`."""
        return self.provider.initial_restriction(element)

    def create_tracker(self, restriction: Any) -> BeamRestrictionTracker:
        """The user provider's tracker, seen by Beam as a Beam RestrictionTracker."""
        return BeamRestrictionTracker(self.provider.create_tracker(restriction))

    def split(self, element: Any, restriction: Any) -> Iterator[Any]:
        """The user provider's parts."""
        return iter(self.provider.split(element, restriction))

    def restriction_size(self, element: Any, restriction: Any) -> float:
        """The user provider's size; without one, the total work its tracker reports (Beam needs a size)."""
        try:
            return float(self.provider.restriction_size(element, restriction))
        except NotImplementedError:
            return float(self.provider.create_tracker(restriction).current_progress().total_work)

    def truncate(self, element: Any, restriction: Any) -> Any:
        """The user provider's truncation when draining."""
        return self.provider.truncate(element, restriction)


class _WorkerClock:
    """Processing time on a Beam worker: its wall clock, as Beam's own ``WalltimeWatermarkEstimator`` reads."""

    def now_us(self) -> int:
        """The worker's wall-clock time in microseconds."""
        return time.time_ns() // 1000


class BeamWatermarkEstimator(beam_iobase.WatermarkEstimator):
    """A Beam WatermarkEstimator delegating to a millstream one (``inner``): Beam reads its watermark and tells
    it the outputs' timestamps (converted); the user's `process` reaches ``inner`` through `call_user`."""

    def __init__(self, inner: Any, to_beam: Callable[[Any], Any], to_ms: Callable[[Any], Any]) -> None:
        self.inner = inner
        self._to_beam = to_beam
        self._to_ms = to_ms
        if isinstance(inner, ProcessingTimeReader):
            inner.use_clock(_WorkerClock())

    def observe_timestamp(self, timestamp: Any) -> None:
        """The user estimator observes the output's timestamp, as millstream's."""
        self.inner.observe_timestamp(self._to_ms(timestamp))

    def current_watermark(self) -> Any:
        """The user estimator's watermark, as Beam's (None: none yet)."""
        mark = self.inner.current_watermark()
        return None if mark is None else self._to_beam(mark)

    def get_estimator_state(self) -> Any:
        """The user estimator's state (Beam keeps it with a residual and resumes from it)."""
        return self.inner.get_estimator_state()

    def call_user(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the user estimator's `method` (millstream timestamps in and out). The user's `process` reaches
        it through Beam's `ThreadsafeWatermarkEstimator`, which runs every call under its lock, so the user's
        calls never interleave with Beam's progress thread reading the watermark."""
        return getattr(self.inner, method)(*args, **kwargs)


class BeamWatermarkEstimatorProvider(beam_core.WatermarkEstimatorProvider):
    """A millstream WatermarkEstimatorProvider as Beam's; its estimators are `BeamWatermarkEstimator`s."""

    def __init__(self, provider: Any, to_beam: Callable[[Any], Any], to_ms: Callable[[Any], Any]) -> None:
        self.provider = provider
        self._to_beam = to_beam
        self._to_ms = to_ms

    def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
        """The user provider's initial state."""
        return self.provider.initial_estimator_state(element, restriction)

    def create_watermark_estimator(self, estimator_state: Any) -> BeamWatermarkEstimator:
        """The user provider's estimator for `estimator_state`, seen by Beam as a Beam estimator."""
        inner = self.provider.create_watermark_estimator(estimator_state)
        return BeamWatermarkEstimator(inner, self._to_beam, self._to_ms)


class UserEstimator:
    """What the user's `process` gets for its WatermarkEstimatorParam on Beam: its own estimator's methods
    (`set_watermark`, `current_watermark`, ... with millstream timestamps), each called through Beam's
    thread-safe wrapper, under Beam's lock."""

    def __init__(self, beam_side: Any) -> None:
        self._beam_side = beam_side

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        beam_side = self._beam_side

        def call(*args: Any, **kwargs: Any) -> Any:
            return beam_side.call_user(method, *args, **kwargs)

        return call


def user_estimator(value: Any) -> UserEstimator:
    """Wrap the estimator Beam hands the DoFn (Beam's thread-safe wrapper of a `BeamWatermarkEstimator`)."""
    if not callable(getattr(value, "call_user", None)):
        raise TypeError(
            f"WatermarkEstimatorParam: Beam handed {type(value).__name__}, not the estimator of millstream's "
            "BeamWatermarkEstimatorProvider"
        )
    return UserEstimator(value)


__all__ = [
    "BeamBoundedSource",
    "BeamRangeTracker",
    "BeamRestrictionProvider",
    "BeamRestrictionTracker",
    "BeamSink",
    "BeamWatermarkEstimator",
    "BeamWatermarkEstimatorProvider",
    "BeamWriter",
    "UserEstimator",
    "user_estimator",
]
