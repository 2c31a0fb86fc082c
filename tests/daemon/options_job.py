"""Counts the first lines of a text file: a template whose parameters are Beam custom options."""

from __future__ import annotations

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions

PARAMETERS: list = []  # no Param declarations: the options below are the parameters


class CountOptions(PipelineOptions):
    """The template's options, declared the Beam way."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--lines_from", required=True, help="a text file")
        parser.add_argument("--limit", type=int, default=10, help="how many lines to count")


def pipeline(p, params):
    opts = p.options.view_as(CountOptions)
    with open(opts.lines_from) as f:
        lines = f.read().splitlines()[: opts.limit]
    (
        p
        | "Lines" >> beam.Create(lines)
        | "Count" >> beam.combiners.Count.Globally()
        | "Print" >> beam.Map(lambda n: print(f"count {n}", flush=True))
    )
