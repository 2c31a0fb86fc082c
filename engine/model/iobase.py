"""Beam's legacy source and sink API (``apache_beam.io.iobase``): BoundedSource, RangeTracker, Sink/Writer.

A `BoundedSource` is read through millstream's own source machinery: `Read(source)` splits it into bundles of a
desired size (Beam's `get_desired_chunk_size` of the source's estimated size) and reads every bundle with a
range tracker from `get_range_tracker`, as one split of a bounded source node whose progress is checkpointed
(`legacy_io.py`). A `Sink` is written through the two-phase sink protocol: one `Writer` per checkpoint epoch,
and `pre_finalize` / `finalize_write` once, when a bounded run has read all its input. `RestrictionTracker` and
`WatermarkEstimator` are the base classes of splittable DoFns' trackers and estimators, as in Beam.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

from millstream.engine.model import io
from millstream.engine.model.legacy_io import BeamSinkAdapter, BoundedSourceAdapter


class SourceBase:
    """The base of Beam's legacy sources (Beam's ``iobase.SourceBase``)."""

    def is_bounded(self) -> bool:
        """Whether the source is bounded (Beam's method; subclasses say)."""
        raise NotImplementedError


class SourceBundle(NamedTuple):
    """One bundle of a split source: its relative weight, the source to read and its position range."""

    weight: float
    source: Any
    start_position: Any
    stop_position: Any


class BoundedSource(SourceBase):
    """A source of a finite number of records that can split itself into bundles (Beam's BoundedSource).

    Subclasses implement `estimate_size`, `split`, `get_range_tracker` and `read(range_tracker)`; `read` must
    call `range_tracker.try_claim(position)` before returning a record at a split point and stop when it
    fails. `split` must give the same bundles each time it is called with the same arguments: a run restored
    from a checkpoint splits again and resumes every bundle where it stopped.
    """

    def estimate_size(self) -> int | None:
        """The size of the source in bytes (or any consistent unit), or None when unknown."""
        raise NotImplementedError

    def split(
        self, desired_bundle_size: int, start_position: Any = None, stop_position: Any = None
    ) -> Iterator[SourceBundle]:
        """Bundles of about `desired_bundle_size` covering [start_position, stop_position)."""
        raise NotImplementedError

    def get_range_tracker(self, start_position: Any, stop_position: Any) -> RangeTracker:
        """A tracker for [start_position, stop_position); None means the source's own start or stop."""
        raise NotImplementedError

    def read(self, range_tracker: RangeTracker) -> Iterator[Any]:
        """The records of `range_tracker`'s range, claiming each split point before returning its record."""
        raise NotImplementedError

    def default_output_coder(self) -> Any:
        """The coder of the records (Beam's default: pickling any Python object)."""
        from millstream.engine.model.coders import PickleCoder

        return PickleCoder()

    def is_bounded(self) -> bool:
        """Always True."""
        return True


class RangeTracker:
    """Tracks the positions a reader of one bundle has claimed, and splits the rest off (Beam's RangeTracker).

    Subclasses implement the position arithmetic; see `range_trackers.OffsetRangeTracker`.
    """

    #: `split_points()` reports this when the number of split points is not known.
    SPLIT_POINTS_UNKNOWN = object()

    def start_position(self) -> Any:
        """The first position of the range."""
        raise NotImplementedError

    def stop_position(self) -> Any:
        """The position just after the range (it may shrink when the range is split)."""
        raise NotImplementedError

    def try_claim(self, position: Any) -> bool:
        """Claim the record starting at split point `position`: False once it is past the range."""
        raise NotImplementedError

    def set_current_position(self, position: Any) -> None:
        """Record the position of a record that is not at a split point."""
        raise NotImplementedError

    def position_at_fraction(self, fraction: float) -> Any:
        """The position at `fraction` of the way through the range."""
        raise NotImplementedError

    def try_split(self, position: Any) -> tuple[Any, float] | None:
        """Stop the range at `position` if it has not been read past: (new stop, fraction), else None."""
        raise NotImplementedError

    def fraction_consumed(self) -> float:
        """How much of the range has been read, in [0, 1]."""
        raise NotImplementedError

    def split_points(self) -> tuple[Any, Any]:
        """(split points consumed, split points remaining), either may be SPLIT_POINTS_UNKNOWN."""
        return (RangeTracker.SPLIT_POINTS_UNKNOWN, RangeTracker.SPLIT_POINTS_UNKNOWN)

    def set_split_points_unclaimed_callback(self, callback: Any) -> None:
        """Give the tracker a function that counts the split points left after a position."""
        raise NotImplementedError


class Sink:
    """Beam's legacy sink: initialize once, one `Writer` per bundle, then finalize with the writers' results.

    `initialize_write()` -> `open_writer(init_result, uid)` per bundle -> `Writer.write` / `close` ->
    `pre_finalize(init_result, writer_results)` -> `finalize_write(init_result, writer_results,
    pre_finalize_result)`. On millstream a bundle is one checkpoint epoch, and the two finalize calls run once,
    when a bounded run has read all its input; the init result and the writers' results are pickled into the
    checkpoint, so a restored run finalizes every writer's output.
    """

    def initialize_write(self) -> Any:
        """Prepare the destination; the result is passed to the other methods."""
        raise NotImplementedError

    def open_writer(self, init_result: Any, uid: str) -> Writer:
        """A writer for one bundle, `uid` unique among the bundles of the write."""
        raise NotImplementedError

    def pre_finalize(self, init_result: Any, writer_results: list[Any]) -> Any:
        """Called once before `finalize_write`, with every writer's `close()` result."""
        raise NotImplementedError

    def finalize_write(self, init_result: Any, writer_results: list[Any], pre_finalize_result: Any) -> Any:
        """Make the written bundles final (e.g. rename temporary tables or files)."""
        raise NotImplementedError


class Writer:
    """Writes the records of one bundle of a `Sink` (Beam's Writer)."""

    def write(self, value: Any) -> None:
        """Write one record."""
        raise NotImplementedError

    def close(self) -> Any:
        """Finish the bundle; the result goes to the sink's `finalize_write`."""
        raise NotImplementedError

    def at_capacity(self) -> bool:
        """Whether the writer wants no more records (millstream never asks; Beam's default is False)."""
        return False


class RestrictionProgress:
    """How much of a restriction is done and how much remains (Beam's RestrictionProgress)."""

    def __init__(
        self, fraction: float | None = None, completed: float | None = None, remaining: float | None = None
    ) -> None:
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"RestrictionProgress: fraction must be in [0, 1], got {fraction}")
        self._fraction = fraction
        self._completed = completed
        self._remaining = remaining

    @property
    def completed_work(self) -> float:
        """Work done (the fraction when only a fraction was given)."""
        if self._completed is not None:
            return self._completed
        return self._fraction if self._fraction is not None else 0.0

    @property
    def remaining_work(self) -> float:
        """Work left (1 - fraction when only a fraction was given)."""
        if self._remaining is not None:
            return self._remaining
        return 1.0 - self._fraction if self._fraction is not None else 0.0

    @property
    def total_work(self) -> float:
        """Work done plus work left."""
        return self.completed_work + self.remaining_work

    @property
    def fraction_completed(self) -> float:
        """Done / total (0 when there is no work)."""
        if self._fraction is not None:
            return self._fraction
        total = self.total_work
        return self.completed_work / total if total else 1.0


