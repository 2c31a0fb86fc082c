"""Range trackers of Beam's legacy sources (``apache_beam.io.range_trackers``): offsets, ordered positions.

A reader claims the start position of every record at a split point (`try_claim`); the first claim at or
past the stop position fails, and the reader must stop there. `try_split` shortens the range if the reader
has not yet claimed past the proposed position. Trackers are used by one reader at a time on millstream (a
bundle is read by one task), but keep Beam's lock so code that shares one across threads stays correct.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from millstream.engine.model.iobase import RangeTracker


class OffsetRangeTracker(RangeTracker):
    """Tracks a range [start, stop) of non-negative integer offsets (stop may be `OFFSET_INFINITY`)."""

    #: An unknown end: read until the source ends; such a range cannot be split or report progress.
    OFFSET_INFINITY = float("inf")

    def __init__(self, start: int, end: int | float) -> None:
        if start is None or end is None:
            raise ValueError(f"OffsetRangeTracker needs a start and an end offset, got [{start}, {end})")
        if not isinstance(start, int) or (end != self.OFFSET_INFINITY and not isinstance(end, int)):
            raise TypeError(f"OffsetRangeTracker offsets must be integers, got [{start!r}, {end!r})")
        if start > end:
            raise ValueError(f"OffsetRangeTracker: start {start} is after end {end}")
        self._start_offset = start
        self._stop_offset = end
        self._last_record_start = -1
        self._last_attempted_record_start = -1
        self._offset_of_last_split_point = -1
        self._split_points_seen = 0
        self._split_points_unclaimed_callback: Callable[[Any], Any] | None = None
        self._lock = threading.Lock()

    def start_position(self) -> int:
        """The first offset."""
        return self._start_offset

    def stop_position(self) -> int | float:
        """The offset after the range."""
        return self._stop_offset

    @property
    def last_record_start(self) -> int:
        """The offset of the last record returned (-1 before the first)."""
        return self._last_record_start

    @property
    def last_attempted_record_start(self) -> int:
        """The offset of the last `try_claim`, successful or not (-1 before the first)."""
        return self._last_attempted_record_start

    def _check_record_start(self, record_start: int, split_point: bool) -> None:
        if record_start < self._last_record_start:
            raise ValueError(
                f"OffsetRangeTracker: record at {record_start} is before the last one returned, at "
                f"{self._last_record_start}"
            )
        if split_point and record_start == self._offset_of_last_split_point:
            raise ValueError(f"OffsetRangeTracker: two split points at the same offset {record_start}")
        if not split_point and self._last_record_start == -1:
            raise ValueError(
                f"OffsetRangeTracker: the first record (at {record_start}) must be a split point"
            )

    def try_claim(self, record_start: int) -> bool:
        """Claim the record starting at `record_start`; False once it is at or past the stop offset."""
        with self._lock:
            if record_start <= self._last_attempted_record_start:
                raise ValueError(
                    f"OffsetRangeTracker: claims must increase: {record_start} after "
                    f"{self._last_attempted_record_start}"
                )
            self._check_record_start(record_start, True)
            self._last_attempted_record_start = record_start
            if record_start >= self._stop_offset:
                return False
            self._offset_of_last_split_point = record_start
            self._last_record_start = record_start
            self._split_points_seen += 1
            return True

    def set_current_position(self, record_start: int) -> None:
        """Record a record that is not at a split point (it belongs to the last claimed one)."""
        with self._lock:
            self._check_record_start(record_start, False)
            self._last_record_start = record_start

    def try_split(self, split_offset: int) -> tuple[int, float] | None:
        """Stop the range at `split_offset` when reading has started and not reached it: (offset, fraction)."""
        with self._lock:
            if self._stop_offset == self.OFFSET_INFINITY or self._last_record_start == -1:
                return None
            if split_offset <= self._last_record_start:
                return None
            if not self._start_offset <= split_offset < self._stop_offset:
                return None
            fraction = (split_offset - self._start_offset) / (self._stop_offset - self._start_offset)
            self._stop_offset = split_offset
            return split_offset, fraction

    def fraction_consumed(self) -> float:
        """The last returned offset's place in the range, in [0, 1]."""
        with self._lock:
            return self.position_to_fraction(self._last_record_start, self._start_offset, self._stop_offset)

    @staticmethod
    def position_to_fraction(pos: int, start: int, stop: int | float) -> float:
        """`pos`'s place in [start, stop), clamped to [0, 1]."""
        fraction = (pos - start) / (stop - start) if start != stop else 0.0
        return max(0.0, min(1.0, fraction))

    def position_at_fraction(self, fraction: float) -> int:
        """The offset at `fraction` of the range (rounded up)."""
        if self._stop_offset == self.OFFSET_INFINITY:
            raise ValueError("OffsetRangeTracker.position_at_fraction: the range has no end")
        return int(math.ceil(self._start_offset + fraction * (self._stop_offset - self._start_offset)))

    def split_points(self) -> tuple[Any, Any]:
        """(split points consumed, remaining); remaining is known only through the unclaimed callback."""
        with self._lock:
            consumed = max(0, self._split_points_seen - 1)
            if self._split_points_unclaimed_callback is None:
                return consumed, RangeTracker.SPLIT_POINTS_UNKNOWN
            unclaimed = self._split_points_unclaimed_callback(self._stop_offset)
            if unclaimed is RangeTracker.SPLIT_POINTS_UNKNOWN:
                return consumed, unclaimed
            return consumed, unclaimed + 1

    def set_split_points_unclaimed_callback(self, callback: Callable[[Any], Any]) -> None:
        """`callback(stop_position)` counts the split points not yet claimed."""
        self._split_points_unclaimed_callback = callback

    def __repr__(self) -> str:
        return f"OffsetRangeTracker([{self._start_offset}, {self._stop_offset}))"


