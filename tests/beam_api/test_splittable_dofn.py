"""Splittable DoFns (`RestrictionProvider`, `DoFn.RestrictionParam`) and `io.restriction_trackers`: every
restriction of every element is processed to its end with a tracker that checks the claims (resuming,
deferring and checkpointing restrictions: test_sdf_resume.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from millstream.testing.util import assert_that, equal_to
from millstream.transforms.userstate import ReadModifyWriteStateSpec


class LinesProvider(beam.transforms.core.RestrictionProvider):
    """A file's bytes as offsets, split in parts of `part` bytes (the snippets' FileToWordsRestrictionProvider)."""

    def __init__(self, part: int) -> None:
        self.part = part

    def initial_restriction(self, file_name: str) -> OffsetRange:
        return OffsetRange(0, os.stat(file_name).st_size)

    def split(self, file_name: str, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield from restriction.split(self.part)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)


class ReadLines(beam.DoFn):
    """Every line that starts inside the restriction (a line belongs to the part its first byte is in)."""

    def process(
        self, file_name: str, tracker: Any = beam.DoFn.RestrictionParam(LinesProvider(10))
    ) -> Iterator[str]:
        r = tracker.current_restriction()
        with open(file_name, "rb") as f:
            if r.start > 0:  # skip the line that started in the previous part
                f.seek(r.start - 1)
                f.readline()
            while tracker.try_claim(f.tell()):
                line = f.readline()
                if not line:
                    return
                yield line.decode().rstrip("\n")


def test_a_splittable_dofn_reads_every_line_once_across_restrictions(tmp_path: Any) -> None:
    lines = [f"line {i} " + "x" * (i % 7) for i in range(40)]
    path = tmp_path / "in.txt"
    path.write_text("".join(line + "\n" for line in lines))
    with beam.Pipeline() as p:
        out = p | beam.Create([str(path)]) | beam.ParDo(ReadLines())
        assert_that(out, equal_to(lines))


class Positions(beam.DoFn, beam.transforms.core.RestrictionProvider):
    """The DoFn is its own provider (``RestrictionParam()`` without one): the positions [0, n) of element n,
    with the element's timestamp, which the runtime still supplies beside the tracker."""

    def initial_restriction(self, n: int) -> OffsetRange:
        return OffsetRange(0, n)

    def split(self, n: int, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield from restriction.split(2)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self,
        n: int,
        tracker: Any = beam.DoFn.RestrictionParam(),
        ts: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[tuple[int, int, float]]:
        pos = tracker.current_restriction().start
        while tracker.try_claim(pos):
            yield n, pos, float(ts)
            pos += 1


def test_the_dofn_itself_as_provider_and_other_parameters_beside_the_tracker() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([(3, 10), (5, 20)])
            | beam.MapTuple(lambda n, t: beam.window.TimestampedValue(n, t))
            | beam.ParDo(Positions())
        )
        expected = [(3, i, 10.0) for i in range(3)] + [(5, i, 20.0) for i in range(5)]
        assert_that(out, equal_to(expected))


class StopsEarly(Positions):
    """Returns after the first claim: the rest of the restriction was never claimed."""

    def process(self, n: int, tracker: Any = beam.DoFn.RestrictionParam()) -> Iterator[int]:  # type: ignore[override]
        if tracker.try_claim(tracker.current_restriction().start):
            yield n


def test_a_restriction_left_unclaimed_fails_naming_the_offsets() -> None:
    with pytest.raises(Exception, match=r"not done: offsets \[0, 2\) were not claimed"):
        with beam.Pipeline() as p:
            _ = p | beam.Create([4]) | beam.ParDo(StopsEarly())


class DefersWithState(Positions):
    """Defers, but its user state (per user key) has no meaning in a later activation keyed by element."""

    COUNT = ReadModifyWriteStateSpec("count", beam.coders.PickleCoder())

    def initial_restriction(self, kv: tuple[str, int]) -> OffsetRange:  # type: ignore[override]
        return OffsetRange(0, kv[1])

    def process(  # type: ignore[override]
        self,
        kv: tuple[str, int],
        tracker: Any = beam.DoFn.RestrictionParam(),
        count: Any = beam.DoFn.StateParam(COUNT),
    ) -> Iterator[str]:
        tracker.defer_remainder()
        yield kv[0]


def test_defer_remainder_where_a_restriction_cannot_be_resumed_is_a_clear_error() -> None:
    """Deferring works (tests/beam_api/test_sdf_resume.py: side inputs, a bundle finalizer, contexts too)
    unless a later activation could not be given the DoFn's parameters again: the error says why."""
    with pytest.raises(
        Exception, match="defer_remainder needs a resumable splittable DoFn.*state, timer or key"
    ):
        with beam.Pipeline() as p:
            _ = p | beam.Create([("a", 4)]) | beam.ParDo(DefersWithState())


