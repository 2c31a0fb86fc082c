"""A processing-time timer's `output_timestamp` is checked as Beam Java's `Timer.withOutputTimestamp` checks it:
never before the timestamp of the element (or timer) in whose context it is set, never past the window's
expiry. Either would emit data late or outside its window without any error."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.transforms import window
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import TimerSpec, on_timer
from millstream.utils.timestamp import Timestamp

DoFn = beam.DoFn


class _SetsHeld(DoFn):
    """Sets a processing-time timer at once with the output timestamp `offset` seconds after the element's."""

    FIRE = TimerSpec("fire", TimeDomain.REAL_TIME)

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def process(self, kv: Any, t: Any = DoFn.TimestampParam, fire: Any = DoFn.TimerParam(FIRE)) -> Any:
        fire.set(Timestamp(0), output_timestamp=t + self.offset)
        return []

    @on_timer(FIRE)
    def fired(self, t: Any = DoFn.TimestampParam) -> Any:
        yield "fired"


def _run(offset: float) -> list[Any]:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("k", 1)])
            | beam.Map(lambda kv: window.TimestampedValue(kv, 12))
            | beam.WindowInto(window.FixedWindows(10))
            | "Held" >> beam.ParDo(_SetsHeld(offset))
        )
        got: list[Any] = []
        _ = out | beam.Map(got.append)
    return got


def test_an_output_timestamp_at_the_input_or_up_to_the_window_end_is_accepted() -> None:
    assert _run(0) == ["fired"]
    assert _run(7.999999) == ["fired"]  # 19.999999: the window [10, 20)'s max timestamp


def test_an_output_timestamp_before_the_input_is_refused_naming_step_and_both_times() -> None:
    with pytest.raises(
        Exception, match=r"step 'Held'.*timer 'fire'.*output timestamp.*before.*current input"
    ) as e:
        _run(-1)
    assert "Timestamp(11)" in str(e.value) and "Timestamp(12)" in str(e.value)


def test_an_output_timestamp_past_the_window_expiry_is_refused() -> None:
    with pytest.raises(Exception, match=r"step 'Held'.*timer 'fire'.*after the expiration of window") as e:
        _run(8)
    assert "Timestamp(20)" in str(e.value) and "Timestamp(19.999999)" in str(e.value)
