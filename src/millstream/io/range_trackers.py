"""Beam's `apache_beam.io.range_trackers`: range trackers of legacy bounded sources."""

from millstream.engine.model.range_trackers import (
    OffsetRangeTracker,
    OrderedPositionRangeTracker,
    UnsplittableRangeTracker,
)

__all__ = ["OffsetRangeTracker", "OrderedPositionRangeTracker", "UnsplittableRangeTracker"]
