"""A plain Beam script: parses its own arguments and runs its pipeline under `if __name__ == "__main__"`."""

from __future__ import annotations

import argparse

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


def run(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--word", default="x")
    known, rest = parser.parse_known_args(argv)
    with beam.Pipeline(options=PipelineOptions(rest)) as p:
        (
            p
            | beam.Create([known.word] * 3)
            | beam.combiners.Count.Globally()
            | beam.Map(lambda n: print(f"count {n} of {known.word}", flush=True))
        )


if __name__ == "__main__":
    run()
