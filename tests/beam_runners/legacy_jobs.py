"""Pipelines with Beam's legacy IO, a splittable DoFn, a bundle finalizer, ReadAllFromText and type hints, run
both locally and on Prism by test_prism_legacy.py (loaded by value, so workers need not import this file)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import millstream as beam
from millstream.io import iobase
from millstream.io.range_trackers import OffsetRangeTracker
from millstream.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from millstream.io.textio import ReadAllFromText
from millstream.io.watermark_estimators import MonotonicWatermarkEstimator
from millstream.transforms.core import RestrictionProvider, WatermarkEstimatorProvider
from millstream.utils.timestamp import Timestamp


class SquaresSource(iobase.BoundedSource):
    """The squares of 0..n-1, one record per offset, split into bundles of at most `desired_bundle_size`."""

    def __init__(self, n: int) -> None:
        self.n = n

    def estimate_size(self) -> int:
        return self.n

    def split(self, desired_bundle_size: int, start_position: Any = None, stop_position: Any = None) -> Any:
        start = 0 if start_position is None else start_position
        stop = self.n if stop_position is None else stop_position
        step = max(1, min(desired_bundle_size, 3))  # several bundles even for a small source
        for lo in range(start, stop, step):
            hi = min(lo + step, stop)
            yield iobase.SourceBundle(hi - lo, self, lo, hi)

    def get_range_tracker(self, start_position: Any, stop_position: Any) -> OffsetRangeTracker:
        start = 0 if start_position is None else start_position
        stop = self.n if stop_position is None else stop_position
        return OffsetRangeTracker(start, stop)

    def read(self, range_tracker: Any) -> Iterator[int]:
        if not isinstance(range_tracker, OffsetRangeTracker):  # the user's own tracker, not Beam's wrapper
            raise TypeError(f"read got {type(range_tracker).__name__}")
        i = range_tracker.start_position()
        while range_tracker.try_claim(i):
            yield i * i
            i += 1


class _DirWriter(iobase.Writer):
    def __init__(self, path: str) -> None:
        self.path = path
        self.f = open(path, "w")

    def write(self, value: Any) -> None:
        self.f.write(f"{value}\n")

    def close(self) -> str:
        self.f.close()
        return self.path


class DirSink(iobase.Sink):
    """Writes each bundle to a temporary file; finalizing moves them to `directory` as part-N files."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def initialize_write(self) -> str:
        tmp = os.path.join(self.directory, ".tmp")
        os.makedirs(tmp, exist_ok=True)
        return tmp

    def open_writer(self, init_result: str, uid: str) -> _DirWriter:
        return _DirWriter(os.path.join(init_result, f"{uid}.txt"))

    def pre_finalize(self, init_result: str, writer_results: list[str]) -> int:
        return len(writer_results)

    def finalize_write(self, init_result: str, writer_results: list[str], pre_finalize_result: int) -> Any:
        for i, path in enumerate(sorted(writer_results)):
            final = os.path.join(self.directory, f"part-{i}-of-{pre_finalize_result}.txt")
            os.rename(path, final)
            yield final


class ChunksOf3(RestrictionProvider):
    """(name, n) -> OffsetRange(0, n), split into ranges of 3."""

    def initial_restriction(self, element: Any) -> OffsetRange:
        return OffsetRange(0, element[1])

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: Any, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield from restriction.split(3)

    def restriction_size(self, element: Any, restriction: OffsetRange) -> float:
        return restriction.size()


class Expand(beam.DoFn):
    """A splittable DoFn: (name, n) -> (name, i) for every i in 0..n-1 that its tracker lets it claim."""

    def process(self, element: Any, tracker=beam.DoFn.RestrictionParam(ChunksOf3())) -> Iterator[Any]:
        r = tracker.current_restriction()
        for i in range(r.start, r.stop):
            if not tracker.try_claim(i):
                return
            yield (element[0], i)


class FinalizeToFile(beam.DoFn):
    """Passes elements through; the bundle's finalizer appends the bundle's elements to `<directory>/<uuid>`."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def start_bundle(self) -> None:
        self.seen: list[Any] = []

    def process(self, element: Any, finalizer=beam.DoFn.BundleFinalizerParam) -> Iterator[Any]:
        if not self.seen:
            seen = self.seen
            path = os.path.join(self.directory, uuid.uuid4().hex)

            def done() -> None:
                with open(path, "w") as f:
                    f.writelines(f"{v}\n" for v in seen)

            finalizer.register(done)
        self.seen.append(element)
        yield element


class MonotonicFromStart(WatermarkEstimatorProvider):
    """Monotonic estimators starting at their restriction's start (in tens of seconds): one per restriction."""

    def initial_estimator_state(self, element: Any, restriction: OffsetRange) -> Timestamp:
        return Timestamp(10 * restriction.start)

    def create_watermark_estimator(self, estimator_state: Any) -> MonotonicWatermarkEstimator:
        return MonotonicWatermarkEstimator(estimator_state)


