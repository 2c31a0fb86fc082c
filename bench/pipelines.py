"""The benchmark pipelines, written once against Beam's API and built for either SDK.

Each builder takes the SDK module (`millstream` or `apache_beam`) as `beam`, so millstream and Beam run the
same program; only the sink differs (millstream collects in memory, Beam writes a text file).
"""

from __future__ import annotations

from typing import Any

SIZE_S = 60
PERIOD_S = 10
GAP_S = 30

#: Workload name -> (event variant, description).
WINDOWED = {
    "W1": ("dense", "tumbling 60 s windows, per-key count+sum"),
    "W2": ("dense", "sliding 60 s windows every 10 s, per-key count+sum"),
    "W3": ("sparse", "per-key session windows (gap 30 s), count+sum"),
}


def wordcount(beam: Any, source: Any) -> Any:
    """Word count: lines -> words -> (word, 1) -> sum per word."""
    return (
        source
        | "Split" >> beam.FlatMap(str.split)
        | "Pair" >> beam.Map(lambda w: (w, 1))
        | "Count" >> beam.CombinePerKey(sum)
    )


def window_fn(window: Any, task: str) -> Any:
    """The window fn of a windowed workload, from the SDK's `window` module."""
    if task == "W1":
        return window.FixedWindows(SIZE_S)
    if task == "W2":
        return window.SlidingWindows(SIZE_S, PERIOD_S)
    if task == "W3":
        return window.Sessions(GAP_S)
    raise ValueError(f"unknown windowed task {task!r}")


def count_sum_fn(beam: Any) -> Any:
    """A `(count, sum)` CombineFn subclassing the SDK's CombineFn."""

    class CountSum(beam.CombineFn):  # type: ignore[misc,name-defined]
        """Counts values and sums them."""

        def create_accumulator(self) -> tuple[int, int]:
            return (0, 0)

        def add_input(self, acc: tuple[int, int], v: int) -> tuple[int, int]:
            return (acc[0] + 1, acc[1] + v)

        def merge_accumulators(self, accs: Any) -> tuple[int, int]:
            c = s = 0
            for a, b in accs:
                c += a
                s += b
            return (c, s)

        def extract_output(self, acc: tuple[int, int]) -> tuple[int, int]:
            return acc

    return CountSum()


def format_fn(beam: Any) -> Any:
    """A DoFn turning ``(key, (count, sum))`` into ``(key, start_ms, end_ms, count, sum)`` of its window."""

    class Fmt(beam.DoFn):  # type: ignore[misc,name-defined]
        """Attaches the window bounds (milliseconds) to a result."""

        def process(self, kv: Any, w: Any = beam.DoFn.WindowParam) -> Any:
            k, (c, s) = kv
            yield (k, w.start.micros // 1000, w.end.micros // 1000, c, s)

    return Fmt()


def windowed(beam: Any, window: Any, task: str, events: Any) -> Any:
    """W1/W2/W3: stamp events, window them, count+sum per key and window, attach the window bounds.

    `events` is a PCollection of ``(key, t_seconds, value)`` tuples.
    """
    return (
        events
        | "Stamp" >> beam.Map(lambda e: window.TimestampedValue((e[0], e[2]), e[1]))
        | "Window" >> beam.WindowInto(window_fn(window, task))
        | "CountSum" >> beam.CombinePerKey(count_sum_fn(beam))
        | "Format" >> beam.ParDo(format_fn(beam))
    )


def parse_csv_event(line: str) -> tuple[str, float, int]:
    """A ``key,t,v`` text line as an event tuple."""
    k, t, v = line.split(",")
    return (k, float(t), int(v))


def parse_and_stamp(window: Any) -> Any:
    """The anchors' parse step: a ``key,t,v`` line as ``TimestampedValue((key, v), t)`` of the SDK's `window`."""
    timestamped = window.TimestampedValue

    def parse(line: str) -> Any:
        k, t, v = line.split(",")
        return timestamped((k, int(v)), float(t))

    return parse


def format_text_fn(beam: Any) -> Any:
    """The anchors' format DoFn: ``(key, (count, sum))`` as a ``key<TAB>start_ms<TAB>end_ms<TAB>count<TAB>sum``
    line of its window."""

    class FmtText(beam.DoFn):  # type: ignore[misc,name-defined]
        """Formats one result with its window bounds (milliseconds)."""

        def process(self, kv: Any, w: Any = beam.DoFn.WindowParam) -> Any:
            k, (c, s) = kv
            # the anchors' user code, verbatim: %-formatting is part of the program being measured
            yield "%s\t%d\t%d\t%d\t%d" % (k, w.start.micros // 1000, w.end.micros // 1000, c, s)  # noqa: UP031

    return FmtText()


def file_program(beam: Any, window: Any, task: str, source: Any, out_prefix: str) -> None:
    """The anchors' whole Beam program on an already-read PCollection: parse/stamp (when `source` holds
    text lines) or stamp (event tuples), window, count+sum, format with the window, write one text file."""
    (
        source
        | "Window" >> beam.WindowInto(window_fn(window, task))
        | "CountSum" >> beam.CombinePerKey(count_sum_fn(beam))
        | "Format" >> beam.ParDo(format_text_fn(beam))
        | "Write" >> beam.io.WriteToText(out_prefix, num_shards=1, shard_name_template="")
    )
