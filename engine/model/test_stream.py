"""`TestStream`: a scripted unbounded source for tests (Beam's `apache_beam.testing.test_stream`).

Each `add_elements` is one bundle; `advance_watermark_to` moves the source watermark;
`advance_processing_time` moves the job's (fake) processing-time clock. It runs on the production runtime,
in streaming mode, never in a separate simulator.
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PBegin, PCollection
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, TimestampedValue, to_micros


class Event:
    """One scripted event of a TestStream."""


class ElementEvent(Event):
    """A bundle of elements (TimestampedValues or values stamped with the current watermark)."""

    def __init__(self, timestamped_values: list[TimestampedValue[Any]], tag: str | None = None) -> None:
        self.timestamped_values = timestamped_values
        self.tag = tag

    def __repr__(self) -> str:
        return f"ElementEvent({self.timestamped_values!r})"


class WatermarkEvent(Event):
    """An advance of the watermark to `new_watermark` (µs in `micros`)."""

    def __init__(self, new_watermark: Any, tag: str | None = None) -> None:
        self.micros = MAX_MICROS if new_watermark is None else to_micros(new_watermark)
        self.tag = tag

    @property
    def new_watermark(self) -> Any:
        """The new watermark as a Timestamp."""
        from millstream.engine.model.timestamp import Timestamp

        return Timestamp(micros=self.micros)

    def __repr__(self) -> str:
        return f"WatermarkEvent({self.micros})"


class ProcessingTimeEvent(Event):
    """An advance of processing time by `advance_by` (µs in `micros`)."""

    def __init__(self, advance_by: Any) -> None:
        self.micros = to_micros(advance_by)

    def __repr__(self) -> str:
        return f"ProcessingTimeEvent({self.micros})"


class TestStream(PTransform):
    """A test source whose elements, watermark advances and processing-time advances are scripted."""

    __test__ = False  # not a pytest test class
    primitive = True

    def __init__(
        self,
        coder: Any = None,
        events: list[Event] | None = None,
        output_tags: Any = None,
        endpoint: Any = None,
    ) -> None:
        super().__init__("TestStream")
        self._events: list[Event] = list(events or [])
        self._watermark = MIN_MICROS
        #: Index of the event being played (harnesses attribute output to events with it).
        self.event_index = -1

    @property
    def events(self) -> list[Event]:
        """The scripted events."""
        return self._events

    def add_elements(self, elements: Any, tag: str | None = None, event_timestamp: Any = None) -> TestStream:
        """Add one bundle; plain values get `event_timestamp`, or the current watermark, as timestamp."""
        default = self._watermark if event_timestamp is None else to_micros(event_timestamp)
        stamped: list[TimestampedValue[Any]] = []
        for e in elements:
            if isinstance(e, TimestampedValue):
                stamped.append(e)
            elif hasattr(e, "windows") and hasattr(e, "micros") and hasattr(e, "value"):
                stamped.append(TimestampedValue(e.value, 0))
                stamped[-1].micros = e.micros
            else:
                tv: TimestampedValue[Any] = TimestampedValue(e, 0)
                tv.micros = default
                stamped.append(tv)
        self._events.append(ElementEvent(stamped, tag))
        return self

    def advance_watermark_to(self, new_watermark: Any, tag: str | None = None) -> TestStream:
        """Advance the watermark; it must not move backwards."""
        micros = to_micros(new_watermark)
        if micros < self._watermark:
            raise ValueError(
                f"TestStream watermark must not move backwards: {micros} < {self._watermark} (µs)"
            )
        self._watermark = micros
        self._events.append(WatermarkEvent(new_watermark, tag))
        return self

    def advance_watermark_to_infinity(self, tag: str | None = None) -> TestStream:
        """Advance the watermark to +infinity (end of the stream)."""
        self._watermark = MAX_MICROS
        self._events.append(WatermarkEvent(None, tag))
        return self

    def advance_processing_time(self, advance_by: Any) -> TestStream:
        """Advance the job's processing-time clock by `advance_by` seconds."""
        if to_micros(advance_by) <= 0:
            raise ValueError("advance_processing_time needs a positive duration")
        self._events.append(ProcessingTimeEvent(advance_by))
        return self

    def expand(self, pbegin: Any) -> PCollection:
        """The unbounded PCollection of the scripted events; a root transform (Beam's TestStream.expand)."""
        if not isinstance(pbegin, PBegin):
            raise TypeError("TestStream is a root transform: apply it to the pipeline")
        return PCollection(pbegin.pipeline, is_bounded=False)


__all__ = ["ElementEvent", "Event", "ProcessingTimeEvent", "TestStream", "WatermarkEvent"]
