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

        self.windowfn = windowfn
        self.triggerfn = triggerfn if triggerfn is not None else DefaultTrigger()
        self.accumulation_mode = (
            accumulation_mode if accumulation_mode is not None else AccumulationMode.DISCARDING
        )
        self.timestamp_combiner = (
            timestamp_combiner if timestamp_combiner is not None else TimestampCombiner.OUTPUT_AT_EOW
        )
        self.allowed_lateness_us = to_micros(allowed_lateness)

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
