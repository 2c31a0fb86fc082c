"""Beam's `apache_beam.io.restriction_trackers`: offset ranges and their trackers for splittable DoFns."""

from millstream.engine.model.restriction_trackers import (
    OffsetRange,
    OffsetRestrictionTracker,
    UnsplittableRestrictionTracker,
)

__all__ = ["OffsetRange", "OffsetRestrictionTracker", "UnsplittableRestrictionTracker"]
