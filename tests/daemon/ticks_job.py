"""An unbounded `PeriodicSequence` (no stop) written as JSON lines ``ticks since start``: a job only a drain
ends (its held timer must not keep a drained job running until the drain deadline cancels it)."""

from __future__ import annotations

import time

import millstream as beam
from millstream.io import WriteToJson
from millstream.template import Param, template
from millstream.transforms.periodicsequence import PeriodicSequence
from millstream.utils.timestamp import MAX_TIMESTAMP


@template(
    Param("output", str, required=True, help="output file prefix"),
    Param("interval", float, default=0.02, help="seconds between ticks"),
    name="ticks",
    description="Ticks of an unbounded periodic sequence.",
)
def pipeline(p, params):
    start = time.time()
    interval = params.interval
    (
        p
        | "Sequence" >> beam.Create([(start, MAX_TIMESTAMP, interval)])
        | "Ticks" >> PeriodicSequence()
        | "Index" >> beam.Map(lambda t: round((t - start) / interval))
        | "Write" >> WriteToJson(params.output)
    )
