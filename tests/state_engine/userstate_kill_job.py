"""The job the stateful-DoFn kill -9 tests run in a subprocess: Beam's documented state-and-timers examples
on a replayable JSON-lines source, written to exactly-once JSON-lines files.

- Buffering with a bag and a flush timer: values are buffered per key in a `BagStateSpec`; every `BATCH`
  values (counted in a `CombiningValueStateSpec`) the buffer is flushed, and an event-time timer set at the
  end of the element's 10 s bucket flushes what is left when the watermark passes it. Output rows
  ``["batch", key, [ids...]]``.
- A per-key counter in a `ReadModifyWriteStateSpec`: output rows ``["count", key, n]``, one per element.

Streaming mode, so state, timers and output are checkpointed throughout the run.
"""

from __future__ import annotations

import sys
from typing import Any

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms.combiners import CountCombineFn
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import (
    BagStateSpec,
    CombiningValueStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)

DoFn = beam.DoFn
BATCH = 7
BUCKET = 10


class BufferAndFlush(DoFn):
    """Buffer ids per key; flush every BATCH ids and, by an event-time timer, at the end of each bucket."""

    BUFFER = BagStateSpec("buffer", None)
    COUNT = CombiningValueStateSpec("count", None, CountCombineFn())
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        ts: Any = DoFn.TimestampParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
        flush: Any = DoFn.TimerParam(FLUSH),
    ) -> Any:
        key, ident = element
        buffer.add(ident)
        count.add(1)
        flush.set((int(ts) // BUCKET + 1) * BUCKET)
        if count.read() >= BATCH:
            yield ["batch", key, sorted(buffer.read())]
            buffer.clear()
            count.clear()

    @on_timer(FLUSH)
    def on_flush(
        self,
        key: Any = DoFn.KeyParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
    ) -> Any:
        if count.read():
            yield ["batch", key, sorted(buffer.read())]
            buffer.clear()
            count.clear()


class CountPerKey(DoFn):
    """The running count of each key (Beam's ReadModifyWriteState example)."""

    SEEN = ReadModifyWriteStateSpec("seen", None)

    def process(self, element: Any, seen: Any = DoFn.StateParam(SEEN)) -> Any:
        n = (seen.read() or 0) + 1
        seen.write(n)
        yield ["count", element[0], n]


def main(argv: list[str]) -> None:
    src, out, *flags = argv
    options = PipelineOptions(["--streaming", *flags])
    with beam.Pipeline(options=options) as p:
        keyed = (
            p
            | ReadFromJson(src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=3.0)
            | beam.Map(lambda e: (e["k"], e["id"]))
        )
        batches = keyed | "Buffer" >> beam.ParDo(BufferAndFlush())
        counts = keyed | "Count" >> beam.ParDo(CountPerKey())
        (batches, counts) | beam.Flatten() | WriteToJson(out)


if __name__ == "__main__":
    main(sys.argv[1:])
