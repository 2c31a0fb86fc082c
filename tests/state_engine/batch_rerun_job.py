"""A Beam batch program in the shape users write: remove the old output (optional), then count per key and
window into JSON-lines files. Usage: batch_rerun_job.py SRC OUT_DIR remove|keep [pipeline flags...]"""

from __future__ import annotations

import os
import shutil
import sys

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window


def main(argv: list[str]) -> None:
    src, out, remove, *flags = argv
    if remove == "remove":
        shutil.rmtree(out, ignore_errors=True)
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        (
            p
            | ReadFromJson(src, timestamp_fn=lambda e: e["t"])
            | beam.Map(lambda e: (e["k"], 1))
            | beam.WindowInto(window.FixedWindows(60))
            | beam.CombinePerKey(sum)
            | beam.Map(lambda kv, w=beam.DoFn.WindowParam: [kv[0], int(w.start), kv[1]])
            | WriteToJson(os.path.join(out, "Q1"), file_name_suffix=".jsonl")
        )


if __name__ == "__main__":
    main(sys.argv[1:])
