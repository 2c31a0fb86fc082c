"""Event time as Beam presents it (`Timestamp`, `Duration`, `TimestampedValue`), stored as integer microseconds.

The runtime never allocates these objects per element: on the hot path a timestamp is a plain ``int`` of
microseconds since the epoch. The classes exist for the user-facing API and convert at the edges.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any, Generic, TypeVar, Union

T = TypeVar("T")

MICROS_PER_SECOND = 1_000_000
#: The smallest and largest representable event times, in microseconds (Beam's values).
MIN_MICROS = -9223372036854775
MAX_MICROS = 9223372036854775
#: End of the global window: MAX_TIMESTAMP minus one day, as in Beam.
END_OF_GLOBAL_WINDOW_MICROS = MAX_MICROS - 24 * 3600 * MICROS_PER_SECOND


def to_micros(value: Any) -> int:
    """Convert seconds (int/float), a `Timestamp`/`Duration` or a datetime to integer microseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * MICROS_PER_SECOND
    if isinstance(value, float):
        m = value * 1_000_000.0
        return int(m + 0.5) if m >= 0 else -int(0.5 - m)
    if isinstance(value, (Timestamp, Duration)):
        return value.micros
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        return (delta.days * 86400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds
    if isinstance(value, datetime.timedelta):
        return (value.days * 86400 + value.seconds) * MICROS_PER_SECOND + value.microseconds
    micros = getattr(value, "micros", None)
    if isinstance(micros, int):
        return micros
    raise TypeError(f"cannot interpret {value!r} (type {type(value).__name__}) as a time in seconds")


def _seconds_repr(kind: str, micros: int) -> str:
    """Beam's repr of an instant or a duration: whole seconds bare, else six decimals (``Timestamp(1.5)`` is
    ``Timestamp(1.500000)``, ``Timestamp(60)`` is ``Timestamp(60)``)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_SECOND)
    return f"{kind}({sign}{whole}.{frac:06d})" if frac else f"{kind}({sign}{whole})"


@functools.total_ordering
class Timestamp:
    """A point in event time with microsecond precision, compatible with `apache_beam.utils.timestamp`."""

    __module__ = "millstream.utils.timestamp"  # where Beam users find it (and see it in type() output)
    __slots__ = ("micros",)

    def __init__(self, seconds: int | float = 0, micros: int = 0) -> None:
        self.micros = to_micros(seconds) + int(micros)

    @classmethod
    def of(cls, seconds: Any) -> Timestamp:
        """A Timestamp from seconds or from another Timestamp."""
        if isinstance(seconds, Timestamp):
            return seconds
        return cls(micros=to_micros(seconds))

    @classmethod
    def from_micros(cls, micros: int) -> Timestamp:
        """A Timestamp from integer microseconds."""
        return cls(micros=micros)

    @classmethod
    def from_utc_datetime(cls, dt: datetime.datetime) -> Timestamp:
        """A Timestamp from an aware UTC datetime."""
        return cls(micros=to_micros(dt))

    @classmethod
    def from_rfc3339(cls, text: str) -> Timestamp:
        """A Timestamp from an RFC 3339 string such as ``2013-01-01T05:17:00Z``."""
        return cls.from_utc_datetime(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))

    def seconds(self) -> float:
        """Seconds since the epoch as a float."""
        return self.micros / MICROS_PER_SECOND

    def to_utc_datetime(self, has_tz: bool = False) -> datetime.datetime:
        """This instant as a UTC datetime: naive as in Beam (like ``datetime.utcnow()``), aware with `has_tz`.

        >>> str(Timestamp(seconds=0).to_utc_datetime()), str(Timestamp(seconds=0).to_utc_datetime(has_tz=True))
        ('1970-01-01 00:00:00', '1970-01-01 00:00:00+00:00')
        """
        aware = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
            microseconds=self.micros
        )
        return aware if has_tz else aware.replace(tzinfo=None)

    def to_rfc3339(self) -> str:
        """RFC 3339 text, UTC, with a trailing Z."""
        return self.to_utc_datetime(has_tz=True).isoformat().replace("+00:00", "Z")

    def __float__(self) -> float:
        return self.micros / MICROS_PER_SECOND

    def __int__(self) -> int:
        return self.micros // MICROS_PER_SECOND

    def __repr__(self) -> str:
        if self.micros <= MIN_MICROS:
            return "Timestamp(MIN_TIMESTAMP)"
        if self.micros >= MAX_MICROS:
            return "Timestamp(MAX_TIMESTAMP)"
        return _seconds_repr("Timestamp", self.micros)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Timestamp):
            return self.micros == other.micros
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return self.micros == to_micros(other)
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Timestamp):
            return self.micros < other.micros
        if isinstance(other, (int, float)):
            return self.micros < to_micros(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.micros)

    def __add__(self, other: Any) -> Timestamp:
        if isinstance(other, Timestamp):
            raise TypeError("cannot add two Timestamps")
        return Timestamp(micros=self.micros + to_micros(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, Timestamp):
            return Duration(micros=self.micros - other.micros)
        return Timestamp(micros=self.micros - to_micros(other))

    def __mod__(self, other: Any) -> Duration:
        return Duration(micros=self.micros % to_micros(other))


@functools.total_ordering
class Duration:
    """A span of event time with microsecond precision, compatible with `apache_beam.utils.timestamp`."""

    __module__ = "millstream.utils.timestamp"
    __slots__ = ("micros",)

    def __init__(self, seconds: int | float = 0, micros: int = 0) -> None:
        self.micros = to_micros(seconds) + int(micros)

    @classmethod
    def of(cls, seconds: Any) -> Duration:
        """A Duration from seconds or another Duration."""
        if isinstance(seconds, Duration):
            return seconds
        return cls(micros=to_micros(seconds))

    def __float__(self) -> float:
        return self.micros / MICROS_PER_SECOND

    def __repr__(self) -> str:
        return _seconds_repr("Duration", self.micros)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Duration):
            return self.micros == other.micros
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return self.micros == to_micros(other)
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Duration):
            return self.micros < other.micros
        if isinstance(other, (int, float)):
            return self.micros < to_micros(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.micros)

    def __neg__(self) -> Duration:
        return Duration(micros=-self.micros)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Timestamp):
            return other + self
        return Duration(micros=self.micros + to_micros(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Duration:
        return Duration(micros=self.micros - to_micros(other))

    def __mul__(self, other: int) -> Duration:
        return Duration(micros=self.micros * other)

    def __mod__(self, other: Any) -> Duration:
        return Duration(micros=self.micros % to_micros(other))


MIN_TIMESTAMP = Timestamp(micros=MIN_MICROS)
MAX_TIMESTAMP = Timestamp(micros=MAX_MICROS)


class TimestampedValue(Generic[T]):
    """A value with an event timestamp; returning one from a DoFn sets the element's timestamp.

    >>> TimestampedValue("a", 1.5).micros
    1500000
    """

    # One is built per element by the user's stamping function, so construction only stores: seconds given as
    # a float or an int stay as given and become microseconds when read (`micros`, or `micros_of` for a whole
    # batch at once); anything else is converted (and checked) here, as a `Timestamp`.
    __slots__ = ("value", "_t")

    def __init__(self, value: T, timestamp: Any) -> None:
        self.value = value
        self._t: Any = (
            timestamp if type(timestamp) in _PLAIN_SECONDS else Timestamp(micros=to_micros(timestamp))
        )

    @property
    def micros(self) -> int:
        """The event timestamp in integer microseconds (float seconds round to the nearest microsecond)."""
        t = self._t
        kind = type(t)
        if kind is float:
            m = t * 1_000_000.0  # nearest microsecond; int() is much cheaper than round()
            return int(m + 0.5) if m >= 0 else -int(0.5 - m)
        if kind is int:
            return t * 1_000_000  # type: ignore[no-any-return]
        return t.micros  # type: ignore[no-any-return]

    @micros.setter
    def micros(self, micros: int) -> None:
        self._t = Timestamp(micros=micros)

    @property
    def timestamp(self) -> Timestamp:
        """The event timestamp as a `Timestamp`."""
        return Timestamp(micros=self.micros)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TimestampedValue) and self.value == other.value and self.micros == other.micros
        )

    def __hash__(self) -> int:
        return hash((TimestampedValue, self.micros))

    def __repr__(self) -> str:
        return f"TimestampedValue({self.value!r}, {self.micros / MICROS_PER_SECOND:.6f})"


#: Beam's type aliases of the arguments that accept an instant or a duration.
TimestampTypes = Union[int, float, Timestamp]
DurationTypes = Union[int, float, Duration]
TimestampDurationTypes = Union[int, float, Duration, Timestamp]
_PLAIN_SECONDS = frozenset({float, int})
_ONLY_FLOAT = {float}
_ONLY_INT = {int}


def micros_of(tvs: list[TimestampedValue[Any]]) -> list[int]:
    """The `micros` of every TimestampedValue of a batch, converted in one pass when they are all float
    (or all int) seconds.

    >>> micros_of([TimestampedValue("a", 1.5), TimestampedValue("b", 2)])
    [1500000, 2000000]
    """
    raw: list[Any] = [tv._t for tv in tvs]
    kinds = set(map(type, raw))
    if kinds == _ONLY_FLOAT:
        # the same arithmetic as `TimestampedValue.micros`, inline
        return [int(t * 1_000_000.0 + 0.5) if t >= 0 else -int(0.5 - t * 1_000_000.0) for t in raw]
    if kinds == _ONLY_INT:
        return [t * 1_000_000 for t in raw]
    return [tv.micros for tv in tvs]
