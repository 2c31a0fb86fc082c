"""A plain Beam script with 200 steps (a source and 199 Maps in 20 branches): the console must stay usable at
that size. (Branches of 10, not one chain: a fused chain of ~160 steps overflows Python's recursion limit.)"""

from __future__ import annotations

import sys

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions

STEPS = 200

if __name__ == "__main__":
    with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
        numbers = p | "Numbers" >> beam.Create(range(1000))
        pc = numbers
        for i in range(1, STEPS):
            if i % 10 == 1:
                pc = numbers  # a new branch
            pc = pc | f"Step{i:03d}" >> beam.Map(lambda x: x + 1)
