"""Beam's `apache_beam.utils`."""

from millstream.utils import timestamp, windowed_value

__all__ = ["timestamp", "windowed_value"]
