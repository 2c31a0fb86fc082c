"""Unit tests for an operator's InputWatermarks (min over inputs) and WatermarkHolds."""

from __future__ import annotations

import pytest

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.watermarks import InputWatermarks, WatermarkHolds, WatermarkRegressionError


def test_input_watermark_is_min_over_inputs() -> None:
    inputs = InputWatermarks(["left", "right"])
    assert inputs.current() == MIN_MICROS and len(inputs) == 2
    assert inputs.update("left", 100) == MIN_MICROS
    assert inputs.update("right", 40) == 40
    assert inputs.update("right", 300) == 100
    assert inputs.update("left", 500) == 300
    assert inputs.get("left") == 500


def test_input_regression_raises() -> None:
    inputs = InputWatermarks(["a"])
    inputs.update("a", 100)
    inputs.update("a", 100)  # repeating is fine
    with pytest.raises(WatermarkRegressionError, match="'a'.*99.*100"):
        inputs.update("a", 99)
    assert issubclass(WatermarkRegressionError, AssertionError)
    assert inputs.current() == 100 and inputs.get("a") == 100


def test_input_added_behind_holds_output_and_removal_releases() -> None:
    inputs = InputWatermarks(["a"])
    inputs.update("a", 1_000)
    inputs.add_input("b", 200)
    assert inputs.current() == 1_000  # never backwards
    inputs.update("b", 1_500)
    inputs.update("a", 2_000)
    assert inputs.current() == 1_500
    assert inputs.remove_input("b") == 2_000
    with pytest.raises(ValueError):
        inputs.add_input("a")


def test_finished_inputs_release_and_all_finished_is_max() -> None:
    inputs = InputWatermarks(["a", "b"])
    inputs.update("a", MAX_MICROS)
    assert inputs.current() == MIN_MICROS
    inputs.update("b", 70)
    assert inputs.current() == 70
    inputs.update("b", MAX_MICROS)
    assert inputs.current() == MAX_MICROS


def test_idle_inputs_do_not_hold() -> None:
    inputs = InputWatermarks(["busy", "quiet", "done"])
    inputs.update("done", MAX_MICROS)
    inputs.update("quiet", 50, idle=True)
    assert inputs.update("busy", 400) == 400
    assert not inputs.idle
    # Everything left is idle: the largest idle watermark, reported as idle; never MAX while one may wake.
    assert inputs.update("busy", 450, idle=True) == 450
    assert inputs.idle
    # The quiet input wakes behind the output: held, not regressed.
    assert inputs.update("quiet", 60) == 450
    assert not inputs.idle


def test_holds_hold_back_output() -> None:
    holds = WatermarkHolds()
    assert holds.output() == MIN_MICROS and holds.earliest() == MAX_MICROS
    holds.add("pane-1", 100)
    holds.add("timer-7", 250)
    assert len(holds) == 2 and "pane-1" in holds and holds.get("timer-7") == 250
    assert holds.set_input(1_000) == 100
    assert holds.input_watermark == 1_000
    assert holds.remove("pane-1") is True
    assert holds.remove("pane-1") is False
    assert holds.output() == 250
    holds.remove("timer-7")
    assert holds.output() == 1_000 and holds.earliest() == MAX_MICROS


def test_hold_moved_by_re_adding_same_id() -> None:
    holds = WatermarkHolds()
    holds.add("h", 100)
    holds.add("h", 600)  # moved later: the stale entry at 100 must not count
    assert holds.earliest() == 600 and len(holds) == 1
    assert holds.set_input(1_000) == 600
    holds.add("h", 800)
    assert holds.output() == 800


def test_hold_behind_output_does_not_regress_it() -> None:
    holds = WatermarkHolds()
    assert holds.set_input(500) == 500
    holds.add("late-pane", 200)
    assert holds.held_output() == 200  # the raw, non-monotonic value
    assert holds.output() == 500  # propagated downstream: monotonic
    holds.set_input(900)
    assert holds.output() == 500  # the hold stops it advancing...
    holds.remove("late-pane")
    assert holds.output() == 900  # ...until released


def test_holds_input_regression_raises() -> None:
    holds = WatermarkHolds()
    holds.set_input(10)
    with pytest.raises(WatermarkRegressionError):
        holds.set_input(9)


def test_many_holds_compact_and_stay_correct() -> None:
    holds = WatermarkHolds()
    holds.set_input(MAX_MICROS)
    for i in range(5_000):
        holds.add(i % 50, i)  # re-adding ids leaves stale heap entries behind
    assert len(holds) == 50
    assert len(holds._heap) <= 2 * 50 + 64 + 1
    assert holds.earliest() == 5_000 - 50
    for i in range(50):
        holds.remove(i)
    assert holds.output() == MAX_MICROS
