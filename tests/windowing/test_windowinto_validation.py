"""WindowInto checks its window fn, trigger, accumulation mode, timestamp combiner and allowed lateness when it
is constructed, with Beam's error types, so a mistake fails on the user's line instead of later in a step."""

from __future__ import annotations

import datetime

import pytest

import millstream as beam
from millstream.transforms import trigger, window


def test_a_string_window_fn_is_a_type_error_at_construction():
    with pytest.raises(
        TypeError,
        match=r"WindowInto expects a WindowFn .*got 'hourly' of type str such as "
        r"FixedWindows\(60\)",
    ):
        beam.WindowInto("hourly")


def test_a_window_fn_class_says_to_pass_an_instance():
    with pytest.raises(
        TypeError, match=r"pass an instance such as FixedWindows\(60\), not the class FixedWindows"
    ):
        beam.WindowInto(window.FixedWindows)


def test_bad_triggers_are_type_errors():
    with pytest.raises(TypeError, match=r"trigger must be a trigger, got 'x'"):
        beam.WindowInto(window.FixedWindows(60), trigger="x")
    with pytest.raises(TypeError, match=r"not the class AfterCount"):
        beam.WindowInto(
            window.FixedWindows(60),
            trigger=trigger.AfterCount,
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
        )
    with pytest.raises(TypeError, match=r"the class AfterProcessingTime; pass an instance"):
        trigger.AfterWatermark(early=trigger.AfterProcessingTime)
    with pytest.raises(ValueError, match=r"delay \(-1\) must not be negative"):
        trigger.AfterProcessingTime(-1)


def test_bad_accumulation_modes_and_timestamp_combiners_are_type_errors():
    with pytest.raises(
        TypeError,
        match=r"accumulation_mode must be AccumulationMode.DISCARDING or "
        r"AccumulationMode.ACCUMULATING, got 'accumulating'",
    ):
        beam.WindowInto(
            window.FixedWindows(60), trigger=trigger.AfterCount(1), accumulation_mode="accumulating"
        )
    with pytest.raises(TypeError, match=r"got 7"):
        beam.WindowInto(window.FixedWindows(60), trigger=trigger.AfterCount(1), accumulation_mode=7)
    with pytest.raises(TypeError, match=r"timestamp_combiner must be one of TimestampCombiner.OUTPUT_AT_EOW"):
        beam.WindowInto(window.FixedWindows(60), timestamp_combiner="latest-ish")


def test_bad_allowed_lateness():
    with pytest.raises(TypeError, match=r"allowed_lateness must be a duration in seconds .*got '1h'"):
        beam.WindowInto(window.FixedWindows(60), allowed_lateness="1h")
    with pytest.raises(ValueError, match=r"allowed_lateness must not be negative, got -5"):
        beam.WindowInto(window.FixedWindows(60), allowed_lateness=-5)


def test_valid_arguments_are_kept():
    w = beam.WindowInto(
        window.FixedWindows(60),
        trigger=trigger.AfterWatermark(early=trigger.AfterProcessingTime(5)),
        accumulation_mode=2,
        allowed_lateness=datetime.timedelta(minutes=1),
        timestamp_combiner=window.TimestampCombiner.OUTPUT_AT_EARLIEST,
    ).windowing
    assert w.accumulation_mode is trigger.AccumulationMode.ACCUMULATING
    assert w.allowed_lateness_us == 60_000_000
    assert w.timestamp_combiner is window.TimestampCombiner.OUTPUT_AT_EARLIEST
    assert beam.WindowInto(window.Sessions(10)).windowing.triggerfn == trigger.DefaultTrigger()