class OrderedPositionRangeTracker(RangeTracker):
    """A tracker of any ordered positions; subclasses map positions to and from fractions of the range.

    None as start or stop means an open end.
    """

    UNSTARTED = object()

    def __init__(self, start_position: Any = None, stop_position: Any = None) -> None:
        self._start_position = start_position
        self._stop_position = stop_position
        self._last_claim: Any = self.UNSTARTED
        self._lock = threading.Lock()

    def start_position(self) -> Any:
        """The first position (None: open)."""
        return self._start_position

    def stop_position(self) -> Any:
        """The position after the range (None: open)."""
        with self._lock:
            return self._stop_position

    def try_claim(self, position: Any) -> bool:
        """Claim `position`; False once it is at or past the stop."""
        with self._lock:
            if self._last_claim is not self.UNSTARTED and position < self._last_claim:
                raise ValueError(
                    f"{type(self).__name__}: claim {position!r} after claim {self._last_claim!r}"
                )
            if self._start_position is not None and position < self._start_position:
                raise ValueError(
                    f"{type(self).__name__}: claim {position!r} before start {self._start_position!r}"
                )
            if self._stop_position is None or position < self._stop_position:
                self._last_claim = position
                return True
            return False

    def position_at_fraction(self, fraction: float) -> Any:
        """The position at `fraction` of the range."""
        return self.fraction_to_position(fraction, self._start_position, self._stop_position)

    def try_split(self, position: Any) -> tuple[Any, float] | None:
        """Stop the range at `position` unless it is out of range or already claimed past."""
        with self._lock:
            if self._stop_position is not None and position >= self._stop_position:
                return None
            if self._start_position is not None and position <= self._start_position:
                return None
            if self._last_claim is not self.UNSTARTED and self._last_claim >= position:
                return None
            fraction = self.position_to_fraction(position, self._start_position, self._stop_position)
            self._stop_position = position
            return position, fraction

    def fraction_consumed(self) -> float:
        """The last claim's place in the range (0 before any)."""
        if self._last_claim is self.UNSTARTED:
            return 0.0
        return self.position_to_fraction(self._last_claim, self._start_position, self._stop_position)

    def fraction_to_position(self, fraction: float, start: Any, end: Any) -> Any:
        """The position at `fraction` of [start, end)."""
        raise NotImplementedError

    def position_to_fraction(self, position: Any, start: Any, end: Any) -> float:
        """The fraction of [start, end) before `position`."""
        raise NotImplementedError


