"""The job the kill -9 tests of a polling splittable DoFn with a bundle finalizer run in a subprocess (Beam's
pattern for acking reads: read a batch, register a callback that acks it once the bundle commits, defer the
rest). Every input row ``{"id", "n", "t"}`` names an ``OffsetRange(0, n)`` read `BATCH` positions per
activation; each activation appends ``{"id", "start", "pid"}`` to the *tried* file when it runs, and its
finalizer callback appends ``{"id", "start", "stop", "pid", "committed"}`` to the *acks* file, where
``committed`` says whether the batch's first row was already in a committed output file when the callback ran.
Output rows ``[id, position]`` go to exactly-once JSON-lines files. Streaming mode, so residuals, timers and
output are checkpointed throughout the run.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from millstream.options.pipeline_options import PipelineOptions
from millstream.utils.timestamp import Duration

#: positions read per activation
BATCH = 7


def _append(path: str, row: dict[str, Any]) -> None:
    with open(path, "a") as f:  # one write per line: a kill -9 leaves whole lines (the OS keeps the buffer)
        f.write(json.dumps(row) + "\n")


def _committed(out: str, row: list[int]) -> bool:
    """Whether `row` is in a committed output file (``<out>-c*``), newest first."""
    for name in sorted(glob.glob(out + "-c*"), reverse=True):
        with open(name) as f:
            if any(json.loads(existing) == row for existing in f):
                return True
    return False


class PollAndAck(beam.DoFn, beam.transforms.core.RestrictionProvider):
    """Reads `BATCH` positions, registers their ack with the bundle finalizer, defers the rest."""

    def __init__(self, out: str, acks: str, tried: str) -> None:
        self.out, self.acks, self.tried = out, acks, tried

    def initial_restriction(self, row: dict[str, Any]) -> OffsetRange:
        return OffsetRange(0, row["n"])

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def process(
        self,
        row: dict[str, Any],
        tracker: Any = beam.DoFn.RestrictionParam(),
        finalizer: Any = beam.DoFn.BundleFinalizerParam,
    ) -> Iterator[list[int]]:
        start = pos = tracker.current_restriction().start
        _append(self.tried, {"id": row["id"], "start": start, "pid": os.getpid()})
        while pos < start + BATCH and tracker.try_claim(pos):
            yield [row["id"], pos]
            pos += 1
        if pos == start:
            return  # nothing left to claim: the restriction is done

        def ack(i: int = row["id"], start: int = start, stop: int = pos) -> None:
            committed = _committed(self.out, [i, start])
            _append(
                self.acks,
                {"id": i, "start": start, "stop": stop, "pid": os.getpid(), "committed": committed},
            )

        finalizer.register(ack)
        if pos == start + BATCH:
            tracker.defer_remainder(Duration(seconds=0.03))  # poll again shortly


def build(p: beam.Pipeline, src: str, out: str, acks: str, tried: str) -> None:
    """The job's pipeline: rows of `src` -> their positions, acked per batch -> JSON lines `out`-c*."""
    _ = (
        p
        | ReadFromJson(src, timestamp_fn=lambda e: e["t"])
        | beam.ParDo(PollAndAck(out, acks, tried))
        | WriteToJson(out)
    )


def main(argv: list[str]) -> None:
    src, out, acks, tried, *flags = argv
    with beam.Pipeline(options=PipelineOptions(["--streaming", *flags])) as p:
        build(p, src, out, acks, tried)


if __name__ == "__main__":
    main(sys.argv[1:])
