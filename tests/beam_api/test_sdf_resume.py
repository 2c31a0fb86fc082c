"""Splittable DoFns that resume: `defer_remainder` (polling), the runtime's checkpoint split after a budget
of outputs, a restriction's progress carried by a snapshot into a restored step, and the watermark held at
the estimator's watermark while a residual is pending (Beam's semantics).

Most tests drive the step by hand (`SplittableParDoNode` with a FakeClock and a collector, no executor), so
time and watermarks are exact; the pipeline tests run whole bounded jobs, one of them beside Beam's
DirectRunner."""

from __future__ import annotations

import contextlib
import pickle
import types
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
import millstream.io.watermark_estimators  # noqa: F401  (reached as beam.io.watermark_estimators)
from millstream.engine.model import splittable
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node
from millstream.io.restriction_trackers import (
    OffsetRange,
    OffsetRestrictionTracker,
    UnsplittableRestrictionTracker,
)
from millstream.io.watermark_estimators import ManualWatermarkEstimator
from millstream.testing.util import assert_that, equal_to
from millstream.utils.timestamp import Duration, Timestamp

from support.beam_harness import capture, multiset, run_collect

DoFn = beam.DoFn
S = 1_000_000  # µs per second


class _Collect(Node):
    """Records what the step emits and the watermarks it passes on."""

    def __init__(self) -> None:
        super().__init__("Collect")
        self.got: list[Any] = []
        self.ts: list[int] = []
        self.wms: list[int] = []

    def push(self, index: int, batch: Batch) -> None:
        self.got.extend(batch.values)
        self.ts.extend(batch.ts or [MIN_MICROS] * len(batch.values))

    def on_input_watermark(self, micros: int) -> None:
        self.wms.append(micros)


def _node(fn: DoFn, clock: FakeClock) -> tuple[Any, _Collect]:
    """The step a pipeline plans for ParDo(fn), wired to a collector, with `clock` as the job's clock."""
    from millstream.engine.model.window import GlobalWindows
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode

    p = beam.Pipeline()
    _ = p | beam.Create([0]) | "Sdf" >> beam.ParDo(fn)
    (step,) = [a.transform for a in p.primitives() if a.full_label == "Sdf"]
    step.fn.use_clock(clock)
    resumable = step.fn.resumable(step)
    assert resumable is not None
    node = SplittableParDoNode("Sdf", resumable, Windowing(GlobalWindows()), [])
    out = _Collect()
    node.connect(out, 0)
    node.open()
    return node, out


# -- polling: defer_remainder ------------------------------------------------------------------------------


class Feed:
    """A growing list a polling DoFn reads (the test appends to it); `closed` says no more will come."""

    items: list[str] = []
    closed = False


class PollFeed(DoFn, beam.transforms.core.RestrictionProvider):
    """Beam's polling pattern: claim every item available, then defer the rest for 5 s; finish when closed."""

    LIMIT = 1000

    def initial_restriction(self, name: str) -> OffsetRange:
        return OffsetRange(0, self.LIMIT)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(self, name: str, tracker: Any = DoFn.RestrictionParam()) -> Iterator[tuple[str, str]]:
        pos = tracker.current_restriction().start
        while pos < len(Feed.items):
            if not tracker.try_claim(pos):
                return
            yield name, Feed.items[pos]
            pos += 1
        if Feed.closed:
            tracker.try_claim(self.LIMIT)  # past the end: the restriction is done
        else:
            tracker.defer_remainder(Duration(seconds=5))


@pytest.fixture
def feed() -> Iterator[type[Feed]]:
    Feed.items, Feed.closed = ["a", "b"], False
    yield Feed
    Feed.items, Feed.closed = [], False


def test_a_deferred_remainder_resumes_after_its_delay_on_the_jobs_clock(feed: type[Feed]) -> None:
    clock = FakeClock(100 * S)
    node, out = _node(PollFeed(), clock)
    node.push(0, Batch(["f"], [7 * S]))
    node.watermark(0, MAX_MICROS)  # a bounded input ended: the pending residual keeps the step running
    assert out.got == [("f", "a"), ("f", "b")]
    assert node.next_timer() == 105 * S and node.lingers()
    assert out.wms[-1] == 7 * S  # held at the element's timestamp (no estimator) while the residual waits
    feed.items += ["c", "d"]
    clock.set(104_999_999)
    if (t := node.next_timer()) is not None and t <= clock.now_us():
        node.advance_processing_time(clock.now_us())
    assert len(out.got) == 2  # not before the delay
    clock.set(105 * S)
    node.advance_processing_time(clock.now_us())
    assert node.next_timer() == 110 * S
    feed.items.append("e")
    feed.closed = True
    clock.set(110 * S)
    node.advance_processing_time(clock.now_us())
    assert out.got == [("f", x) for x in ["a", "b", "c", "d", "e"]]
    assert out.ts == [7 * S] * 5  # the element's timestamp, in every activation
    assert not node.lingers() and node.next_timer() is None and out.wms[-1] == MAX_MICROS


class OnePerActivation(PollFeed):
    """Claims one position per activation and defers the rest for 10 ms, three times in all."""

    def process(self, name: str, tracker: Any = DoFn.RestrictionParam()) -> Iterator[tuple[str, int]]:  # type: ignore[override]
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield name, pos
            if pos < 2:
                tracker.defer_remainder(Duration(seconds=0.01))
            else:
                tracker.try_claim(self.LIMIT)


