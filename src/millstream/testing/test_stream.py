"""Beam's `apache_beam.testing.test_stream`."""

from millstream.engine.model.test_stream import (
    ElementEvent,
    Event,
    ProcessingTimeEvent,
    TestStream,
    WatermarkEvent,
)

__all__ = ["ElementEvent", "Event", "ProcessingTimeEvent", "TestStream", "WatermarkEvent"]
