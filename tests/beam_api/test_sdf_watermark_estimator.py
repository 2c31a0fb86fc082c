"""`DoFn.WatermarkEstimatorParam` in splittable DoFns: an estimator per restriction from the provider, set or fed
by `process`, compared with Beam's DirectRunner on the same DoFns; the estimator holds (never advances) the
step's output watermark; a wall-time estimator reads the job's clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model.timestamp import MIN_MICROS
from millstream.io.watermark_estimators import (
    ManualWatermarkEstimator,
    MonotonicWatermarkEstimator,
    WalltimeWatermarkEstimator,
)
from millstream.testing.test_stream import TestStream
from millstream.testing.util import assert_that, equal_to

from support.beam_harness import engine

ELEMENTS = [("a", 7), ("b", 2)]


def _dofns(b: Any) -> dict[str, Any]:
    """The same splittable DoFns written against `b` (millstream or apache_beam)."""
    wm = b.io.watermark_estimators
    rt = b.io.restriction_trackers
    Timestamp = b.utils.timestamp.Timestamp

    class ChunksOf3(b.transforms.core.RestrictionProvider):
        def initial_restriction(self, element: Any) -> Any:
            return rt.OffsetRange(0, element[1])

        def create_tracker(self, restriction: Any) -> Any:
            return rt.OffsetRestrictionTracker(restriction)

        def split(self, element: Any, restriction: Any) -> Iterator[Any]:
            yield from restriction.split(3)

        def restriction_size(self, element: Any, restriction: Any) -> float:
            return restriction.size()

    class StartsAtRestriction(b.transforms.core.WatermarkEstimatorProvider):
        """Manual estimators starting at their restriction's start: shows one estimator per restriction."""

        def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
            return Timestamp(restriction.start)

        def create_watermark_estimator(self, estimator_state: Any) -> Any:
            return wm.ManualWatermarkEstimator(estimator_state)

    class FromZero(b.transforms.core.WatermarkEstimatorProvider):
        """Monotonic estimators starting at 0 (Beam's default provider starts at None, and Beam's estimator then
        fails comparing its first observed timestamp with None; millstream's does not)."""

        def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
            return Timestamp(0)

        def create_watermark_estimator(self, estimator_state: Any) -> Any:
            return wm.MonotonicWatermarkEstimator(estimator_state)

    def seconds(t: Any) -> Any:
        return None if t is None else t.micros / 1e6

    class Manual(b.DoFn):
        """(name, i, watermark before the claim) at event time i; sets the watermark to i first."""

        def process(
            self,
            element: Any,
            tracker: Any = b.DoFn.RestrictionParam(ChunksOf3()),
            estimator: Any = b.DoFn.WatermarkEstimatorParam(StartsAtRestriction()),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            for i in range(r.start, r.stop):
                if not tracker.try_claim(i):
                    return
                before = seconds(estimator.current_watermark())
                estimator.set_watermark(Timestamp(i))
                yield b.window.TimestampedValue((element[0], i, before), i)

    class Monotonic(b.DoFn):
        """(name, i, watermark before the output) at event time 10*i: the watermark follows the outputs."""

        def process(
            self,
            element: Any,
            tracker: Any = b.DoFn.RestrictionParam(ChunksOf3()),
            estimator: Any = b.DoFn.WatermarkEstimatorParam(FromZero()),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            for i in range(r.start, r.stop):
                if not tracker.try_claim(i):
                    return
                yield b.window.TimestampedValue(
                    (element[0], i, seconds(estimator.current_watermark())), 10 * i
                )

    class OwnProvider(b.DoFn, b.transforms.core.WatermarkEstimatorProvider):
        """The DoFn is its own estimator provider (a WatermarkEstimatorParam without one), as Beam allows."""

        def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
            return Timestamp(100 + restriction.start)

        def create_watermark_estimator(self, estimator_state: Any) -> Any:
            return wm.ManualWatermarkEstimator(estimator_state)

        def process(
            self,
            element: Any,
            tracker: Any = b.DoFn.RestrictionParam(ChunksOf3()),
            estimator: Any = b.DoFn.WatermarkEstimatorParam(),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            for i in range(r.start, r.stop):
                if not tracker.try_claim(i):
                    return
                yield b.window.TimestampedValue((element[0], i, seconds(estimator.current_watermark())), i)

    return {"manual": Manual, "monotonic": Monotonic, "own": OwnProvider, "chunks": ChunksOf3}


def _pipeline(b: Any, p: Any, kind: str) -> Any:
    """Outputs with their timestamps, and the outputs grouped in FixedWindows(5) (name, window start, i's)."""
    out = p | b.Create(ELEMENTS) | b.ParDo(_dofns(b)[kind]())

    def stamped(v: Any, t: Any = b.DoFn.TimestampParam) -> Any:
        return (*v, t.micros / 1e6)

    def in_window(kv: Any, w: Any = b.DoFn.WindowParam) -> Any:
        return (kv[0], w.start.micros / 1e6, sorted(kv[1]))

    grouped = (
        out
        | b.WindowInto(b.window.FixedWindows(5))
        | b.Map(lambda v: (v[0], v[1]))
        | b.GroupByKey()
        | b.Map(in_window)
    )
    return (out | b.Map(stamped)), grouped


def _run(b: Any, kind: str, tmp_path: Any) -> dict[str, list[Any]]:
    """Run on `b`'s runner; results through files, as Beam's matchers run on pickled copies."""
    found: dict[str, list[Any]] = {}
    paths = {name: str(tmp_path / f"{b.__name__}-{kind}-{name}.json") for name in ("out", "grouped")}

    def keeper(path: str) -> Any:
        def keep(actual: list[Any]) -> None:
            with open(path, "w") as f:
                json.dump(sorted(json.loads(json.dumps(actual)), key=repr), f)

        return keep

    assert_fn = b.testing.util.assert_that
    with b.Pipeline(runner="DirectRunner") as p:
        out, grouped = _pipeline(b, p, kind)
        assert_fn(out, keeper(paths["out"]), label="KeepOut")
        assert_fn(grouped, keeper(paths["grouped"]), label="KeepGrouped")
    for name, path in paths.items():
        with open(path) as f:
            found[name] = json.load(f)
    return found


def _beam_run(kind: str, tmp_path: Any) -> dict[str, list[Any]]:
    pytest.importorskip("apache_beam")
    ab = engine("beam")
    import apache_beam.io.restriction_trackers  # noqa: F401  (Beam's modules used by the DoFns)
    import apache_beam.io.watermark_estimators  # noqa: F401
    import apache_beam.testing.util  # noqa: F401

    return _run(ab, kind, tmp_path)


def _ours(kind: str, tmp_path: Any) -> dict[str, list[Any]]:
    import millstream.io.restriction_trackers  # noqa: F401
    import millstream.io.watermark_estimators  # noqa: F401
    import millstream.testing.util  # noqa: F401

    return _run(beam, kind, tmp_path)


def test_a_manual_estimator_per_restriction_starts_at_its_state_and_is_set_by_process(tmp_path: Any) -> None:
    ours = _ours("manual", tmp_path)
    # each chunk of 3 has its own estimator, starting at the chunk's start; then it is the last i set
    assert ours["out"] == sorted(
        [["a", i, float(i if i % 3 == 0 else i - 1), float(i)] for i in range(7)]
        + [["b", 0, 0.0, 0.0], ["b", 1, 0.0, 1.0]],
        key=repr,
    )
    assert ours["grouped"] == sorted(
        [["a", 0.0, [0, 1, 2, 3, 4]], ["a", 5.0, [5, 6]], ["b", 0.0, [0, 1]]], key=repr
    )
    assert ours == _beam_run("manual", tmp_path)


def test_a_monotonic_estimator_follows_the_outputs_timestamps_as_beams(tmp_path: Any) -> None:
    ours = _ours("monotonic", tmp_path)
    # before the first output of a restriction: its initial state; then the previous output's timestamp
    expected = [["a", i, 0.0 if i % 3 == 0 else 10.0 * (i - 1), 10.0 * i] for i in range(7)]
    expected += [["b", 0, 0.0, 0.0], ["b", 1, 0.0, 10.0]]
    assert ours["out"] == sorted(expected, key=repr)
    assert ours == _beam_run("monotonic", tmp_path)


def test_the_default_monotonic_provider_starts_without_a_watermark() -> None:
    """Beam's default monotonic estimator fails on its first output (it compares a timestamp with None); ours
    starts with no watermark, then follows the outputs."""
    Timestamp = beam.utils.timestamp.Timestamp

    class FromNothing(beam.DoFn):
        def process(
            self,
            element: Any,
            tracker: Any = beam.DoFn.RestrictionParam(_dofns(beam)["chunks"]()),
            estimator: Any = beam.DoFn.WatermarkEstimatorParam(
                MonotonicWatermarkEstimator.default_provider()
            ),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            for i in range(r.start, r.stop):
                if not tracker.try_claim(i):
                    return
                mark = estimator.current_watermark()
                yield (i, None if mark is None else mark.micros)
                assert estimator.current_watermark() == Timestamp(
                    micros=MIN_MICROS
                )  # the output's (Create's)

    with beam.Pipeline() as p:
        out = p | beam.Create([("b", 2)]) | beam.ParDo(FromNothing())
        assert_that(out, equal_to([(0, None), (1, MIN_MICROS)]))


def test_the_dofn_itself_as_estimator_provider_as_beams(tmp_path: Any) -> None:
    ours = _ours("own", tmp_path)
    assert ours["out"][:4] == [
        ["a", 0, 100.0, 0.0],
        ["a", 1, 100.0, 1.0],
        ["a", 2, 100.0, 2.0],
        ["a", 3, 103.0, 3.0],
    ]
    assert ours == _beam_run("own", tmp_path)


def test_an_estimator_set_ahead_of_the_input_never_advances_the_output_watermark() -> None:
    """An estimator set far ahead of the input does not move the step's output watermark: the outputs that
    follow, at earlier times, are on time downstream and every window holds them."""
    Timestamp = beam.utils.timestamp.Timestamp

    class AheadOfTime(beam.DoFn):
        def process(
            self,
            element: Any,
            tracker: Any = beam.DoFn.RestrictionParam(_dofns(beam)["chunks"]()),
            estimator: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            for i in range(r.start, r.stop):
                if not tracker.try_claim(i):
                    return
                estimator.set_watermark(Timestamp(1000 + i))  # a promise broken by the next output
                yield beam.window.TimestampedValue(i, i)

    events = TestStream().advance_watermark_to(0).add_elements([("a", 4)]).advance_watermark_to_infinity()
    with beam.Pipeline() as p:
        grouped = (
            p
            | events
            | beam.ParDo(AheadOfTime())
            | beam.WindowInto(beam.window.FixedWindows(2))
            | beam.Map(lambda i: ("k", i))
            | beam.GroupByKey()
            | beam.MapTuple(lambda k, vs: sorted(vs))
        )
        # with the watermark at 1000 s, the windows [0, 2) and [2, 4) would have closed and dropped these
        assert_that(grouped, equal_to([[0, 1], [2, 3]]))


def test_a_walltime_estimator_reads_the_jobs_clock() -> None:
    """Under TestStream the job's clock is a FakeClock: the estimator's watermark is its time, not the machine's."""

    class Clocked(beam.DoFn):
        def process(
            self,
            element: Any,
            tracker: Any = beam.DoFn.RestrictionParam(_dofns(beam)["chunks"]()),
            estimator: Any = beam.DoFn.WatermarkEstimatorParam(WalltimeWatermarkEstimator.default_provider()),
        ) -> Iterator[Any]:
            r = tracker.current_restriction()
            if tracker.try_claim(r.start):
                yield (element[0], estimator.current_watermark().micros)
            for i in range(r.start + 1, r.stop):
                if not tracker.try_claim(i):
                    return

    events = (
        TestStream()
        .advance_processing_time(5)
        .add_elements([("a", 1)])
        .advance_processing_time(10)
        .add_elements([("b", 1)])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline() as p:
        assert_that(p | events | beam.ParDo(Clocked()), equal_to([("a", 5_000_000), ("b", 15_000_000)]))


def test_a_walltime_estimator_without_a_clock_says_so() -> None:
    with pytest.raises(RuntimeError, match="WalltimeWatermarkEstimator has no clock"):
        WalltimeWatermarkEstimator(None).current_watermark()


def test_a_watermark_estimator_needs_a_provider_naming_the_step() -> None:
    class NoProvider(beam.DoFn):
        def process(
            self,
            element: Any,
            tracker: Any = beam.DoFn.RestrictionParam(_dofns(beam)["chunks"]()),
            estimator: Any = beam.DoFn.WatermarkEstimatorParam(),
        ) -> Iterator[Any]:
            yield element

    with pytest.raises(
        TypeError, match=r"ParDo\(NoProvider\): DoFn.WatermarkEstimatorParam needs a Watermark"
    ):
        beam.ParDo(NoProvider())
