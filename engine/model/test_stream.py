"""`TestStream`: a scripted unbounded source for tests (Beam's `apache_beam.testing.test_stream`).

Each `add_elements` is one bundle; `advance_watermark_to` moves the source watermark;
`advance_processing_time` moves the job's (fake) processing-time clock. As in Beam, events may name an output
`tag`: the stream then has one output per tag (a dict tag -> PCollection, None for untagged events), each with
its own watermark. It runs on the production runtime,
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
        #: The outputs: every tag an event names (None: untagged); more than {None} makes one output per tag.
        self.output_tags: set[str | None] = set(output_tags) if output_tags else set()
        self.output_tags.update(e.tag for e in self._events if isinstance(e, (ElementEvent, WatermarkEvent)))
        # each output's watermark so far (Beam's TestStream keeps one per tag)
        self._watermarks: dict[str | None, int] = {}
        #: Index of the event being played (harnesses attribute output to events with it).
        self.event_index = -1

    @property
    def events(self) -> list[Event]:
        """The scripted events."""
        return self._events

    def add_elements(self, elements: Any, tag: str | None = None, event_timestamp: Any = None) -> TestStream:
        """Add one bundle (to output `tag`); plain values get `event_timestamp`, or the tag's current watermark,
        as timestamp."""
        self.output_tags.add(tag)
        current = self._watermarks.get(tag, MIN_MICROS)
        default = current if event_timestamp is None else to_micros(event_timestamp)
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
        """Advance the watermark (of output `tag`); it must not move backwards."""
        micros = to_micros(new_watermark)
        current = self._watermarks.get(tag, MIN_MICROS)
        if micros < current:
            raise ValueError(f"TestStream watermark must not move backwards: {micros} < {current} (µs)")
        self.output_tags.add(tag)
        self._watermarks[tag] = micros
        self._events.append(WatermarkEvent(new_watermark, tag))
        return self

    def advance_watermark_to_infinity(self, tag: str | None = None) -> TestStream:
        """Advance the watermark (of output `tag`) to +infinity (the end of that output)."""
        self.output_tags.add(tag)
        self._watermarks[tag] = MAX_MICROS
        self._events.append(WatermarkEvent(None, tag))
        return self

    @property
    def tagged(self) -> bool:
        """Whether the stream has one output per tag (events name a tag), as Beam's TestStream then has."""
        return bool(self.output_tags - {None})

    def advance_processing_time(self, advance_by: Any) -> TestStream:
        """Advance the job's processing-time clock by `advance_by` seconds."""
        if to_micros(advance_by) <= 0:
            raise ValueError("advance_processing_time needs a positive duration")
        self._events.append(ProcessingTimeEvent(advance_by))
        return self

    def expand(self, pbegin: Any) -> PCollection | dict[str | None, PCollection]:
        """The unbounded PCollection of the scripted events, or with tagged events a dict tag -> PCollection
        (None for the untagged events); a root transform (Beam's TestStream.expand)."""
        if not isinstance(pbegin, PBegin):
            raise TypeError("TestStream is a root transform: apply it to the pipeline")
        if not self.tagged:
            return PCollection(pbegin.pipeline, is_bounded=False)
        return {
            tag: PCollection(pbegin.pipeline, is_bounded=False, tag=None if tag is None else str(tag))
            for tag in sorted(self.output_tags, key=str)
        }


__all__ = ["ElementEvent", "Event", "ProcessingTimeEvent", "TestStream", "WatermarkEvent"]