def test_a_deferring_dofn_in_a_bounded_pipeline_finishes_before_the_job_ends() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create(["x", "y"]) | beam.ParDo(OnePerActivation())
        assert_that(out, equal_to([(n, i) for n in "xy" for i in range(3)]))


# -- the runtime's checkpoint split --------------------------------------------------------------------------


class CountingTracker(OffsetRestrictionTracker):
    """An OffsetRestrictionTracker that counts the runner's `try_split` calls."""

    splits: list[float] = []

    def try_split(self, fraction_of_remainder: float) -> Any:
        CountingTracker.splits.append(fraction_of_remainder)
        return super().try_split(fraction_of_remainder)


class Positions(DoFn, beam.transforms.core.RestrictionProvider):
    """Every position of [0, n) of element n, with a tracker made by `make_tracker`."""

    def __init__(self, make_tracker: Any = CountingTracker) -> None:
        self.make_tracker = make_tracker

    def initial_restriction(self, n: int) -> OffsetRange:
        return OffsetRange(0, n)

    def create_tracker(self, restriction: OffsetRange) -> Any:
        return self.make_tracker(restriction)

    def process(self, n: int, tracker: Any = DoFn.RestrictionParam()) -> Iterator[tuple[int, int]]:
        pos = tracker.current_restriction().start
        while tracker.try_claim(pos):
            yield n, pos
            pos += 1


def test_a_restriction_longer_than_the_budget_is_split_into_activations() -> None:
    CountingTracker.splits = []
    budget = splittable.SPLIT_AFTER_OUTPUTS
    n = 2 * budget + budget // 2
    clock = FakeClock(50 * S)
    node, out = _node(Positions(), clock)
    node.push(0, Batch([n], [3 * S]))
    assert out.got == [(n, i) for i in range(budget)]  # the first activation stops at the budget
    assert CountingTracker.splits == [0]  # by a checkpoint split of its tracker
    assert node.next_timer() == 50 * S  # the residual resumes at once, on the next turn of the timer loop
    node.watermark(0, MAX_MICROS)
    assert out.wms[-1] == 3 * S and node.lingers()
    node.advance_processing_time(clock.now_us())
    assert len(out.got) == 2 * budget
    node.advance_processing_time(clock.now_us())
    assert out.got == [(n, i) for i in range(n)]
    assert CountingTracker.splits == [0, 0]  # the last activation ended within its budget
    assert out.wms[-1] == MAX_MICROS and not node.lingers()


def test_a_tracker_that_refuses_to_split_finishes_in_one_activation() -> None:
    n = 3 * splittable.SPLIT_AFTER_OUTPUTS

    def unsplittable(r: OffsetRange) -> Any:
        return UnsplittableRestrictionTracker(OffsetRestrictionTracker(r))

    node, out = _node(Positions(unsplittable), FakeClock())
    node.push(0, Batch([n], [0]))
    assert out.got == [(n, i) for i in range(n)]
    assert node.next_timer() is None and not node.key_windows  # nothing left in state


class RangeCoder(beam.coders.Coder):
    """Encodes an OffsetRange as ``b"start:stop"`` (so a test can read what was stored)."""

    def encode(self, value: OffsetRange) -> bytes:
        return f"{value.start}:{value.stop}".encode()

    def decode(self, encoded: bytes) -> OffsetRange:
        start, stop = encoded.decode().split(":")
        return OffsetRange(int(start), int(stop))


class CodedPositions(Positions):
    """Positions whose restrictions are stored with `RangeCoder` (Beam's `restriction_coder`)."""

    def restriction_coder(self) -> RangeCoder:
        return RangeCoder()


def test_a_snapshot_part_way_restores_the_residual_and_every_position_comes_once() -> None:
    """A checkpoint between activations stores each residual, encoded by the provider's coder; a step
    restored from it continues there: the first run's outputs plus the restored run's are every position
    exactly once."""
    budget = splittable.SPLIT_AFTER_OUTPUTS
    n = 3 * budget
    clock = FakeClock()
    node, out = _node(CodedPositions(OffsetRestrictionTracker), clock)
    node.push(0, Batch([n, n + 1], [0, 0]))
    node.advance_processing_time(clock.now_us())
    snapshot = node.snapshot_state()
    first = list(out.got)
    assert len(first) == 2 * 2 * budget  # two activations of each element, each stopped by the budget
    stored = sorted(
        (cell["sdf_pending"]["element"], cell["sdf_pending"]["parts"][0][0])
        for _, _, cell in snapshot["cells"]
    )
    assert stored == [(n, f"{2 * budget}:{n}".encode()), (n + 1, f"{2 * budget}:{n + 1}".encode())]
    restored, out2 = _node(CodedPositions(OffsetRestrictionTracker), clock)
    restored.restore_state(snapshot)
    restored.watermark(0, MAX_MICROS)
    while restored.lingers():
        restored.advance_processing_time(clock.now_us())
    assert sorted(first + out2.got) == [(m, i) for m in (n, n + 1) for i in range(m)]


