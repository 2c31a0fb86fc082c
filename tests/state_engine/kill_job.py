"""The job the kill -9 tests run in a subprocess: JSON-lines events -> fixed 10 s windows, sum per key ->
exactly-once JSON-lines files. Streaming mode, so windows fire (and output commits) throughout the run."""

from __future__ import annotations

import sys

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window


def main(argv: list[str]) -> None:
    src, out, *flags = argv
    options = PipelineOptions(["--streaming", *flags])
    with beam.Pipeline(options=options) as p:
        (
            p
            | ReadFromJson(src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=3.0)
            | beam.Map(lambda e: (e["k"], e["v"]))
            | beam.WindowInto(window.FixedWindows(10))
            | beam.CombinePerKey(sum)
            | beam.Map(lambda kv, w=beam.DoFn.WindowParam: [kv[0], int(w.start), kv[1]])
            | WriteToJson(out)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