class LexicographicKeyRangeTracker(OrderedPositionRangeTracker):
    """A tracker of keys in lexicographic order (bytes, or str), as Beam's: a key is read as the base-256 fraction
    ``0.<its bytes>``, so fractions and positions are linear interpolations between start and end keys (an
    empty or None end is the end of the key space)."""

    @classmethod
    def fraction_to_position(  # type: ignore[override]
        cls, fraction: float, start: bytes | str | None = None, end: bytes | str | None = None
    ) -> bytes | str | None:
        """The key `fraction` of the way from `start` to `end`: exactly `start` at 0 and `end` at 1, strictly
        between them otherwise; a str `start` gives a str key."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"LexicographicKeyRangeTracker: fraction {fraction} is outside [0, 1]")
        if start is None:
            start = b""
        if fraction == 0:
            return start
        if fraction == 1:
            return end
        start_b, end_b = _key_bytes(start), _key_bytes(end) if end else b""
        if end_b:
            shared = next(
                (i for i, (a, b) in enumerate(zip(start_b, end_b)) if a != b), min(len(start_b), len(end_b))
            )
        else:
            shared = len(start_b) - len(start_b.lstrip(b"\xff"))
        # digits enough to tell apart keys a float fraction (~53 bits) of the range apart
        digits = shared + int(-math.log(fraction, 256)) + 7
        lo = _key_to_int(start_b, digits)
        hi = _key_to_int(end_b, digits) if end_b else 1 << (8 * digits)
        at = lo + int((hi - lo) * fraction)
        if at == lo:  # rounding must not give back an end unless the fraction is exactly 0 or 1
            at += 1
        elif at == hi:
            at -= 1
        key = at.to_bytes(digits, "big").rstrip(b"\0")
        if isinstance(start, bytes):
            return key
        return key.decode(encoding="unicode_escape", errors="replace")

    @classmethod
    def position_to_fraction(  # type: ignore[override]
        cls, key: bytes | str | None = None, start: bytes | str | None = None, end: bytes | str | None = None
    ) -> float:
        """The fraction of the keys of [start, end) that sort before `key` (0 for no key)."""
        if not key:
            return 0
        if start is None:
            start = "" if isinstance(key, str) else b""
        digits = len(start) + 7
        if key.startswith(start):  # type: ignore[arg-type]
            # a key just past start needs more digits to be told apart from it
            pad = "\0" if isinstance(key, str) else b"\0"
            digits = max(digits, len(key) - len(key[len(start) :].strip(pad)) + 7)  # type: ignore[arg-type]
        lo = _key_to_int(_key_bytes(start), digits)
        at = _key_to_int(_key_bytes(key), digits)
        hi = _key_to_int(_key_bytes(end), digits) if end else 1 << (8 * digits)
        return (at - lo) / (hi - lo)


def _key_bytes(key: bytes | str | None) -> bytes:
    """A key's bytes (a str key as UTF-8)."""
    if key is None:
        return b""
    return key.encode() if isinstance(key, str) else key


def _key_to_int(key: bytes, digits: int) -> int:
    """The base-256 fraction ``0.<key>`` scaled by ``256**digits`` (the key cut or zero-padded to `digits`)."""
    return int.from_bytes(key[:digits].ljust(digits, b"\0"), "big") if key else 0


class UnsplittableRangeTracker(RangeTracker):
    """Wraps a tracker and refuses every split; everything else is the wrapped tracker's."""

    def __init__(self, range_tracker: RangeTracker) -> None:
        if not isinstance(range_tracker, RangeTracker):
            raise TypeError(
                f"UnsplittableRangeTracker wraps a RangeTracker, got {type(range_tracker).__name__}"
            )
        self._range_tracker = range_tracker

    def start_position(self) -> Any:
        """The wrapped tracker's start."""
        return self._range_tracker.start_position()

    def stop_position(self) -> Any:
        """The wrapped tracker's stop."""
        return self._range_tracker.stop_position()

    def position_at_fraction(self, fraction: float) -> Any:
        """The wrapped tracker's position at `fraction`."""
        return self._range_tracker.position_at_fraction(fraction)

    def try_claim(self, position: Any) -> bool:
        """The wrapped tracker's claim."""
        return self._range_tracker.try_claim(position)

    def try_split(self, position: Any) -> None:
        """Never splits."""
        return None

    def set_current_position(self, position: Any) -> None:
        """Passed to the wrapped tracker."""
        self._range_tracker.set_current_position(position)

    def fraction_consumed(self) -> float:
        """The wrapped tracker's progress."""
        return self._range_tracker.fraction_consumed()

    def split_points(self) -> tuple[Any, Any]:
        """One split point: the whole range."""
        return (0, 1)

    def set_split_points_unclaimed_callback(self, callback: Callable[[Any], Any]) -> None:
        """Passed to the wrapped tracker."""
        self._range_tracker.set_split_points_unclaimed_callback(callback)


__all__ = [
    "LexicographicKeyRangeTracker",
    "OffsetRangeTracker",
    "OrderedPositionRangeTracker",
    "UnsplittableRangeTracker",
]
