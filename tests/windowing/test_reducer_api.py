"""The reducer's API: panes, dropped data, watermarks, processing-time timers, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.windowing.combine_fns import ListCombineFn, SumCombineFn
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer

S = 1_000_000  # one second in µs
FACTORIES = [pytest.param(Reducer, id="general"), pytest.param(create_reducer, id="fast")]


@pytest.mark.parametrize("factory", FACTORIES)
def test_on_time_pane_shape(factory: Any) -> None:
    """A pane is (key, window, value, timestamp µs, PaneInfo); the ON_TIME pane fires at the end."""
    r = factory(
        W.FixedWindows(10), T.DefaultTrigger(), T.AccumulationMode.DISCARDING, 0, combine_fn=SumCombineFn()
    )
    assert r.process_bundle(["a", "a", "b"], [1, 2, 5], [1 * S, 9 * S, 3 * S]) == []
    assert r.advance_input_watermark(9 * S) == []
    panes = sorted(r.advance_input_watermark(10 * S), key=lambda p: p[0])
    on_time = W.PaneInfo(True, False, W.PaneInfoTiming.ON_TIME, 0, 0)
    assert panes == [
        ("a", W.IntervalWindow(0, 10), 3, 10 * S - 1, on_time),
        ("b", W.IntervalWindow(0, 10), 5, 10 * S - 1, on_time),
    ]


@pytest.mark.parametrize("factory", FACTORIES)
def test_late_data_dropped_counted_and_collected(factory: Any) -> None:
    """Beyond end + allowed lateness data is dropped (strictly after), counted and handed over."""
    r = factory(
        W.FixedWindows(10),
        T.DefaultTrigger(),
        T.AccumulationMode.ACCUMULATING,
        5 * S,
        combine_fn=ListCombineFn(),
        collect_dropped=True,
    )
    r.process_bundle(["a"], [1], [2 * S])
    r.advance_input_watermark(15 * S)
    late = r.process_bundle(["a", "a"], [2, 3], [3 * S, 14 * S])  # 15 == end + lateness: still accepted
    assert [(p[0], p[2], p[4].timing, p[4].index) for p in late] == [("a", [1, 2], W.PaneInfoTiming.LATE, 1)]
    r.advance_input_watermark(16 * S)
    assert r.process_bundle(["a"], [4], [5 * S]) == []
    assert r.dropped_late == 1
    assert r.take_dropped() == [("a", 4, 5 * S, "late", W.IntervalWindow(0, 10))]
    assert r.take_dropped() == []


@pytest.mark.parametrize("factory", FACTORIES)
def test_sliding_windows_drop_per_window(factory: Any) -> None:
    """An element can be too late for its older sliding windows and on time for newer ones (subtlety 7)."""
    r = factory(W.SlidingWindows(10, 5), None, T.AccumulationMode.DISCARDING, 0, combine_fn=ListCombineFn())
    r.advance_input_watermark(11 * S)
    r.process_bundle(["a"], [1], [8 * S])  # windows [5,15) (open) and [0,10) (expired)
    assert r.dropped_late == 1
    panes = r.advance_input_watermark(MAX_MICROS)
    assert [(p[1], p[2]) for p in panes] == [(W.IntervalWindow(5, 15), [1])]


@pytest.mark.parametrize("factory", FACTORIES)
def test_finished_trigger_drops_as_closed(factory: Any) -> None:
    """After AfterWatermark() finished, data within allowed lateness is dropped as 'closed' (subtlety 6)."""
    r = factory(
        W.FixedWindows(10), T.AfterWatermark(), T.AccumulationMode.ACCUMULATING, 20 * S, collect_dropped=True
    )
    r.process_bundle(["k"], ["x"], [1 * S])
    (pane,) = r.advance_input_watermark(12 * S)
    assert pane[4].is_last and pane[4].timing == W.PaneInfoTiming.ON_TIME
    assert r.process_bundle(["k"], ["y"], [2 * S]) == []
    assert r.dropped_closed == 1 and r.take_dropped()[0][3] == "closed"


def test_watermark_never_moves_backwards() -> None:
    """Moving the input watermark or processing time backwards is a bug of the caller."""
    r = Reducer(W.FixedWindows(10))
    r.advance_input_watermark(5 * S)
    with pytest.raises(AssertionError):
        r.advance_input_watermark(4 * S)
    r.advance_processing_time(5)
    with pytest.raises(AssertionError):
        r.advance_processing_time(4)


@pytest.mark.parametrize("factory", FACTORIES)
def test_output_watermark_held_by_pending_windows(factory: Any) -> None:
    """Output watermark = min(input watermark, earliest hold - 1µs); released when the pane fires."""
    r = factory(W.FixedWindows(10), None, T.AccumulationMode.DISCARDING, 0)
    assert r.output_watermark() == MIN_MICROS
    r.process_bundle(["a"], [1], [5 * S])
    r.advance_input_watermark(8 * S)
    assert r.output_watermark() == 8 * S
    r.process_bundle(["b"], [1], [25 * S])
    r.advance_input_watermark(15 * S)
    assert r.output_watermark() == 15 * S
    r.advance_input_watermark(40 * S)
    assert r.output_watermark() == 40 * S


def test_output_watermark_earliest_combiner() -> None:
    """With OUTPUT_AT_EARLIEST the hold is the earliest element, so the output watermark stays behind it."""
    r = Reducer(
        W.FixedWindows(100), None, T.AccumulationMode.DISCARDING, 0, W.TimestampCombiner.OUTPUT_AT_EARLIEST
    )
    r.process_bundle(["a", "a"], [1, 2], [30 * S, 20 * S])
    r.advance_input_watermark(50 * S)
    assert r.output_watermark() == 20 * S - 1
    (pane,) = r.advance_input_watermark(100 * S)
    assert pane[3] == 20 * S
    assert r.output_watermark() == 100 * S


def test_processing_time_timers() -> None:
    """AfterProcessingTime sets a timer the runtime can ask for, and fires when the clock reaches it."""
    r = Reducer(
        W.GlobalWindows(),
        T.Repeatedly(T.AfterProcessingTime(5)),
        T.AccumulationMode.DISCARDING,
        0,
        processing_time_us=100 * S,
    )
    assert r.next_processing_time_timer() is None
    r.process_bundle(["a"], [1], [0])
    assert r.next_processing_time_timer() == 105 * S
    assert r.advance_processing_time(104 * S) == []
    (pane,) = r.advance_processing_time(105 * S)
    assert pane[2] == [1] and pane[1] is W.GlobalWindow() and pane[4].timing == W.PaneInfoTiming.EARLY
    assert r.next_processing_time_timer() is None


def test_final_pane_at_expiry_deviation_1() -> None:
    """Data a trigger never emitted comes out in one last pane when the window expires (Java's behaviour)."""
    kwargs: dict[str, Any] = {"window_fn": W.FixedWindows(10), "trigger": T.Repeatedly(T.AfterCount(3))}
    r = Reducer(**kwargs, accumulation_mode=T.AccumulationMode.DISCARDING, allowed_lateness_us=5 * S)
    r.process_bundle(["a", "a"], [1, 2], [1 * S, 2 * S])
    assert r.advance_input_watermark(15 * S) == []  # end + lateness not passed yet
    (pane,) = r.advance_input_watermark(15 * S + 1)
    assert pane[2] == [1, 2]
    assert pane[4] == W.PaneInfo(True, True, W.PaneInfoTiming.ON_TIME, 0, 0)
    assert r.state_size() == 0
    compat = Reducer(**kwargs, accumulation_mode=T.AccumulationMode.DISCARDING, beam_python_compat=True)
    compat.process_bundle(["a", "a"], [1, 2], [1 * S, 2 * S])
    assert compat.advance_input_watermark(MAX_MICROS) == []  # Beam's Python SDK loses them (subtlety 4)


def test_final_pane_is_late_after_an_on_time_pane() -> None:
    """The expiry pane of a window that already fired ON_TIME is LATE, with the next indexes."""
    r = Reducer(
        W.FixedWindows(10),
        T.AfterWatermark(late=T.AfterCount(3)),
        T.AccumulationMode.DISCARDING,
        10 * S,
        combine_fn=ListCombineFn(),
    )
    r.process_bundle(["a"], [1], [1 * S])
    (on_time,) = r.advance_input_watermark(10 * S)
    assert on_time[4].timing == W.PaneInfoTiming.ON_TIME
    r.process_bundle(["a"], [2], [2 * S])
    (final,) = r.advance_input_watermark(MAX_MICROS)
    assert final[2] == [2] and final[4] == W.PaneInfo(False, True, W.PaneInfoTiming.LATE, 1, 1)


def test_processing_timers_against_the_watermark_option() -> None:
    """Replay (event time far behind processing time) with early processing-time firings.

    Beam's Python SDK (``processing_timers_see_watermark=False``, as in compat mode) treats the
    processing-time timer's time as the watermark: the first early timer finishes AfterWatermark with a LATE
    pane. With the flag (the default, deviation 3) the early pane is EARLY and the ON_TIME pane comes at the end.
    """
    trigger = T.AfterWatermark(early=T.AfterProcessingTime(5))
    results = []
    for flag in (False, True):
        r = Reducer(
            W.FixedWindows(10),
            trigger,
            T.AccumulationMode.ACCUMULATING,
            0,
            combine_fn=ListCombineFn(),
            processing_time_us=1_700_000_000 * S,
            processing_timers_see_watermark=flag,
        )
        r.process_bundle(["a"], [1], [1 * S])
        panes = r.advance_processing_time(1_700_000_005 * S)
        panes += r.advance_input_watermark(MAX_MICROS)
        results.append([(p[2], p[4].timing.name, p[4].is_last) for p in panes])
    assert results[0] == [([1], "LATE", True)]
    assert results[1] == [([1], "EARLY", False), ([1], "ON_TIME", True)]