# -- the watermark while a residual is pending ---------------------------------------------------------------


def _stepwise(b: types.ModuleType) -> Any:
    """A splittable DoFn (for engine `b`) that claims one position per activation, outputs it at 10 s per
    position with the estimator's watermark at the time, sets the watermark to the position's time and defers
    the rest: each activation resumes the estimator from the state the previous one left."""

    class Stepwise(b.DoFn, b.transforms.core.RestrictionProvider):
        def initial_restriction(self, n: int) -> Any:
            return b.io.restriction_trackers.OffsetRange(0, n)

        def create_tracker(self, restriction: Any) -> Any:
            return b.io.restriction_trackers.OffsetRestrictionTracker(restriction)

        def restriction_size(self, n: int, restriction: Any) -> int:
            return restriction.size()

        def process(
            self,
            n: int,
            tracker: Any = b.DoFn.RestrictionParam(),
            estimator: Any = b.DoFn.WatermarkEstimatorParam(
                b.io.watermark_estimators.ManualWatermarkEstimator.default_provider()
            ),
        ) -> Any:
            pos = tracker.current_restriction().start
            if tracker.try_claim(pos):
                wm = estimator.current_watermark()
                yield b.window.TimestampedValue(
                    (n, pos, None if wm is None else wm.micros // 1_000_000), 10 * pos
                )
                estimator.set_watermark(b.utils.timestamp.Timestamp(10 * pos))
                tracker.defer_remainder()

    return Stepwise


def test_the_output_watermark_is_held_at_the_estimators_watermark_while_a_residual_waits() -> None:
    clock = FakeClock()
    node, out = _node(_stepwise(beam)(), clock)
    node.push(0, Batch([4], [MIN_MICROS]))
    node.watermark(0, MAX_MICROS)
    held = [out.wms[-1]]
    while node.lingers():
        node.advance_processing_time(clock.now_us())
        held.append(out.wms[-1])
    assert [v[1] for v in out.got] == [0, 1, 2, 3]
    # after each activation: the watermark the DoFn set (10 s per position), then +infinity when done; never
    # the input's +infinity while a position could still come (a downstream window would close early)
    assert held == [0, 10 * S, 20 * S, MAX_MICROS]  # the last position leaves no residual


def test_deferring_with_a_manual_estimator_matches_beams_direct_runner() -> None:
    pytest.importorskip("apache_beam")
    import apache_beam.io.restriction_trackers  # noqa: F401  (the modules the DoFn uses, on both engines)
    import apache_beam.io.watermark_estimators  # noqa: F401

    def build(b: types.ModuleType, p: Any) -> None:
        out = p | b.Create([3, 5]) | b.ParDo(_stepwise(b)())

        def in_window(kv: Any, w: Any = b.DoFn.WindowParam) -> Any:
            return (kv[0], w.start.micros // 1_000_000, sorted(kv[1]))

        windows = (
            out
            | b.WindowInto(b.window.FixedWindows(25))
            | b.Map(lambda v: (v[0], v[1]))
            | b.GroupByKey()
            | b.Map(in_window)
        )
        capture(b, out, "out")
        capture(b, windows, "windows")

    ours, theirs = run_collect("millstream", build), run_collect("beam", build)
    assert multiset(ours["out"]) == multiset(theirs["out"])
    assert multiset(ours["windows"]) == multiset(theirs["windows"])
    assert multiset(ours["windows"]) == multiset([(3, 0, [0, 1, 2]), (5, 0, [0, 1, 2]), (5, 25, [3, 4])])


# -- drain, windows, errors, boundedness ---------------------------------------------------------------------


class _UnboundedTracker(OffsetRestrictionTracker):
    """An offset tracker whose restriction is declared unbounded (a stream read forever)."""

    def is_bounded(self) -> bool:
        return False


class OnePerFiveSeconds(DoFn, beam.transforms.core.RestrictionProvider):
    """Elements ``(name, n)``: one position per activation, the rest deferred 5 s; a range of a million
    positions or more is unbounded (Beam's default `truncate` then drops it on a drain)."""

    def initial_restriction(self, element: tuple[str, int]) -> OffsetRange:
        return OffsetRange(0, element[1])

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        if restriction.stop >= 1_000_000:
            return _UnboundedTracker(restriction)
        return OffsetRestrictionTracker(restriction)

    @DoFn.unbounded_per_element()
    def process(
        self, element: tuple[str, int], tracker: Any = DoFn.RestrictionParam()
    ) -> Iterator[tuple[str, int]]:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield element[0], pos
            tracker.defer_remainder(Duration(seconds=5))


def test_a_drain_finishes_bounded_restrictions_and_drops_unbounded_ones() -> None:
    clock = FakeClock()
    node, out = _node(OnePerFiveSeconds(), clock)
    node.push(0, Batch([("bounded", 4), ("unbounded", 10**9)], [0, 0]))
    node.watermark(0, MAX_MICROS)
    assert sorted(out.got) == [("bounded", 0), ("unbounded", 0)] and node.lingers()
    node.truncate_held()  # what the executor does when a drain is asked while the step lingers
    assert sorted(out.got) == [("bounded", i) for i in range(4)] + [("unbounded", 0)]
    assert not node.lingers() and node.next_timer() is None and out.wms[-1] == MAX_MICROS


def test_unbounded_per_element_makes_the_output_unbounded() -> None:
    p = beam.Pipeline()
    names = p | beam.Create([("x", 3)])
    assert (names | "Unbounded" >> beam.ParDo(OnePerFiveSeconds())).is_bounded is False
    assert (names | "Bounded" >> beam.ParDo(OnePerActivation())).is_bounded is True


class InItsWindow(DoFn, beam.transforms.core.RestrictionProvider):
    """Position by position, 10 ms apart, each output stamped with the element's window start."""

    def initial_restriction(self, n: int) -> OffsetRange:
        return OffsetRange(0, n)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self,
        n: int,
        tracker: Any = DoFn.RestrictionParam(),
        w: Any = DoFn.WindowParam,
        t: Any = DoFn.TimestampParam,
    ) -> Iterator[tuple[int, int, float, float]]:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield n, pos, float(w.start), float(t)
            tracker.defer_remainder(Duration(seconds=0.01))


def test_resumed_activations_see_and_output_into_the_elements_window() -> None:
    def in_window(kv: Any, w: Any = DoFn.WindowParam) -> Any:
        return kv[0], float(w.start), sorted(kv[1])

    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([(3, 12), (2, 25)])
            | beam.MapTuple(lambda n, t: beam.window.TimestampedValue(n, t))
            | beam.WindowInto(beam.window.FixedWindows(10))
            | beam.ParDo(InItsWindow())
        )
        assert_that(
            out, equal_to([(3, i, 10.0, 12.0) for i in range(3)] + [(2, i, 20.0, 25.0) for i in range(2)])
        )
        grouped = out | beam.Map(lambda v: (v[0], v[1])) | beam.GroupByKey() | beam.Map(in_window)
        assert_that(grouped, equal_to([(3, 10.0, [0, 1, 2]), (2, 20.0, [0, 1])]), label="Grouped")


