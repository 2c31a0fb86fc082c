"""A job whose keyed state is large: JSON-lines events -> per-key windows with a combiner whose accumulator
carries a pad -> exactly-once JSON-lines files, in streaming mode. Run by test_large_state.py and
test_incremental_kill9.py in a subprocess, usually with a small --state_cache_entries.

The pad makes the state large in memory but cheap to write, so memory, not I/O, dominates.
``fixed`` mode: 10 s fixed windows, accumulating, allowed lateness 10^6 s, so every fired window keeps its
accumulators for late data (state grows with the input). ``sessions`` mode: 5 s session windows.
``general`` mode: 10 s fixed windows with an early count trigger (the general reducer path, per-key timers).
Output rows: ``[key, window start, count, sum, pane index]`` (sessions: the session start).
At exit it logs the incremental state counters (entries evicted and loaded back) and its peak RSS to stderr.
"""

from __future__ import annotations

import logging
import resource
import sys
from typing import Any

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import trigger, window

PAD = 128


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM belongs to the process's own memory map, whereas getrusage's ru_maxrss
    keeps the high-water mark of the (large) test process that forked this one."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pad() -> set[int]:
    """About 8 KB in memory, about 140 bytes encoded."""
    return set(range(PAD))


class PaddedCountSum(beam.CombineFn):
    """(count, sum) with a pad that is large in memory (small when encoded): large state per (key, window)."""

    def create_accumulator(self) -> Any:
        return (0, 0, pad())

    def add_input(self, acc: Any, v: Any) -> Any:
        return (acc[0] + 1, acc[1] + v, acc[2])

    def merge_accumulators(self, accs: Any) -> Any:
        c = s = 0
        for a in accs:
            c += a[0]
            s += a[1]
        return (c, s, pad())

    def extract_output(self, acc: Any) -> Any:
        return (acc[0], acc[1])


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    mode, src, out, *flags = argv
    options = PipelineOptions(["--streaming", *flags])
    if mode == "fixed":
        windowing = beam.WindowInto(
            window.FixedWindows(10),
            allowed_lateness=1_000_000,
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
        )
    elif mode == "general":
        windowing = beam.WindowInto(
            window.FixedWindows(10),
            trigger=trigger.AfterWatermark(early=trigger.AfterCount(3)),
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
        )
    else:
        windowing = beam.WindowInto(window.Sessions(5))
    with beam.Pipeline(options=options) as p:
        (
            p
            | ReadFromJson(src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=3.0)
            | beam.Map(lambda e: (e["k"], e["v"]))
            | windowing
            | beam.CombinePerKey(PaddedCountSum())
            | beam.Map(
                lambda kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam: [
                    kv[0],
                    round(float(w.start), 3),
                    *kv[1],
                    pane.index,
                ]
            )
            | WriteToJson(out)
        )
    print(f"peak_rss_kib={peak_rss_kib()}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
