"""Beam's `apache_beam.utils.timestamp`."""

from millstream.engine.model.timestamp import MAX_TIMESTAMP, MIN_TIMESTAMP, Duration, Timestamp

__all__ = ["MAX_TIMESTAMP", "MIN_TIMESTAMP", "Duration", "Timestamp"]