class FailsAt(Positions):
    """Positions of [0, n) that fail at `at`."""

    def __init__(self, at: int) -> None:
        super().__init__(OffsetRestrictionTracker)
        self.at = at

    def process(self, n: int, tracker: Any = DoFn.RestrictionParam()) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        pos = tracker.current_restriction().start
        while tracker.try_claim(pos):
            if pos == self.at:
                raise ValueError(f"bad position {pos}")
            yield n, pos
            pos += 1


@pytest.mark.parametrize("at", [5, splittable.SPLIT_AFTER_OUTPUTS + 5])
def test_a_failure_names_the_users_element_in_a_first_or_a_resumed_activation(at: int) -> None:
    n = splittable.SPLIT_AFTER_OUTPUTS + 10
    with pytest.raises(ValueError, match=rf"bad position {at} \[while running 'Sdf' on element {n}\]"):
        with beam.Pipeline() as p:
            _ = p | beam.Create([n]) | "Sdf" >> beam.ParDo(FailsAt(at))


def test_a_failing_element_goes_to_the_dead_letter_output_as_the_users_element() -> None:
    with beam.Pipeline() as p:
        good, bad = p | beam.Create([250, 3]) | beam.ParDo(FailsAt(5)).with_exception_handling()
        assert_that(good, equal_to([(3, i) for i in range(3)]))
        assert_that(
            bad | beam.Map(lambda b: (b[0], b[1][1])),
            equal_to([(250, "ValueError('bad position 5')")]),
            label="Bad",
        )


class WatermarkCoder(beam.coders.Coder):
    """Encodes an estimator state (a Timestamp or None) as ``b"wm:<µs>"``."""

    def encode(self, value: Any) -> bytes:
        return b"wm:none" if value is None else f"wm:{value.micros}".encode()

    def decode(self, encoded: bytes) -> Any:
        text = encoded.decode()[3:]
        return None if text == "none" else Timestamp(micros=int(text))


def test_a_pending_estimator_state_is_stored_with_the_providers_estimator_state_coder() -> None:
    from millstream.engine.model.watermark_estimators import _DefaultProvider

    class CodedManual(_DefaultProvider):
        def estimator_state_coder(self) -> WatermarkCoder:
            return WatermarkCoder()

    class Stepwise(_stepwise(beam)):  # type: ignore[misc]
        def process(  # type: ignore[override]
            self,
            n: int,
            tracker: Any = DoFn.RestrictionParam(),
            estimator: Any = DoFn.WatermarkEstimatorParam(CodedManual(ManualWatermarkEstimator)),
        ) -> Any:
            yield from super().process(n, tracker, estimator)

    clock = FakeClock()
    node, out = _node(Stepwise(), clock)
    node.push(0, Batch([3], [MIN_MICROS]))
    node.advance_processing_time(clock.now_us())  # two activations: positions 0 and 1
    (cell,) = [cell["sdf_pending"] for _, _, cell in node.snapshot_state()["cells"]]
    assert cell["parts"][0][1] == b"wm:10000000"  # the watermark set at position 1, in the coder's bytes
    node.watermark(0, MAX_MICROS)
    while node.lingers():
        node.advance_processing_time(clock.now_us())
    assert out.got == [(3, 0, None), (3, 1, 0), (3, 2, 10)]  # each activation resumed the estimator's state


