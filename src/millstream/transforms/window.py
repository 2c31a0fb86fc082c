"""Beam's `apache_beam.transforms.window`: window fns, windows, timestamps, panes."""

from millstream.engine.model.timestamp import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    Duration,
    Timestamp,
    TimestampedValue,
)
from millstream.engine.model.window import *  # noqa: F403
from millstream.engine.model.window import __all__ as _all

__all__ = [*_all, "MAX_TIMESTAMP", "MIN_TIMESTAMP", "Duration", "Timestamp", "TimestampedValue"]
