"""`Windowing`: a PCollection's windowing strategy (window fn, trigger, accumulation, lateness, timestamps)."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.timestamp import to_micros


class Windowing:
    """How a PCollection's elements are grouped into windows and when panes fire (Beam's `Windowing`)."""

    def __init__(
        self,
        windowfn: Any,
        triggerfn: Any = None,
        accumulation_mode: Any = None,
        timestamp_combiner: Any = None,
        allowed_lateness: Any = 0,
    ) -> None:
        from millstream.engine.model.trigger import AccumulationMode, DefaultTrigger
        from millstream.engine.model.window import TimestampCombiner

        self.windowfn = _check_windowfn(windowfn)
        self.triggerfn = _check_trigger(triggerfn) if triggerfn is not None else DefaultTrigger()
        self.accumulation_mode = (
            _check_accumulation_mode(accumulation_mode)
            if accumulation_mode is not None
            else AccumulationMode.DISCARDING
        )
        self.timestamp_combiner = (
            _check_timestamp_combiner(timestamp_combiner)
            if timestamp_combiner is not None
            else TimestampCombiner.OUTPUT_AT_EOW
        )
        self.allowed_lateness_us = _check_allowed_lateness(allowed_lateness)

    @classmethod
    def default(cls) -> Windowing:
        """The global window with the default trigger: what every source produces."""
        from millstream.engine.model.window import GlobalWindows

        return cls(GlobalWindows())

    @property
    def allowed_lateness(self) -> Any:
        """Allowed lateness as a Duration."""
        from millstream.engine.model.timestamp import Duration

        return Duration(micros=self.allowed_lateness_us)

    def is_global_default(self) -> bool:
        """True for the global window, default trigger and end-of-window timestamps (the batch fast path)."""
        from millstream.engine.model.trigger import DefaultTrigger
        from millstream.engine.model.window import GlobalWindows, TimestampCombiner

        return (
            isinstance(self.windowfn, GlobalWindows)
            and isinstance(self.triggerfn, DefaultTrigger)
            and self.timestamp_combiner == TimestampCombiner.OUTPUT_AT_EOW
        )

    def __repr__(self) -> str:
        return (
            f"Windowing({self.windowfn!r}, trigger={self.triggerfn!r}, "
            f"accumulation={self.accumulation_mode!r}, lateness_us={self.allowed_lateness_us})"
        )


def _class_hint(value: Any, example: str) -> str:
    """A hint for the common slip of passing a class where an instance belongs."""
    if isinstance(value, type):
        return f"; pass an instance such as {example}, not the class {value.__name__}"
    return f" such as {example}"


def _check_windowfn(windowfn: Any) -> Any:
    """The window fn, or a TypeError saying what was passed instead (Beam fails later, without a step)."""
    from millstream.engine.model.window import WindowFn

    if isinstance(windowfn, WindowFn):
        return windowfn
    raise TypeError(
        f"WindowInto expects a WindowFn (or a Windowing), got {windowfn!r} of type {type(windowfn).__name__}"
        + _class_hint(windowfn, "FixedWindows(60)")
    )


def _check_trigger(triggerfn: Any) -> Any:
    """The trigger, or a TypeError naming what was passed."""
    from millstream.engine.model.trigger import TriggerFn

    if isinstance(triggerfn, TriggerFn):
        return triggerfn
    raise TypeError(
        f"trigger must be a trigger, got {triggerfn!r} of type {type(triggerfn).__name__}"
        + _class_hint(triggerfn, "AfterWatermark(early=AfterProcessingTime(5))")
    )


def _check_accumulation_mode(mode: Any) -> Any:
    """The accumulation mode as an AccumulationMode; Beam's plain ints 1 and 2 are accepted too."""
    from millstream.engine.model.trigger import AccumulationMode

    if isinstance(mode, AccumulationMode):
        return mode
    if isinstance(mode, int) and not isinstance(mode, bool):
        try:
            return AccumulationMode(mode)
        except ValueError:
            pass
    raise TypeError(
        f"accumulation_mode must be AccumulationMode.DISCARDING or AccumulationMode.ACCUMULATING, got {mode!r}"
    )


def _check_timestamp_combiner(combiner: Any) -> Any:
    """The timestamp combiner as a TimestampCombiner."""
    from millstream.engine.model.window import TimestampCombiner

    if isinstance(combiner, TimestampCombiner):
        return combiner
    choices = ", ".join(f"TimestampCombiner.{c.name}" for c in TimestampCombiner)
    raise TypeError(f"timestamp_combiner must be one of {choices}, got {combiner!r}")


def _check_allowed_lateness(lateness: Any) -> int:
    """Allowed lateness in microseconds: a non-negative duration in seconds (or a Duration/timedelta)."""
    if isinstance(lateness, bool):
        raise TypeError(f"allowed_lateness must be a duration in seconds, got {lateness!r}")
    try:
        micros = to_micros(lateness)
    except TypeError:
        raise TypeError(
            f"allowed_lateness must be a duration in seconds (a number, Duration or timedelta), got {lateness!r}"
        ) from None
    if micros < 0:
        raise ValueError(f"allowed_lateness must not be negative, got {lateness!r}")
    return micros