def test_under_a_test_stream_the_fake_clock_runs_on_to_each_deferred_remainder() -> None:
    """A TestStream's job runs on a FakeClock: after its last event, the clock jumps to each pending timer (5 s
    deferrals here), so the job ends with every position instead of waiting forever."""
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.testing.test_stream import TestStream

    stream = TestStream().add_elements([("b", 3)]).advance_processing_time(1).advance_watermark_to_infinity()
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
        out = p | stream | beam.ParDo(OnePerFiveSeconds())
        assert_that(out, equal_to([("b", 0), ("b", 1), ("b", 2)]))


class EvenOdd(Positions):
    """Even positions to the main output, odd ones tagged "odd", one position per activation (deferred)."""

    def __init__(self) -> None:
        super().__init__(OffsetRestrictionTracker)

    def process(self, n: int, tracker: Any = DoFn.RestrictionParam()) -> Iterator[Any]:  # type: ignore[override]
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield beam.pvalue.TaggedOutput("odd", pos) if pos % 2 else pos
            tracker.defer_remainder(Duration(seconds=0.001))


def test_tagged_outputs_of_resumed_activations_reach_their_outputs() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create([5]) | beam.ParDo(EvenOdd()).with_outputs("odd", main="even")
        assert_that(out.even, equal_to([0, 2, 4]), label="Even")
        assert_that(out.odd, equal_to([1, 3]), label="Odd")


class DoneWithEventTime(Positions):
    """Sets its watermark to the end of time after the first position, then defers the rest."""

    def __init__(self) -> None:
        super().__init__(OffsetRestrictionTracker)

    def process(  # type: ignore[override]
        self,
        n: int,
        tracker: Any = DoFn.RestrictionParam(),
        estimator: Any = DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[int]:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield pos
            estimator.set_watermark(beam.window.MAX_TIMESTAMP)
            tracker.defer_remainder()


def test_an_estimator_at_the_end_of_time_holds_no_further_than_the_global_windows_end() -> None:
    with beam.Pipeline() as p:
        assert_that(p | beam.Create([3]) | beam.ParDo(DoneWithEventTime()), equal_to([0, 1, 2]))


def test_a_failing_resumed_activation_sends_the_element_to_the_dead_letter_output() -> None:
    budget = splittable.SPLIT_AFTER_OUTPUTS
    n = budget + 10
    with beam.Pipeline() as p:
        good, bad = p | beam.Create([n, 3]) | beam.ParDo(FailsAt(budget + 5)).with_exception_handling()
        # the first activation's outputs were emitted before the failure (a checkpoint may have committed them)
        assert_that(good, equal_to([(3, i) for i in range(3)] + [(n, i) for i in range(budget)]))
        errors = bad | beam.Map(lambda b: (b[0], b[1][1]))
        assert_that(errors, equal_to([(n, f"ValueError('bad position {budget + 5}')")]), label="Bad")


class PlusSide(Positions):
    """Positions plus a side input, one per activation (deferred): every activation gets the side input."""

    def __init__(self) -> None:
        super().__init__(OffsetRestrictionTracker)

    def process(
        self, n: int, base: int, tracker: Any = DoFn.RestrictionParam(), scale: int = 1
    ) -> Iterator[int]:  # type: ignore[override]
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield base + scale * pos
            tracker.defer_remainder(Duration(seconds=0.001))


def test_global_side_inputs_reach_every_resumed_activation() -> None:
    with beam.Pipeline() as p:
        base = p | "Base" >> beam.Create([100])
        scale = p | "Scale" >> beam.Create([10])
        out = (
            p
            | beam.Create([3])
            | beam.ParDo(PlusSide(), beam.pvalue.AsSingleton(base), scale=beam.pvalue.AsSingleton(scale))
        )
        assert_that(out, equal_to([100, 110, 120]))


def test_a_restored_residual_resumes_with_the_checkpointed_side_input() -> None:
    from millstream.engine.model.window import GlobalWindows
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode

    clock = FakeClock()

    def node() -> tuple[Any, _Collect]:
        p = beam.Pipeline()
        base = p | "Base" >> beam.Create([100])
        _ = p | beam.Create([3]) | "Sdf" >> beam.ParDo(PlusSide(), beam.pvalue.AsSingleton(base))
        (step,) = [a.transform for a in p.primitives() if a.full_label == "Sdf"]
        step.fn.use_clock(clock)
        global_windowing = Windowing(GlobalWindows())
        n = SplittableParDoNode("Sdf", step.fn.resumable(step), global_windowing, [global_windowing])
        out = _Collect()
        n.connect(out, 0)
        n.open()
        return n, out

    first, out1 = node()
    first.push(1, Batch([100]))
    first.watermark(1, MAX_MICROS)
    first.push(0, Batch([3], [0]))
    snapshot = first.snapshot_state()  # position 0 done, [1, 3) pending
    restored, out2 = node()
    restored.restore_state(snapshot)  # no side input pushed: it comes from the snapshot
    restored.watermark(0, MAX_MICROS)
    while restored.lingers():
        clock.advance(1000)
        restored.advance_processing_time(clock.now_us())
    assert out1.got == [100] and out2.got == [101, 102]  # 100 + position (scale 1)


# -- a bundle finalizer (Beam's polling/acking reads) -----------------------------------------------------------


class AckingPoll(DoFn, beam.transforms.core.RestrictionProvider):
    """Beam's acking read: claim every feed item available, register a callback acking them once the bundle
    commits, defer the rest 5 s; finish when the feed is closed. `acked` records (element, items) per call."""

    acked: list[tuple[str, list[str]]] = []

    def initial_restriction(self, name: str) -> OffsetRange:
        return OffsetRange(0, PollFeed.LIMIT)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self,
        name: str,
        tracker: Any = DoFn.RestrictionParam(),
        finalizer: Any = DoFn.BundleFinalizerParam,
    ) -> Iterator[tuple[str, str]]:
        pos = start = tracker.current_restriction().start
        while pos < len(Feed.items) and tracker.try_claim(pos):
            yield name, Feed.items[pos]
            pos += 1
        batch = Feed.items[start:pos]
        finalizer.register(lambda: AckingPoll.acked.append((name, batch)))
        if Feed.closed:
            tracker.try_claim(PollFeed.LIMIT)
        else:
            tracker.defer_remainder(Duration(seconds=5))


