"""Beam's `apache_beam.utils.timestamp`."""

from millstream.engine.model.timestamp import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    Duration,
    DurationTypes,
    Timestamp,
    TimestampDurationTypes,
    TimestampTypes,
)

__all__ = [
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "Duration",
    "DurationTypes",
    "Timestamp",
    "TimestampDurationTypes",
    "TimestampTypes",
]
