"""Pipelines run both locally and on Prism by test_prism_jobs.py (loaded by value, so workers need not import it)."""

from __future__ import annotations

from typing import Any

import millstream as beam
from millstream.transforms import window
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import (
    BagStateSpec,
    CombiningValueStateSpec,
    OrderedListStateSpec,
    TimerSpec,
    on_timer,
)
from millstream.utils.timestamp import Timestamp


class BufferUntilWindowEnd(beam.DoFn):
    """Buffers each key's values in a bag and emits them, with a running count, when the window ends."""

    BUF = BagStateSpec("buf")
    SEEN = CombiningValueStateSpec("seen", sum)
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def process(
        self,
        kv: Any,
        w=beam.DoFn.WindowParam,
        buf=beam.DoFn.StateParam(BUF),
        seen=beam.DoFn.StateParam(SEEN),
        flush=beam.DoFn.TimerParam(FLUSH),
    ) -> Any:
        buf.add(kv[1])
        seen.add(1)
        flush.set(w.max_timestamp())
        return []

    @on_timer(FLUSH)
    def on_flush(
        self,
        key=beam.DoFn.KeyParam,
        w=beam.DoFn.WindowParam,
        ts=beam.DoFn.TimestampParam,
        buf=beam.DoFn.StateParam(BUF),
        seen=beam.DoFn.StateParam(SEEN),
    ) -> Any:
        yield (key, float(w.start), sorted(buf.read()), seen.read(), float(ts) <= float(w.end))
        buf.clear()


EVENTS = [
    ("a", 1, 1.0),
    ("b", 2, 3.0),
    ("a", 3, 9.5),
    ("a", 4, 12.0),
    ("b", 5, 25.0),
    ("b", 6, 29.9),
    ("c", 7, 31.0),
]


def stateful(p: Any) -> Any:
    """(c): a stateful DoFn with a bag, a combining cell and an event-time timer, in fixed windows."""
    return (
        p
        | "Events" >> beam.Create(EVENTS)
        | "Stamp" >> beam.Map(lambda e: window.TimestampedValue((e[0], e[1]), e[2]))
        | "Window" >> beam.WindowInto(window.FixedWindows(10))
        | "Buffer" >> beam.ParDo(BufferUntilWindowEnd())
    )


class SortInGlobalWindow(beam.DoFn):
    """Keeps each key's values in ordered-list state keyed by millstream `Timestamp`s and, when the global
    window ends, emits them in order, a range of them, and whether the keys it read back compare with
    millstream's timestamps (Beam's ordered list sorts on Beam's own Timestamp)."""

    SORTED = OrderedListStateSpec("sorted")
    DONE = TimerSpec("done", TimeDomain.WATERMARK)

    def process(
        self,
        kv: Any,
        ts=beam.DoFn.TimestampParam,
        sorted_=beam.DoFn.StateParam(SORTED),
        done=beam.DoFn.TimerParam(DONE),
    ) -> Any:
        sorted_.add((ts, kv[1]))
        done.set(window.GlobalWindow().end)
        return []

    @on_timer(DONE)
    def on_done(self, key=beam.DoFn.KeyParam, sorted_=beam.DoFn.StateParam(SORTED)) -> Any:
        pairs = list(sorted_.read())
        middle = [v for _, v in sorted_.read_range(Timestamp.of(2), Timestamp.of(5))]
        sorted_.clear_range(Timestamp.of(0), Timestamp.of(3))
        rest = [v for _, v in sorted_.read()]
        ordered = all(Timestamp.of(0) <= t < Timestamp.of(100) for t, _ in pairs)
        yield (key, [(float(t), v) for t, v in pairs], middle, rest, ordered)


def ordered(p: Any) -> Any:
    """A stateful DoFn with ordered-list state and a timer at the end of the global window (the pattern of
    Beam's cookbook ordered_window_elements)."""
    return (
        p
        | "Values" >> beam.Create([("k", 4), ("k", 1), ("j", 7), ("k", 3), ("k", 2)])
        | "Stamp" >> beam.Map(lambda kv: window.TimestampedValue(kv, float(kv[1])))
        | "Sort" >> beam.ParDo(SortInGlobalWindow())
    )


def parse(line: str) -> Any:
    key, value, ts = line.split(",")
    return window.TimestampedValue((key, int(value)), float(ts))


def files(p: Any, src: str, out_prefix: str) -> None:
    """(d): text in, fixed windows of one minute, a sum per key and window, text out."""
    (
        p
        | "Read" >> beam.io.ReadFromText(src)
        | "Parse" >> beam.Map(parse)
        | "Minute" >> beam.WindowInto(window.FixedWindows(60))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Format" >> beam.Map(lambda kv, w=beam.DoFn.WindowParam: f"{kv[0]},{kv[1]},{float(w.start)}")
        | "Write" >> beam.io.WriteToText(out_prefix, ".csv", num_shards=1)
    )