def test_each_activation_registers_its_acks_with_the_bundle_it_runs_in(feed: type[Feed]) -> None:
    """The first activation and each resumed one (fired by the element's timer) get the step's bundle
    finalizer: a callback runs only when the checkpoint covering its activation commits (the coordinator
    takes the step's callbacks then: `take_bundle_callbacks`), never before, each once; outputs exactly once."""
    AckingPoll.acked = []
    clock = FakeClock(100 * S)
    node, out = _node(AckingPoll(), clock)
    node.push(0, Batch(["f"], [7 * S]))
    node.watermark(0, MAX_MICROS)
    assert out.got == [("f", "a"), ("f", "b")] and AckingPoll.acked == []  # registered, not run
    node.take_bundle_callbacks()()  # checkpoint 1 commits: it covers the first activation
    assert AckingPoll.acked == [("f", ["a", "b"])]
    feed.items += ["c"]
    clock.set(105 * S)
    node.advance_processing_time(clock.now_us())  # a resumed activation, in the timer firing's bundle
    assert out.got[2:] == [("f", "c")] and AckingPoll.acked == [("f", ["a", "b"])]
    feed.items += ["d"]
    clock.set(110 * S)
    node.advance_processing_time(clock.now_us())  # another, before the next checkpoint
    assert AckingPoll.acked == [("f", ["a", "b"])]
    node.take_bundle_callbacks()()  # checkpoint 2 commits both activations
    assert AckingPoll.acked == [("f", ["a", "b"]), ("f", ["c"]), ("f", ["d"])]
    node.take_bundle_callbacks()()  # nothing new: each callback runs once
    feed.closed = True
    clock.set(115 * S)
    node.advance_processing_time(clock.now_us())
    node.take_bundle_callbacks()()
    assert AckingPoll.acked[3:] == [("f", [])]
    assert out.got == [("f", x) for x in "abcd"] and not node.lingers()


def test_a_restored_step_redoes_an_uncommitted_activation_and_only_it_acks(feed: type[Feed]) -> None:
    """A crash after an activation and before the checkpoint covering it commits: its callbacks are lost
    with the process (never run); the step restored from the last checkpoint redoes the activation, whose
    outputs and acks come again, once."""
    AckingPoll.acked = []
    clock = FakeClock(100 * S)
    node, out = _node(AckingPoll(), clock)
    node.push(0, Batch(["f"], [7 * S]))
    node.watermark(0, MAX_MICROS)
    snapshot = pickle.dumps(node.snapshot_state())  # written, as the checkpointer writes it
    node.take_bundle_callbacks()()  # the checkpoint commits
    feed.items += ["c"]
    clock.set(105 * S)
    node.advance_processing_time(clock.now_us())  # not covered by a checkpoint: the process dies here
    assert out.got == [("f", "a"), ("f", "b"), ("f", "c")]
    assert AckingPoll.acked == [("f", ["a", "b"])]

    restored, out2 = _node(AckingPoll(), clock)
    restored.restore_state(pickle.loads(snapshot))
    restored.watermark(0, MAX_MICROS)
    clock.set(106 * S)
    restored.advance_processing_time(clock.now_us())  # the restored timer (due at 105 s) redoes it
    assert out2.got == [("f", "c")] and AckingPoll.acked == [("f", ["a", "b"])]
    restored.take_bundle_callbacks()()
    assert AckingPoll.acked == [("f", ["a", "b"]), ("f", ["c"])]


_log: list[str] = []


@contextlib.contextmanager
def _resource(name: str) -> Iterator[str]:
    """A context manager recording in `_log` when it is entered and exited."""
    _log.append(f"enter {name}")
    yield name
    _log.append(f"exit {name}")


class WithContexts(PollFeed):
    """Claims one position per activation (three in all), outputs the values of its context parameters."""

    def process(  # type: ignore[override]
        self,
        name: str,
        tracker: Any = DoFn.RestrictionParam(),
        conn: Any = DoFn.SetupContextParam(_resource, args=("setup",)),
        batch: Any = DoFn.BundleContextParam(_resource, args=("bundle",)),
    ) -> Iterator[tuple[int, str, str]]:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            _log.append(f"activation {pos}")
            yield pos, conn, batch
            if pos < 2:
                tracker.defer_remainder(Duration(seconds=0.01))
            else:
                tracker.try_claim(self.LIMIT)


