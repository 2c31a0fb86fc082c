"""Splittable DoFns that resume: `defer_remainder` (polling), the runtime's checkpoint split after a budget
of outputs, a restriction's progress carried by a snapshot into a restored step, and the watermark held at
the estimator's watermark while a residual is pending (Beam's semantics).

Most tests drive the step by hand (`SplittableParDoNode` with a FakeClock and a collector, no executor), so
time and watermarks are exact; the pipeline tests run whole bounded jobs, one of them beside Beam's
DirectRunner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node
from millstream.io.restriction_trackers import (
    OffsetRange,
    OffsetRestrictionTracker,
)
from millstream.testing.util import assert_that, equal_to
from millstream.utils.timestamp import Duration

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