class NoProvider(beam.DoFn):
    def process(self, element: Any, tracker: Any = beam.DoFn.RestrictionParam()) -> Iterator[Any]:
        yield element


def test_restriction_param_without_a_provider_is_refused_when_applied() -> None:
    with pytest.raises(TypeError, match="RestrictionParam needs a RestrictionProvider"):
        beam.ParDo(NoProvider())


class _NoCheckDone:
    """A tracker that claims, but cannot say whether its restriction was claimed to the end."""

    def __init__(self, restriction: OffsetRange) -> None:
        self.restriction = restriction

    def current_restriction(self) -> OffsetRange:
        return self.restriction

    def try_claim(self, position: int) -> bool:
        return self.restriction.start <= position < self.restriction.stop


class _NoCheckDoneProvider(beam.transforms.core.RestrictionProvider):
    def initial_restriction(self, element: int) -> OffsetRange:
        return OffsetRange(0, element)

    def create_tracker(self, restriction: OffsetRange) -> Any:
        return _NoCheckDone(restriction)

    def restriction_size(self, element: int, restriction: OffsetRange) -> int:
        return restriction.size()


def test_a_tracker_without_check_done_is_refused_naming_the_step() -> None:
    class Claims(beam.DoFn):
        def process(
            self, element: int, tracker: Any = beam.DoFn.RestrictionParam(_NoCheckDoneProvider())
        ) -> Iterator[Any]:
            yield element

    with pytest.raises(
        Exception, match=r"ParDo\(Claims\): a RestrictionTracker needs .*_NoCheckDone lacks check_done"
    ):
        with beam.Pipeline() as p:
            _ = p | beam.Create([3]) | beam.ParDo(Claims())


@pytest.mark.parametrize("stop,size,minimum", [(10, 4, 1), (12, 4, 1), (17, 8, 1), (100, 30, 1), (10, 3, 4)])
def test_offset_range_split_is_beams(stop: int, size: int, minimum: int) -> None:
    from apache_beam.io import restriction_trackers as beams

    ours = [(r.start, r.stop) for r in OffsetRange(0, stop).split(size, minimum)]
    theirs = [(r.start, r.stop) for r in beams.OffsetRange(0, stop).split(size, minimum)]
    assert ours == theirs


def test_offset_range_split_at_and_bad_ranges() -> None:
    assert OffsetRange(3, 9).split_at(5) == (OffsetRange(3, 5), OffsetRange(5, 9))
    with pytest.raises(ValueError, match="start 5 is after stop 2"):
        OffsetRange(5, 2)


def test_offset_restriction_tracker_claims_checkpoints_and_checks_done() -> None:
    t = OffsetRestrictionTracker(OffsetRange(0, 10))
    assert t.try_claim(0) and t.try_claim(3)
    assert t.current_progress().fraction_completed == pytest.approx(0.3)
    assert t.try_split(0) == (OffsetRange(0, 4), OffsetRange(4, 10))  # a checkpoint: the rest is residual
    assert t.try_split(0.5) is None  # only once
    assert not t.try_claim(4)
    t.check_done()
    with pytest.raises(ValueError, match="strictly increase"):
        t.try_claim(2)
    with pytest.raises(ValueError, match=r"not done: offsets \[0, 5\)"):
        OffsetRestrictionTracker(OffsetRange(0, 5)).check_done()


class ChunkEstimates(Positions):
    """With a side input and a bundle finalizer (supplied to every activation), each chunk's manual estimator
    starts from its provider's initial state: the chunk's start, as seconds."""

    def process(  # type: ignore[override]
        self,
        n: int,
        side: int,
        tracker: Any = beam.DoFn.RestrictionParam(),
        estimator: Any = beam.DoFn.WatermarkEstimatorParam(),
        fin: Any = beam.DoFn.BundleFinalizerParam,
    ) -> Iterator[tuple[int, float]]:
        pos = tracker.current_restriction().start
        first = estimator.current_watermark()
        while tracker.try_claim(pos):
            yield pos, float(first) + side
            pos += 1

    def initial_estimator_state(self, n: int, restriction: OffsetRange) -> Any:
        return beam.utils.timestamp.Timestamp(restriction.start)

    def create_watermark_estimator(self, state: Any) -> Any:
        from millstream.io.watermark_estimators import ManualWatermarkEstimator

        return ManualWatermarkEstimator(state)


def test_a_restriction_run_to_its_end_starts_its_estimator_from_the_initial_state() -> None:
    with beam.Pipeline() as p:
        side = p | "Side" >> beam.Create([100])
        out = p | beam.Create([4]) | beam.ParDo(ChunkEstimates(), beam.pvalue.AsSingleton(side))
        assert_that(out, equal_to([(0, 100.0), (1, 100.0), (2, 102.0), (3, 102.0)]))
