"""Restrictions and their trackers for splittable DoFns (``apache_beam.io.restriction_trackers``).

`OffsetRange` is a range [start, stop) of integer offsets; `OffsetRestrictionTracker` claims offsets of one
range in increasing order. A splittable DoFn's `process` calls `try_claim(offset)` before producing what
starts at `offset`, and returns when the claim fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from millstream.engine.model.iobase import RestrictionProgress, RestrictionTracker
from millstream.engine.model.range_trackers import OffsetRangeTracker


class OffsetRange:
    """The integer offsets [start, stop)."""

    def __init__(self, start: int, stop: int) -> None:
        if start > stop:
            raise ValueError(f"OffsetRange: start {start} is after stop {stop}")
        self.start = start
        self.stop = stop

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OffsetRange) and (self.start, self.stop) == (other.start, other.stop)

    def __hash__(self) -> int:
        return hash((OffsetRange, self.start, self.stop))

    def __repr__(self) -> str:
        return f"OffsetRange(start={self.start}, stop={self.stop})"

    def split(
        self, desired_num_offsets_per_split: int, min_num_offsets_per_split: int = 1
    ) -> Iterator[OffsetRange]:
        """Consecutive ranges of about `desired_num_offsets_per_split` (a small tail joins the last one)."""
        size = max(desired_num_offsets_per_split, min_num_offsets_per_split)
        if size <= 0:
            raise ValueError(f"OffsetRange.split: the split size must be positive, got {size}")
        start = self.start
        while start < self.stop:
            stop = min(start + size, self.stop)
            remaining = self.stop - stop
            if remaining < desired_num_offsets_per_split // 4 or remaining < min_num_offsets_per_split:
                stop = self.stop
            yield OffsetRange(start, stop)
            start = stop

    def split_at(self, split_pos: int) -> tuple[OffsetRange, OffsetRange]:
        """[start, split_pos) and [split_pos, stop)."""
        return OffsetRange(self.start, split_pos), OffsetRange(split_pos, self.stop)

    def new_tracker(self) -> OffsetRangeTracker:
        """A legacy-source range tracker over the same offsets."""
        return OffsetRangeTracker(self.start, self.stop)

    def size(self) -> int:
        """How many offsets the range holds."""
        return self.stop - self.start


class OffsetRestrictionTracker(RestrictionTracker):
    """Claims the offsets of one `OffsetRange`, strictly increasing."""

    def __init__(self, offset_range: OffsetRange) -> None:
        if not isinstance(offset_range, OffsetRange):
            raise TypeError(f"OffsetRestrictionTracker needs an OffsetRange, got {offset_range!r}")
        self._range = offset_range
        self._current_position: int | None = None
        self._last_claim_attempt: int | None = None
        self._checkpointed = False

    def check_done(self) -> None:
        """Raise unless every offset of the range was claimed (or attempted past the end)."""
        r = self._range
        if r.start != r.stop and (self._last_claim_attempt is None or self._last_claim_attempt < r.stop - 1):
            first = self._last_claim_attempt if self._last_claim_attempt is not None else r.start
            raise ValueError(
                f"OffsetRestrictionTracker is not done: offsets [{first}, {r.stop}) were not claimed "
                "(process must call try_claim until it returns False, or claim the last offset)"
            )

    def current_restriction(self) -> OffsetRange:
        """The range being processed (shortened by splits)."""
        return self._range

    def current_progress(self) -> RestrictionProgress:
        """The fraction of the range up to the last claimed offset."""
        r = self._range
        if self._current_position is None:
            fraction = 0.0
        elif r.stop == r.start:
            fraction = 1.0
        else:
            fraction = (self._current_position - r.start) / (r.stop - r.start)
        return RestrictionProgress(fraction=fraction)

    def start_position(self) -> int:
        """The range's start."""
        return self._range.start

    def stop_position(self) -> int:
        """The range's stop."""
        return self._range.stop

    def try_claim(self, position: int) -> bool:
        """Claim `position`: True inside the range, False at or past its stop."""
        if self._last_claim_attempt is not None and position <= self._last_claim_attempt:
            raise ValueError(
                f"OffsetRestrictionTracker: claims must strictly increase: {position} after "
                f"{self._last_claim_attempt}"
            )
        if position < self._range.start:
            raise ValueError(
                f"OffsetRestrictionTracker: cannot claim {position} before the start of "
                f"[{self._range.start}, {self._range.stop})"
            )
        self._last_claim_attempt = position
        if position < self._range.stop:
            self._current_position = position
            return True
        return False

    def try_split(self, fraction_of_remainder: float) -> tuple[OffsetRange, OffsetRange] | None:
        """Split the unclaimed rest at `fraction_of_remainder` of it: (primary, residual); 0 checkpoints."""
        if self._checkpointed:
            return None
        cur = self._range.start - 1 if self._last_claim_attempt is None else self._last_claim_attempt
        split_point = cur + int(max(1, (self._range.stop - cur) * fraction_of_remainder))
        if split_point >= self._range.stop:
            return None
        if fraction_of_remainder == 0:
            self._checkpointed = True
        self._range, residual = self._range.split_at(split_point)
        return self._range, residual

    def is_bounded(self) -> bool:
        """Always True."""
        return True


class UnsplittableRestrictionTracker(RestrictionTracker):
    """Wraps a restriction tracker and refuses every split."""

    def __init__(self, underling_tracker: RestrictionTracker) -> None:
        self._underling_tracker = underling_tracker

    def try_split(self, fraction_of_remainder: float) -> None:
        """Never splits."""
        return None

    def __getattribute__(self, name: str) -> Any:
        # everything but try_split is the wrapped tracker's, including the base class's stubs
        if name.startswith("_") or name == "try_split":
            return super().__getattribute__(name)
        return getattr(self._underling_tracker, name)


__all__ = ["OffsetRange", "OffsetRestrictionTracker", "UnsplittableRestrictionTracker"]
