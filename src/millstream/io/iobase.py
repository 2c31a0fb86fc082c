"""Beam's `apache_beam.io.iobase`: the legacy BoundedSource / RangeTracker / Sink / Writer API, Read and Write."""

from millstream.engine.model.iobase import (
    BoundedSource,
    RangeTracker,
    Read,
    RestrictionProgress,
    RestrictionTracker,
    Sink,
    SourceBase,
    SourceBundle,
    WatermarkEstimator,
    Write,
    Writer,
    get_desired_chunk_size,
)

__all__ = [
    "BoundedSource",
    "RangeTracker",
    "Read",
    "RestrictionProgress",
    "RestrictionTracker",
    "Sink",
    "SourceBase",
    "SourceBundle",
    "WatermarkEstimator",
    "Write",
    "Writer",
    "get_desired_chunk_size",
]