def test_resumed_activations_get_the_context_parameters_entered_for_their_step_and_bundle() -> None:
    """The setup context is entered once for the step; each activation, first or resumed (a timer firing),
    runs inside a bundle context entered for its bundle and exited after it."""
    _log.clear()
    with beam.Pipeline() as p:
        out = p | beam.Create(["x"]) | beam.ParDo(WithContexts())
        assert_that(out, equal_to([(i, "setup", "bundle") for i in range(3)]))
    log = _log
    assert log.count("enter setup") == 1 and log[0] == "enter setup" and log[-1] == "exit setup"
    for i in range(3):
        at = log.index(f"activation {i}")
        assert log[at - 1] == "enter bundle" and log[at + 1] == "exit bundle", log


class PlusWindowedSide(DoFn, beam.transforms.core.RestrictionProvider):
    """Claims one position per activation (deferring the rest 10 ms) and outputs it with the sum of the
    windowed side input seen in the element's window."""

    def initial_restriction(self, n: int) -> OffsetRange:
        return OffsetRange(0, 3)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self, n: int, side: list[int], tracker: Any = DoFn.RestrictionParam()
    ) -> Iterator[tuple[int, int, int]]:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield n, pos, sum(side)
            tracker.defer_remainder(Duration(seconds=0.01))


def test_a_windowed_side_input_is_seen_in_the_elements_window_by_every_activation() -> None:
    """The residuals resume after the bounded input's watermark passed every window (the cached views are
    evicted then): each activation still sees the side input of its element's window."""
    with beam.Pipeline() as p:
        side = (
            p
            | "Side" >> beam.Create([(100, 1), (200, 2), (1000, 15)])
            | "SideTs" >> beam.MapTuple(lambda v, t: beam.window.TimestampedValue(v, t))
            | "SideWin" >> beam.WindowInto(beam.window.FixedWindows(10))
        )
        out = (
            p
            | beam.Create([(1, 5), (2, 12), (3, 25)])
            | beam.MapTuple(lambda n, t: beam.window.TimestampedValue(n, t))
            | beam.WindowInto(beam.window.FixedWindows(10))
            | beam.ParDo(PlusWindowedSide(), beam.pvalue.AsList(side))
        )
        assert_that(out, equal_to([(n, i, s) for n, s in [(1, 300), (2, 1000), (3, 0)] for i in range(3)]))


def test_a_restored_residual_sees_the_checkpointed_windowed_side_input_of_its_window() -> None:
    """A snapshot part-way, after the main watermark passed every window: the restored step (no side input
    pushed again) resumes each element with the side input of its own window."""
    from millstream.engine.model.window import FixedWindows
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode

    clock = FakeClock()
    fixed = Windowing(FixedWindows(10))

    def node() -> tuple[Any, _Collect]:
        p = beam.Pipeline()
        side = p | "Side" >> beam.Create([0]) | "SideWin" >> beam.WindowInto(beam.window.FixedWindows(10))
        main = p | beam.Create([0]) | "Win" >> beam.WindowInto(beam.window.FixedWindows(10))
        _ = main | "Sdf" >> beam.ParDo(PlusWindowedSide(), beam.pvalue.AsList(side))
        (step,) = [a.transform for a in p.primitives() if a.full_label == "Sdf"]
        step.fn.use_clock(clock)
        n = SplittableParDoNode("Sdf", step.fn.resumable(step), fixed, [fixed])
        out = _Collect()
        n.connect(out, 0)
        n.open()
        return n, out

    first, out1 = node()
    first.push(1, Batch([1, 2, 40], [1 * S, 2 * S, 15 * S]))  # window [0, 10 s): 3; [10 s, 20 s): 40
    first.watermark(1, MAX_MICROS)
    first.push(0, Batch([7, 8], [5 * S, 12 * S]))
    first.watermark(0, MAX_MICROS)  # every window passed: cached views evicted, residuals pending
    snapshot = pickle.dumps(first.snapshot_state())
    restored, out2 = node()
    restored.restore_state(pickle.loads(snapshot))
    restored.watermark(0, MAX_MICROS)
    while restored.lingers():
        clock.advance(20_000)
        restored.advance_processing_time(clock.now_us())
    assert sorted(out1.got) == [(7, 0, 3), (8, 0, 40)]
    assert sorted(out2.got) == [(n, i, s) for n, s in [(7, 3), (8, 40)] for i in (1, 2)]


class SparseClaims(DoFn, beam.transforms.core.RestrictionProvider):
    """Claims every position of [0, n) but outputs only every 1000th; each claim costs 1 ms of `clock` (the
    job's fake clock, advanced by the DoFn itself so that the time budget is spent deterministically)."""

    clock: FakeClock
    starts: list[int] = []

    def initial_restriction(self, n: int) -> OffsetRange:
        return OffsetRange(0, n)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(self, n: int, tracker: Any = DoFn.RestrictionParam()) -> Iterator[tuple[int, int]]:
        pos = tracker.current_restriction().start
        SparseClaims.starts.append(pos)
        while tracker.try_claim(pos):
            SparseClaims.clock.advance(1000)
            if pos % 1000 == 0:
                yield n, pos
            pos += 1


