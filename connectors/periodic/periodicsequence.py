"""Beam's ``apache_beam.transforms.periodicsequence``: `PeriodicImpulse` and `PeriodicSequence`, fired on the
job's clock.

`PeriodicImpulse(start_timestamp, stop_timestamp, fire_interval)` emits one element per ``fire_interval``
seconds of [start, stop): by default the fire time itself (``start + fire_interval * i``, a number of
seconds, as Beam), or ``data[i % len(data)]``, or the value of a pre-timestamped ``(Timestamp, value)`` of
``data`` at its own timestamp. An element is emitted once processing time reaches its fire time, read through
the clock the runtime injects (`ProcessingTimeReader`), so a stop in the past emits everything at once (a
batch job) and a fake clock drives it in tests. ``apply_windowing`` puts each element in its own fixed window
of ``fire_interval``. The read position is checkpointed: a restarted job continues after the last fire.

Deviations, both because model code never reads the wall clock: the default ``start_timestamp`` is the time
the job starts (Beam: the time `periodicsequence` was imported), and `RebaseMode` rebases to the job clock's
time when the source opens.

`PeriodicSequence` (its input elements are ``(start, stop, interval)``) emits each element's sequence on the
job's clock too: a stateful step keeps the pending sequences per input and a processing-time timer at the next
fire time, whose output timestamp holds the watermark at that fire time until it fires (Beam's generator
advances its watermark estimator the same way). A stop may be left unbounded (``MAX_TIMESTAMP``). A sequence
whose start is long past catches up in batches of every due element (at most `_MAX_BATCH`), one per firing.
On Beam's runners, whose Python timers take no output timestamp, the watermark is held at the input's
timestamp instead (a limit of Beam's Python SDK; docs/runners.md).
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from millstream.engine.model.coders import PickleCoder
from millstream.engine.model.core import Map, ParDo, WindowInto
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.io import Read, Source, SourceBatch, SourceReader
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PBegin, PCollection
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, Timestamp, TimestampedValue, to_micros
from millstream.engine.model.userstate import (
    ProcessingTimeParam,
    ReadModifyWriteStateSpec,
    TimeDomain,
    TimerSpec,
    on_timer,
)
from millstream.engine.model.window import FixedWindows
from millstream.engine.translate.beam.hooks import register_beam_io

__all__ = ["PeriodicImpulse", "PeriodicImpulseSource", "PeriodicSequence", "RebaseMode", "beam_read"]

#: At most this many due elements go into one batch (a stop long past would otherwise be one huge batch).
_MAX_BATCH = 1024
_SPLIT = "impulse"


class RebaseMode(enum.Enum):
    """How the start and stop timestamps are rebased to the time the job starts (Beam's RebaseMode)."""

    REBASE_NONE = 0
    REBASE_ALL = 1
    REBASE_START = 2


def _seconds(t: Any) -> Any:
    """A timestamp argument as Beam's DoFn computes with it: a Timestamp as float seconds, numbers as given."""
    if isinstance(t, Timestamp):
        return t.micros / 1_000_000
    return t


def _is_pre_timestamped(data: Sequence[Any] | None) -> bool:
    return bool(data) and isinstance(data[0], tuple) and isinstance(data[0][0], Timestamp)  # type: ignore[index]


class _Sequence:
    """One impulse sequence: fire times ``start + interval * i`` for i in [0, total), and what each emits."""

    def __init__(self, start: Any, stop_us: int, interval: float, data: Sequence[Any] | None) -> None:
        self.start = start
        self.interval = interval
        self.data = data
        self.pre_timestamped = _is_pre_timestamped(data)
        start_us = to_micros(start)
        if stop_us < start_us:
            raise ValueError(
                f"PeriodicImpulse: stop_timestamp {stop_us} us is before start_timestamp {start_us} us"
            )
        self.total = math.ceil((stop_us - start_us) / round(interval * 1_000_000))

    def fire_us(self, index: int) -> int:
        """When element `index` is due, in processing time (µs)."""
        return to_micros(self.fire_seconds(index))

    def fire_seconds(self, index: int) -> Any:
        """Element `index`'s fire time in seconds, computed as Beam does (an int for int arguments)."""
        return self.start + self.interval * index

    def output(self, index: int) -> tuple[Any, int]:
        """Element `index`: (value, event time µs)."""
        fire = self.fire_seconds(index)
        if self.data is None:
            return fire, to_micros(fire)
        if self.pre_timestamped:
            event_time, value = self.data[index % len(self.data)]
            return value, to_micros(event_time)
        return self.data[index % len(self.data)], to_micros(fire)


class PeriodicImpulseSource(Source):
    """The source behind `PeriodicImpulse`: unbounded (as Beam's), finishing after its last fire time."""

    is_bounded = False
    stamps_event_time = True

    def __init__(
        self,
        start: Any,
        stop: Any,
        interval: float,
        data: Sequence[Any] | None,
        rebase: RebaseMode,
        span_us: int | None = None,
    ) -> None:
        self.span_us = span_us
        self.start = start
        self.stop = stop
        self.interval = interval
        self.data = data
        self.rebase = rebase

    def create_reader(self, options: Any) -> SourceReader:
        """A reader firing on the clock the runtime hands it."""
        return PeriodicImpulseReader(self)

    def display_name(self) -> str:
        """The impulse's range and interval."""
        return f"PeriodicImpulse({self.start}, {self.stop}, every {self.interval}s)"


class PeriodicImpulseReader(SourceReader):
    """Emits each element once the clock reaches its fire time; the position is the next element's index."""

    def __init__(self, source: PeriodicImpulseSource) -> None:
        self.source = source
        self.clock: Any = None
        self.index = 0
        self.start: Any = None
        self.stop_us = 0
        self.seq: _Sequence | None = None

    def use_clock(self, clock: Any) -> None:
        """The job's clock: fire times are awaited on it (`ProcessingTimeReader`)."""
        self.clock = clock

    async def open(self, positions: dict[str, Any] | None) -> None:
        """Fix the start and stop (rebased to the clock's time when asked), or take them from a checkpoint."""
        if self.clock is None:
            raise RuntimeError(
                "PeriodicImpulse: the runtime gave its reader no clock (use_clock before open)"
            )
        src = self.source
        saved = (positions or {}).get(_SPLIT)
        if saved is not None:
            self.index = int(saved["index"])
            self.start, self.stop_us = saved["start"], int(saved["stop_us"])
        else:
            now = Timestamp(micros=self.clock.now_us())
            start = now if src.start is None else src.start
            stop_us = to_micros(src.stop) if src.span_us is None else now.micros + src.span_us
            if src.rebase is RebaseMode.REBASE_ALL and src.start is not None:
                stop_us = now.micros + (stop_us - to_micros(src.start))
            if src.rebase is not RebaseMode.REBASE_NONE:
                start = now
            self.start, self.stop_us = _seconds(start), min(stop_us, MAX_MICROS)
        self.seq = _Sequence(self.start, self.stop_us, src.interval, src.data)

    async def read(self) -> SourceBatch | None:
        """The next due elements (waiting on the clock for the first of them), or None after the last."""
        seq = self.seq
        assert seq is not None, "read before open"
        if self.index >= seq.total:
            return None
        await self.clock.sleep_until(seq.fire_us(self.index))
        now = self.clock.now_us()
        values: list[Any] = []
        stamps: list[int] = []
        while self.index < seq.total and len(values) < _MAX_BATCH and seq.fire_us(self.index) <= now:
            value, ts = seq.output(self.index)
            values.append(value)
            stamps.append(ts)
            self.index += 1
        finished = self.index >= seq.total
        # As Beam's impulse before it waits: no element comes before the next fire time, so the watermark can
        # move there now (not with pre-timestamped data, whose event times are the data's own)
        promise = None if finished or seq.pre_timestamped else seq.fire_us(self.index)
        return SourceBatch(_SPLIT, values, stamps, finished=finished, watermark_us=promise)

    def positions(self) -> dict[str, Any]:
        """The next index and the (possibly rebased) start and stop, so a restart continues the sequence."""
        return {_SPLIT: {"index": self.index, "start": self.start, "stop_us": self.stop_us}}

    def backlog(self) -> int | None:
        """Elements still to fire."""
        return None if self.seq is None else self.seq.total - self.index


def beam_read(read: Any, beam: Any) -> Any:
    """``Read(PeriodicImpulseSource)`` as Beam's own ``PeriodicImpulse`` (for Beam's runners, through the
    translator's IO hook); timestamps become ``apache_beam`` Timestamps."""
    from apache_beam.transforms import periodicsequence as beam_periodic
    from apache_beam.utils.timestamp import Timestamp as BeamTimestamp

    src: PeriodicImpulseSource = read.source

    def beam_time(t: Any) -> Any:
        return BeamTimestamp(micros=t.micros) if isinstance(t, Timestamp) else t

    data = src.data
    if _is_pre_timestamped(data):
        data = [(beam_time(t), v) for t, v in data]  # type: ignore[union-attr]
    kwargs: dict[str, Any] = {} if src.start is None else {"start_timestamp": beam_time(src.start)}
    if src.span_us is None:
        kwargs["stop_timestamp"] = BeamTimestamp(micros=min(to_micros(src.stop), MAX_MICROS))
    return beam_periodic.PeriodicImpulse(
        fire_interval=src.interval,
        data=data,
        rebase=beam_periodic.RebaseMode[src.rebase.name],
        **kwargs,
    )


register_beam_io(PeriodicImpulseSource, "millstream.connectors.periodic.periodicsequence:beam_read")


class PeriodicImpulse(PTransform):
    """Elements fired every ``fire_interval`` seconds from ``start_timestamp`` (inclusive) to ``stop_timestamp``
    (exclusive), on processing time; see the module docstring.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | PeriodicImpulse(0, 3, 1) | beam.Map(print)
    0
    1
    2
    """

    def __init__(
        self,
        start_timestamp: Any = None,
        stop_timestamp: Any = MAX_MICROS / 1_000_000,
        fire_interval: float = 360.0,
        apply_windowing: bool = False,
        data: Sequence[Any] | None = None,
        rebase: RebaseMode = RebaseMode.REBASE_NONE,
    ) -> None:
        if not fire_interval or fire_interval <= 0:
            raise ValueError(f"PeriodicImpulse: fire_interval must be > 0 seconds, got {fire_interval!r}")
        if data is not None and len(data) == 0:
            raise ValueError("PeriodicImpulse: data must hold at least one element (or be None)")
        if not isinstance(rebase, RebaseMode):
            raise TypeError(f"PeriodicImpulse: rebase must be a RebaseMode, got {rebase!r}")
        self.start_ts = start_timestamp
        self.stop_ts = stop_timestamp
        self.interval = fire_interval
        self.apply_windowing = apply_windowing
        self.data = data
        self.rebase = rebase
        #: With data, no start and no stop: the impulse lasts this long from the job's start (µs).
        self.span_us: int | None = None
        if data:
            self._adjust_duration_to_data(data)
        super().__init__()

    def _adjust_duration_to_data(self, data: Sequence[Any]) -> None:
        """As Beam: an unbounded stop ends one interval after the data; too little data repeats (or, when it
        is pre-timestamped, is an error)."""
        interval_us = round(self.interval * 1_000_000)
        data_us = (len(data) - 1) * interval_us
        if self.start_ts is None:
            # the start is the job's start time, not known yet: the reader ends the data's span after it
            if to_micros(self.stop_ts) >= MAX_MICROS:
                self.span_us = data_us + interval_us
            return
        start = Timestamp.of(self.start_ts)
        if to_micros(self.stop_ts) >= MAX_MICROS:
            self.stop_ts = Timestamp(micros=start.micros + data_us + interval_us)
        impulse_us = to_micros(self.stop_ts) - start.micros
        if data_us + interval_us < impulse_us:
            message = (
                "The number of elements in the provided data sequence is not enough to span the full impulse "
                f"duration: {impulse_us / 1e6}s expected, {data_us / 1e6}s of data."
            )
            if _is_pre_timestamped(data):
                raise ValueError(f"PeriodicImpulse: {message} Provide more data or decrease stop_timestamp.")
            warnings.warn(f"{message} The data will be repeated.", stacklevel=3)

    def expand(self, pbegin: PBegin) -> PCollection:
        """The impulse source, then one fixed window per element when ``apply_windowing``."""
        source = PeriodicImpulseSource(
            self.start_ts, self.stop_ts, self.interval, self.data, self.rebase, self.span_us
        )
        result: PCollection = pbegin | "GenSequence" >> Read(source)
        if self.apply_windowing:
            result = result | "ApplyWindowing" >> WindowInto(FixedWindows(self.interval))
        return result


def _sequence_of(element: Any) -> list[Any]:
    """The pending form of an input ``(start, stop, interval)``: ``[start, stop µs, interval, next index]``."""
    try:
        start, stop, interval = element
    except (TypeError, ValueError):
        raise ValueError(
            f"PeriodicSequence: an element must be (start, stop, interval), got {element!r}"
        ) from None
    if interval <= 0:
        raise ValueError(f"PeriodicSequence: element {element!r} has fire interval <= 0")
    stop_us = min(to_micros(stop), MAX_MICROS)
    _Sequence(_seconds(start), stop_us, interval, None)  # refuses a stop before the start
    return [_seconds(start), stop_us, interval, 0]


class _FireOnTheJobClock(DoFn):
    """Emits each pending sequence's elements when the job's clock reaches their fire times: a
    processing-time timer at the earliest next fire time, whose output timestamp (that fire time) holds the
    watermark there, as Beam's impulse generator advances its watermark estimator to each fire time."""

    PENDING = ReadModifyWriteStateSpec("pending", PickleCoder())
    FIRE = TimerSpec("fire", TimeDomain.REAL_TIME)

    def process(
        self,
        kv: Any,
        t: Any = DoFn.TimestampParam,
        pending: Any = DoFn.StateParam(PENDING),
        fire: Any = DoFn.TimerParam(FIRE),
    ) -> Iterator[Any]:
        """Add the sequence `kv` names to the pending ones and arm the timer at the earliest fire time
        (holding the watermark no lower than this element's timestamp); emits nothing itself."""
        items, hold_us = _load(pending)
        items.append(_sequence_of(kv[1]))
        _arm(items, max(hold_us, to_micros(t)), pending, fire)
        return iter(())

    @on_timer(FIRE)
    def fire_due(
        self,
        now: Any = ProcessingTimeParam,
        pending: Any = DoFn.StateParam(PENDING),
        fire: Any = DoFn.TimerParam(FIRE),
    ) -> Iterator[Any]:
        """Every element due at the processing time the timer fires at (at most `_MAX_BATCH`, so a start long
        past catches up in bounded batches, one per timer-loop turn), then the timer again for the next one."""
        now_us = to_micros(now)
        out: list[Any] = []
        items = []
        due, hold_us = _load(pending)
        for start, stop_us, interval, index in due:
            seq = _Sequence(start, stop_us, interval, None)
            while index < seq.total and seq.fire_us(index) <= now_us and len(out) < _MAX_BATCH:
                value, ts = seq.output(index)
                out.append(TimestampedValue(value, Timestamp(micros=ts)))
                index += 1
            if index < seq.total:
                items.append([start, stop_us, interval, index])
        _arm(items, hold_us, pending, fire)
        return iter(out)


def _load(pending: Any) -> tuple[list[Any], int]:
    """The pending sequences and the watermark hold they were armed with (a bare list: armed before the hold
    was kept, nothing to keep above)."""
    value = pending.read()
    if isinstance(value, dict):
        return list(value["items"]), value["hold_us"]
    return list(value or []), MIN_MICROS


def _arm(items: list[Any], floor_us: int, pending: Any, fire: Any) -> None:
    """Keep the unfinished sequences and set the timer to the earliest next fire time (or forget the key).

    Its output timestamp (the watermark hold) is that time, but never before `floor_us`: the timestamp of the
    input or of the firing timer, below which an output timestamp is refused (Beam Java's rule); a sequence
    starting before its input's timestamp still emits its elements at their own timestamps."""
    if not items:
        pending.clear()
        return
    next_us = min(_Sequence(a, b, c, None).fire_us(i) for a, b, c, i in items)
    hold_us = max(next_us, floor_us)
    pending.write({"items": items, "hold_us": hold_us})
    fire.set(Timestamp(micros=next_us), output_timestamp=Timestamp(micros=hold_us))


def _keyed(element: Any) -> tuple[Any, Any]:
    """Each input is its own key, so its sequence has its own timer (equal inputs share one, each emitted)."""
    try:
        hash(element)
    except TypeError:  # a list as input: its text is the key
        return repr(element), element
    return element, element


class PeriodicSequence(PTransform):
    """For each input ``(start, stop, interval)``, the fire times ``start + interval * i`` in [start, stop),
    each at its own event time, emitted when the job's clock reaches it (see the module docstring)."""

    def expand(self, pcoll: PCollection) -> PCollection:
        """Each element's sequence (Beam's PeriodicSequence.expand)."""
        return pcoll | "Key" >> Map(_keyed) | "GenSequence" >> ParDo(_FireOnTheJobClock())
