"""Deviation 3: a processing-time timer does not move the event-time clock.

A replay (event time in 2023, processing time in 2026) with ``AfterWatermark(early=AfterProcessingTime(5))``
must give EARLY panes, then one ON_TIME pane once the watermark passes the window, and lose nothing; the
panes must not depend on how far event time lags the wall clock. ``beam_python_compat=True`` keeps the
Python SDK's behaviour (the first early firing is a final LATE pane and the rest of the window is dropped).
"""

from __future__ import annotations

from typing import Any

import pytest

from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.windowing.combine_fns import SumCombineFn
from millstream.engine.runtime.windowing.reduce_fn_runner import create_reducer

import support.windowing as support_windowing


def _helpers() -> Any:
    """The shared windowing test helpers (tests/support/windowing.py)."""
    return support_windowing


H = _helpers()

S = 1_000_000
WALL_CLOCK = 1_796_000_000 * S  # December 2026
EVENTS_2023 = 1_700_000_040 * S  # November 2023, 40 s into a minute
EVENTS_2030 = 1_900_000_020 * S  # March 2030: event time ahead of the wall clock


def replay(event_start_us: int, **options: Any) -> tuple[list[tuple[int, str, int, bool]], int]:
    """600 elements of one key, 10 per second of event time and processing time, watermark 5 s behind.

    Returns the panes as (window start relative to the first element, timing, count, is_last) and the
    number of dropped elements.
    """
    r = create_reducer(
        W.FixedWindows(60),
        T.AfterWatermark(early=T.AfterProcessingTime(5)),
        T.AccumulationMode.ACCUMULATING,
        30 * S,
        combine_fn=SumCombineFn(),
        processing_time_us=WALL_CLOCK,
        **options,
    )
    panes = []
    for second in range(60):
        now = WALL_CLOCK + second * S
        panes += r.advance_processing_time(now)
        t = event_start_us + second * S
        panes += r.process_bundle(["k"] * 10, [1] * 10, [t] * 10)
        panes += r.advance_input_watermark(t - 5 * S)
    panes += r.advance_input_watermark(MAX_MICROS)
    rows = [(p[1].start.micros - event_start_us, p[4].timing.name, p[2], p[4].is_last) for p in panes]
    return rows, r.dropped_late + r.dropped_closed


def test_replay_loses_nothing_and_panes_go_early_then_on_time() -> None:
    rows, dropped = replay(EVENTS_2023)
    assert dropped == 0
    for start in {s for s, *_ in rows}:
        window = [(timing, n, last) for s, timing, n, last in rows if s == start]
        timings = [timing for timing, _, _ in window]
        assert timings[:-1] == ["EARLY"] * (len(window) - 1) and timings[-1] == "ON_TIME", window
        assert [last for *_, last in window] == [False] * (len(window) - 1) + [True]
    # the final pane of each window holds all its elements (accumulating); the two windows hold 600
    assert sum(n for _, timing, n, _ in rows if timing == "ON_TIME") == 600


def test_panes_do_not_depend_on_how_far_event_time_lags() -> None:
    behind, _ = replay(EVENTS_2023)
    ahead, _ = replay(EVENTS_2030)
    assert behind == ahead
    assert any(timing == "EARLY" for _, timing, _, _ in behind)


def test_python_compat_mode_keeps_the_python_sdk_quirk() -> None:
    rows, dropped = replay(EVENTS_2023, beam_python_compat=True)
    # the first early firing is taken for the watermark: a LATE, final pane #0, then the window is closed
    first = rows[0]
    assert first[1:] == ("LATE", first[2], True)
    assert dropped > 0


def test_checkpoint_without_processing_time_triggers_restores_across_the_default_change() -> None:
    """The switch matters only to processing-time triggers, so it does not split other jobs' checkpoints."""
    kwargs: dict[str, Any] = {"combine_fn": SumCombineFn()}
    before = H.Checkpointed(
        create_reducer(
            W.FixedWindows(60), T.DefaultTrigger(), **kwargs, processing_timers_see_watermark=False
        )
    )
    before.reducer.process_bundle(["k"], [3], [EVENTS_2023])
    after = before.restart(lambda: create_reducer(W.FixedWindows(60), T.DefaultTrigger(), **kwargs)).reducer
    ((_, _, total, _, _),) = after.advance_input_watermark(MAX_MICROS)
    assert total == 3


def test_checkpoint_of_a_processing_time_trigger_names_the_semantics_it_was_taken_with() -> None:
    trigger = T.AfterWatermark(early=T.AfterProcessingTime(5))
    kwargs: dict[str, Any] = {"combine_fn": SumCombineFn()}
    python_timing = H.Checkpointed(
        create_reducer(W.FixedWindows(60), trigger, **kwargs, processing_timers_see_watermark=False)
    )
    with pytest.raises(ValueError, match="windowing strategy"):
        python_timing.restart(lambda: create_reducer(W.FixedWindows(60), trigger, **kwargs))