def test_a_restriction_that_claims_much_and_outputs_little_is_split_by_time_at_a_claim() -> None:
    """The time budget holds whatever the number of outputs: 5 s of claims with 5 outputs are split at a claim
    into activations of about `SPLIT_AFTER_US` each, every residual resuming where the last one stopped."""
    n = 5000
    clock = SparseClaims.clock = FakeClock()
    SparseClaims.starts = []
    node, out = _node(SparseClaims(), clock)
    node.push(0, Batch([n], [0]))
    first = list(out.got)
    assert first and len(first) < n // 1000  # the first activation stopped part-way
    assert node.lingers() or node.next_timer() is not None
    while node.next_timer() is not None:
        node.advance_processing_time(clock.now_us())
    assert out.got == [(n, i) for i in range(0, n, 1000)]  # every output once, in order
    budget_claims = splittable.SPLIT_AFTER_US // 1000
    assert len(SparseClaims.starts) >= n // (budget_claims + splittable._CLOCK_EVERY)
    assert SparseClaims.starts[0] == 0 and all(
        0 < s < n for s in SparseClaims.starts[1:]
    )  # residuals resumed
    assert SparseClaims.starts == sorted(SparseClaims.starts)
    assert not node.key_windows  # nothing left in state


def test_the_first_activations_of_a_batch_share_one_time_budget() -> None:
    """A batch of long restrictions does not hold the loop for one budget per element: once the batch's
    budget is spent, the elements not started wait in state and run in later activations."""
    n = 3000
    clock = SparseClaims.clock = FakeClock()
    SparseClaims.starts = []
    node, out = _node(SparseClaims(), clock)
    node.push(0, Batch([n, n + 1, n + 2], [0, 0, 0]))
    assert clock.monotonic_us() < 2 * splittable.SPLIT_AFTER_US  # about one budget, not three
    assert SparseClaims.starts == [0]  # only the first element ran; the others never started
    assert len(node.key_windows) == 3
    while node.next_timer() is not None:
        node.advance_processing_time(clock.now_us())
    assert sorted(out.got) == sorted((m, i) for m in (n, n + 1, n + 2) for i in range(0, m, 1000))
    assert not node.key_windows


def test_elements_finished_in_their_first_activation_leave_nothing_for_the_checkpoint() -> None:
    """Under incremental checkpoints, an element that finishes at once never stored state: its key is neither
    marked changed nor deleted; one that leaves a residual is written, and deleted once it finishes."""
    from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier
    from millstream.state import MemoryBackend

    backend = MemoryBackend()
    clock = FakeClock()
    node, out = _node(Positions(OffsetRestrictionTracker), clock)
    tier = StateTier("Sdf", backend, SpillArea(None), 0)
    node.attach_state_tier(tier)

    def checkpoint(cid: int) -> tuple[list[Any], list[bytes]]:
        cap = node.capture_incremental()
        ck = tier.checkpoint(cid, cid, cap.header, cap.entries, cap.deletes, cap.encoded)
        backend.write_batch(list(ck.puts()), list(ck.deletes()), sync=True)
        tier.committed(ck)
        cap.release()
        return cap.encoded, cap.deletes

    node.push(0, Batch([3] * 1000, [0] * 1000))
    assert len(out.got) == 3000 and not node.key_windows
    assert node.tiered.touched == set()  # nothing changed
    assert checkpoint(1) == ([], [])  # no entry written, no delete

    long = splittable.SPLIT_AFTER_OUTPUTS + 5
    node.push(0, Batch([3, long, 3], [0, 0, 0]))
    assert len(node.tiered.touched) == 1  # only the element that left a residual
    encoded, deletes = checkpoint(2)
    assert len(encoded) == 3 and deletes == []  # its entry (namespace, key, value), nothing deleted
    node.advance_processing_time(clock.now_us())
    assert not node.key_windows
    encoded, deletes = checkpoint(3)
    assert encoded == [] and len(deletes) == 1  # finished: the stored entry is deleted


def test_under_a_test_stream_a_restriction_deferred_forever_fails_the_job_naming_its_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a TestStream's last event the fake clock runs on to deferred residuals, but not forever: an
    unbounded restriction that defers for ever fails the job after `MAX_CLOCK_JUMPS` jumps, naming the step,
    instead of spinning until a timeout; a bounded one below the cap still finishes."""
    from millstream.engine.runtime.operators import test_stream
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.testing.test_stream import TestStream

    monkeypatch.setattr(test_stream, "MAX_CLOCK_JUMPS", 10)
    stream = TestStream().add_elements([("u", 10**9)]).advance_watermark_to_infinity()
    with pytest.raises(Exception, match=r"jumped to the next timer 10 times and step\(s\) 'Forever'") as info:
        with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
            _ = p | stream | "Forever" >> beam.ParDo(OnePerFiveSeconds())
    assert "never finishes" in str(info.value)

    stream = TestStream().add_elements([("b", 8)]).advance_watermark_to_infinity()
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
        out = p | stream | beam.ParDo(OnePerFiveSeconds())
        assert_that(out, equal_to([("b", i) for i in range(8)]))
