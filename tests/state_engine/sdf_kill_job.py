"""The job the splittable-DoFn kill -9 tests run in a subprocess: every input row ``{"id", "n", "t"}`` names an
``OffsetRange(0, n)`` that a splittable DoFn reads position by position, so each element takes many
activations (the runtime splits a restriction after a budget of outputs, set to 100 here) and checkpoints fall
between them.
Output rows ``[id, position]`` go to exactly-once JSON-lines files. Streaming mode, so state, timers and
output are checkpointed throughout the run, also after the input has ended and residuals remain.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import millstream as beam
from millstream.engine.model import splittable
from millstream.io import ReadFromJson, WriteToJson
from millstream.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from millstream.options.pipeline_options import PipelineOptions

#: activations of 100 outputs (Beam's DirectRunner's budget), so that many checkpoints fall between them
SPLIT_AFTER_OUTPUTS = 100


class ReadPositions(beam.DoFn, beam.transforms.core.RestrictionProvider):
    """Every position of the row's range, in parts of 1000 positions."""

    def initial_restriction(self, row: dict[str, Any]) -> OffsetRange:
        return OffsetRange(0, row["n"])

    def split(self, row: dict[str, Any], restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield from restriction.split(1000)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self, row: dict[str, Any], tracker: Any = beam.DoFn.RestrictionParam()
    ) -> Iterator[list[int]]:
        pos = tracker.current_restriction().start
        while tracker.try_claim(pos):
            yield [row["id"], pos]
            pos += 1


def build(p: beam.Pipeline, src: str, out: str) -> None:
    """The job's pipeline: rows of `src` -> their positions -> exactly-once JSON lines `out`-c*."""
    _ = p | ReadFromJson(src, timestamp_fn=lambda e: e["t"]) | beam.ParDo(ReadPositions()) | WriteToJson(out)


def main(argv: list[str]) -> None:
    src, out, *flags = argv
    splittable.SPLIT_AFTER_OUTPUTS = SPLIT_AFTER_OUTPUTS
    with beam.Pipeline(options=PipelineOptions(["--streaming", *flags])) as p:
        build(p, src, out)


if __name__ == "__main__":
    main(sys.argv[1:])
