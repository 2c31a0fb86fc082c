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


RECORDS = [
    {"name": f"n{i:02d}", "count": i, "score": i * 0.25, "tag": None if i % 4 else "four"} for i in range(24)
]
COLUMNS = ["name", "count", "score", "tag"]
AVRO_SCHEMA = {
    "type": "record",
    "name": "Rec",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "score", "type": "double"},
        {"name": "tag", "type": ["null", "string"]},
    ],
}


def parquet_schema() -> Any:
    """The records' pyarrow schema (Beam's WriteToParquet needs one)."""
    import pyarrow as pa

    return pa.schema(
        [("name", pa.string()), ("count", pa.int64()), ("score", pa.float64()), ("tag", pa.string())]
    )


def write_formats(p: Any, out: str) -> None:
    """The same records to Avro, Parquet, CSV with a header and JSON lines, one file each."""
    from millstream.io import WriteToAvro, WriteToCsv, WriteToJson, WriteToParquet

    records = p | "Records" >> beam.Create(RECORDS)
    records | "Avro" >> WriteToAvro(f"{out}/recs", AVRO_SCHEMA, file_name_suffix=".avro", num_shards=1)
    records | "Parquet" >> WriteToParquet(
        f"{out}/recs", parquet_schema(), file_name_suffix=".parquet", num_shards=1
    )
    records | "Csv" >> WriteToCsv(f"{out}/recs", num_shards=1, columns=COLUMNS)
    records | "Json" >> WriteToJson(f"{out}/recs", num_shards=1)


def read_formats(p: Any, src: str) -> dict[str, Any]:
    """The files `write_formats` wrote, read back by each format's reader (Parquet: two columns)."""
    from millstream.io import ReadFromAvro, ReadFromCsv, ReadFromJson, ReadFromParquet

    return {
        "avro": p | "ReadAvro" >> ReadFromAvro(f"{src}/recs*.avro"),
        "parquet": p | "ReadParquet" >> ReadFromParquet(f"{src}/recs*.parquet", columns=["name", "score"]),
        "csv": p | "ReadCsv" >> ReadFromCsv(f"{src}/recs*.csv"),
        "json": p | "ReadJson" >> ReadFromJson(f"{src}/recs*.json"),
    }


def tagged_stream(lockstep: bool) -> Any:
    """A TestStream with two tagged outputs of integers. With `lockstep` both outputs' watermarks advance
    together; without, only "clicks" passes 15, so the views element at 6 is on time and the clicks one late."""
    from millstream.testing.test_stream import TestStream

    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(1, 1), window.TimestampedValue(2, 2)], tag="clicks")
        .add_elements([window.TimestampedValue(10, 3)], tag="views")
        .advance_watermark_to(15, tag="clicks")
    )
    if lockstep:
        stream = stream.advance_watermark_to(15, tag="views")
    return (
        stream.add_elements([window.TimestampedValue(7, 5)], tag="clicks")
        .add_elements([window.TimestampedValue(20, 6)], tag="views")
        .add_elements([window.TimestampedValue(5, 16)], tag="clicks")
        .advance_watermark_to_infinity(tag="clicks")
        .advance_watermark_to_infinity(tag="views")
    )


def sums_per_tag(p: Any, stream: Any) -> dict[str, Any]:
    """Each output of a tagged stream summed per 10-second window: tag -> (window start, sum)."""
    outputs = p | "Stream" >> stream
    return {
        tag: (
            outputs[tag]
            | f"Key[{tag}]" >> beam.Map(lambda v: ("k", v))
            | f"Window[{tag}]" >> beam.WindowInto(window.FixedWindows(10))
            | f"Sum[{tag}]" >> beam.CombinePerKey(sum)
            | f"Start[{tag}]" >> beam.Map(lambda kv, w=beam.DoFn.WindowParam: (float(w.start), kv[1]))
        )
        for tag in ("clicks", "views")
    }
