"""A plain Beam script that reads JSON lines without `.with_dead_letters()` and prints its total."""

from __future__ import annotations

import sys

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions

if __name__ == "__main__":
    path = sys.argv[1]
    with beam.Pipeline(options=PipelineOptions(sys.argv[2:])) as p:
        (
            p
            | "Read" >> beam.io.ReadFromJson(path)
            | beam.Map(lambda e: e["v"])
            | beam.CombineGlobally(sum)
            | beam.Map(lambda n: print(f"total {n}", flush=True))
        )