class RestrictionTracker:
    """Claims positions of one restriction for a splittable DoFn (Beam's RestrictionTracker)."""

    def current_restriction(self) -> Any:
        """The restriction being processed (it shrinks when split)."""
        raise NotImplementedError

    def current_progress(self) -> RestrictionProgress:
        """Progress through the restriction."""
        raise NotImplementedError

    def check_done(self) -> None:
        """Raise if part of the restriction was neither claimed nor split off."""
        raise NotImplementedError

    def try_split(self, fraction_of_remainder: float) -> tuple[Any, Any] | None:
        """Split the unclaimed rest: (primary, residual), or None when it cannot split."""
        raise NotImplementedError

    def try_claim(self, position: Any) -> bool:
        """Claim `position`: False once it is past the restriction (then the DoFn must return)."""
        raise NotImplementedError

    def is_bounded(self) -> bool:
        """Whether the restriction is finite."""
        raise NotImplementedError


class WatermarkEstimator:
    """Estimates the output watermark of a splittable DoFn (Beam's WatermarkEstimator)."""

    def get_estimator_state(self) -> Any:
        """State to resume the estimate from after a split or a checkpoint."""
        raise NotImplementedError

    def current_watermark(self) -> Any:
        """The estimated watermark (a Timestamp), monotonically increasing."""
        raise NotImplementedError

    def observe_timestamp(self, timestamp: Any) -> None:
        """Called with the timestamp of every output."""
        raise NotImplementedError


def get_desired_chunk_size(total_size: int | None) -> int:
    """Beam's bundle size for a source of `total_size`: 1 MB at least, growing with the square root."""
    if total_size:
        return max(1 << 20, 1000 * int(math.sqrt(total_size)))
    return 64 << 20


class Read(io.Read):
    """Read a source: millstream's `Source`, or Beam's legacy `BoundedSource` (split into bundles).

    `desired_bundle_size` (a millstream extension) overrides Beam's bundle size for a BoundedSource.
    """

    def __init__(
        self, source: Any, *args: Any, desired_bundle_size: int | None = None, **kwargs: Any
    ) -> None:
        if isinstance(source, BoundedSource):
            if desired_bundle_size is not None and desired_bundle_size <= 0:
                raise ValueError(f"Read: desired_bundle_size must be positive, got {desired_bundle_size}")
            source = BoundedSourceAdapter(source, desired_bundle_size or _chunk_size_of(source))
        elif isinstance(source, SourceBase):
            raise TypeError(
                f"Read({type(source).__name__}): only bounded legacy sources (BoundedSource) are supported; "
                "write an unbounded source as a millstream Source (see engine/model/io.py)"
            )
        elif desired_bundle_size is not None:
            raise TypeError("Read: desired_bundle_size applies to a BoundedSource only")
        super().__init__(source, *args, **kwargs)


def _chunk_size_of(source: BoundedSource) -> int:
    """Beam's desired bundle size for `source`, from its size estimate (unknown when it raises)."""
    try:
        size = source.estimate_size()
    except NotImplementedError:
        size = None
    return get_desired_chunk_size(size)


class Write(io.Write):
    """Write to a sink: millstream's `Sink`, or Beam's legacy `Sink` (initialize, writers, finalize)."""

    def __init__(self, sink: Any) -> None:
        if isinstance(sink, Sink):
            sink = BeamSinkAdapter(sink)
        super().__init__(sink)

    def expand(self, pcoll: Any) -> Any:
        """As `io.Write`; a legacy Sink written from an unbounded PCollection is finalized per checkpoint."""
        if isinstance(self.sink, BeamSinkAdapter) and not getattr(pcoll, "is_bounded", True):
            self.sink = BeamSinkAdapter(self.sink.sink, per_checkpoint=True)
        return super().expand(pcoll)


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