def _seconds(t: Any) -> Any:
    return None if t is None else t.micros / 1e6


class Ticks(beam.DoFn):
    """A splittable DoFn with a watermark estimator: (name, n) -> (name, i, watermark before the output) at
    event time 10*i; the monotonic estimator follows the outputs."""

    def process(
        self,
        element: Any,
        tracker=beam.DoFn.RestrictionParam(ChunksOf3()),
        estimator=beam.DoFn.WatermarkEstimatorParam(MonotonicFromStart()),
    ) -> Iterator[Any]:
        r = tracker.current_restriction()
        for i in range(r.start, r.stop):
            if not tracker.try_claim(i):
                return
            yield beam.window.TimestampedValue(
                (element[0], i, _seconds(estimator.current_watermark())), 10 * i
            )


class ManualTicks(beam.DoFn):
    """The same with a manual estimator set to each output's time before it is output."""

    def process(
        self,
        element: Any,
        tracker=beam.DoFn.RestrictionParam(ChunksOf3()),
        estimator=beam.DoFn.WatermarkEstimatorParam(),
    ) -> Iterator[Any]:
        r = tracker.current_restriction()
        for i in range(r.start, r.stop):
            if not tracker.try_claim(i):
                return
            before = _seconds(estimator.current_watermark())
            estimator.set_watermark(Timestamp(10 * i))
            yield beam.window.TimestampedValue((element[0], i, before), 10 * i)

    def initial_estimator_state(self, element: Any, restriction: OffsetRange) -> Any:
        return None

    def create_watermark_estimator(self, estimator_state: Any) -> Any:
        from millstream.io.watermark_estimators import ManualWatermarkEstimator

        return ManualWatermarkEstimator(estimator_state)


class _InWindow(beam.DoFn):
    def process(self, kv: Any, w=beam.DoFn.WindowParam) -> Iterator[Any]:
        yield (kv[0], w.start.micros // 1_000_000, sorted(kv[1]))


def estimated(p: Any, cap: Any, out: str) -> None:
    """Splittable DoFns with monotonic and manual watermark estimators: outputs with their timestamps, and
    the outputs grouped in 25 s windows (complete only if nothing is late)."""
    for name, fn in (("monotonic", Ticks()), ("manual", ManualTicks())):
        ticks = (
            p | f"Ranges[{name}]" >> beam.Create([("a", 7), ("b", 2)]) | f"Ticks[{name}]" >> beam.ParDo(fn)
        )
        stamped = ticks | f"Stamp[{name}]" >> beam.Map(
            lambda v, t=beam.DoFn.TimestampParam: (*v, t.micros // 1000)
        )
        cap.capture(beam, stamped, name, out)
        grouped = (
            ticks
            | f"Windows[{name}]" >> beam.WindowInto(beam.window.FixedWindows(25))
            | f"Key[{name}]" >> beam.Map(lambda v: (v[0], v[1]))
            | f"Group[{name}]" >> beam.GroupByKey()
            | f"InWindow[{name}]" >> beam.ParDo(_InWindow())
        )
        cap.capture(beam, grouped, f"{name}_windows", out)


def everything(p: Any, work: str, cap: Any, out: str) -> None:
    """The legacy source, a sink, a splittable DoFn, a finalizer and ReadAllFromText, each captured."""
    squares = p | "Squares" >> beam.io.Read(SquaresSource(10))
    cap.capture(beam, squares, "squares", out)
    _ = squares | "ToSink" >> beam.io.Write(DirSink(os.path.join(work, "sink")))
    expanded = p | "Ranges" >> beam.Create([("a", 7), ("b", 2), ("c", 0)]) | "Expand" >> beam.ParDo(Expand())
    cap.capture(beam, expanded, "expanded", out)
    finalized = (
        p
        | "Words" >> beam.Create(["x", "y", "z"])
        | "Finalize" >> beam.ParDo(FinalizeToFile(os.path.join(work, "finalized")))
    )
    cap.capture(beam, finalized, "passed", out)
    patterns = [os.path.join(work, "in", "one.txt"), os.path.join(work, "in", "two*.txt")]
    lines = p | "Patterns" >> beam.Create(patterns) | "ReadAll" >> ReadAllFromText(with_filename=True)
    named = lines | "BaseName" >> beam.Map(lambda fl: (os.path.basename(fl[0]), fl[1]))
    cap.capture(beam, named, "lines", out)


def typed(p: Any, cap: Any, out: str) -> None:
    """Declared type hints: an int output, a (str, int) output grouped by key."""
    nums = p | "Nums" >> beam.Create(["1", "22", "333"]) | "Len" >> beam.Map(len).with_output_types(int)
    pairs = nums | "Pair" >> beam.Map(lambda n: (str(n % 2), n)).with_input_types(int).with_output_types(
        tuple[str, int]
    )
    cap.capture(beam, pairs | "Group" >> beam.GroupByKey(), "grouped", out)
