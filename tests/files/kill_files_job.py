"""The job the file kill -9 tests run in a subprocess: a bounded CSV replay (a large plain file read in
byte-range splits and a gzip file) into exactly-once text (2 shards, header), JSON-lines and CSV (3 shards)
files, checkpointing every 50 ms."""

from __future__ import annotations

import sys

import millstream as beam
from millstream.io import ReadFromCsv, WriteToCsv, WriteToJson, WriteToText
from millstream.options.pipeline_options import PipelineOptions


def main(argv: list[str]) -> None:
    pattern, out, *flags = argv
    options = PipelineOptions(["--checkpoint_interval=0.05", "--batch_size=500", "--no_progress", *flags])
    with beam.Pipeline(options=options) as p:
        rows = p | ReadFromCsv(pattern, converters={"v": int}, desired_split_size=1 << 20)
        (
            rows
            | "Text" >> beam.Map(lambda r: f"{r['id']}:{r['v']}")
            | WriteToText(f"{out}/text", ".txt", num_shards=2, header="id:v")
        )
        rows | "Json" >> WriteToJson(f"{out}/json")
        (
            rows
            | "Double" >> beam.Map(lambda r: {"id": r["id"], "v2": r["v"] * 2})
            | WriteToCsv(f"{out}/csv", num_shards=3)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
