"""A Beam-style script whose options come from the command line: `PipelineOptions()` with a required custom option."""

from __future__ import annotations

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


class CountOptions(PipelineOptions):
    """The script's own option."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input_file", required=True)


if __name__ == "__main__":
    options = PipelineOptions()
    path = options.view_as(CountOptions).input_file
    with beam.Pipeline(options=options) as p:
        (
            p
            | beam.io.ReadFromText(path)
            | beam.combiners.Count.Globally()
            | beam.Map(lambda n: print(f"lines {n}", flush=True))
        )
