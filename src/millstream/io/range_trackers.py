"""Beam's `apache_beam.io.range_trackers`: range trackers of legacy bounded sources."""

from millstream.engine.model.range_trackers import (
    LexicographicKeyRangeTracker,
    OffsetRangeTracker,
    OrderedPositionRangeTracker,
    UnsplittableRangeTracker,
)

__all__ = [
    "LexicographicKeyRangeTracker",
    "OffsetRangeTracker",
    "OrderedPositionRangeTracker",
    "UnsplittableRangeTracker",
]
