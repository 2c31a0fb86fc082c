"""Per-key sums in fixed event-time windows over a growing JSON-lines file, written exactly once.

The template the daemon tests run: events ``{"k": key, "t": seconds, "v": int}`` (``"bad": true`` makes one
fail in the Check step and go to the dead letters) -> fixed windows -> sum per key -> JSON lines
``[key, window_start, sum]``. While the file named by ``gate`` exists the Gate step holds every batch (the tests
use it to keep a drain or a checkpoint in progress).
"""

from __future__ import annotations

import logging
import os

import anyio
from follow_source import FollowSource

import millstream as beam
from millstream.io import Read, WriteToJson
from millstream.metrics import Metrics
from millstream.template import Param, template
from millstream.transforms import window

checked = Metrics.counter("sums", "checked")
log = logging.getLogger("sums")


def check(e: dict) -> dict:
    if e.get("bad"):
        log.warning("rejecting event %s", e)
        raise ValueError(f"bad event {e}")
    checked.inc()
    return e


@template(
    Param("input", str, required=True, help="JSON-lines file to follow", regexes=[r".+\.jsonl"]),
    Param("output", str, required=True, help="output file prefix"),
    Param("window", float, default=10.0, help="window size in seconds"),
    Param("gate", str, default="", help="while this file exists, batches wait in the Gate step"),
    name="sums",
    description="Per-key sums in fixed windows, exactly once.",
)
def pipeline(p, params):
    gate = params.gate

    async def hold(e: dict) -> dict:
        while gate and os.path.exists(gate):
            await anyio.sleep(0.01)  # the test's gate: a condition polled, released by the test
        return e

    events = p | "Read" >> Read(FollowSource(params.input), timestamp_fn=lambda e: e["t"])
    good, bad = events | "Check" >> beam.Map(check).with_exception_handling()
    (
        good
        | "Gate" >> beam.Map(hold)
        | "Key" >> beam.Map(lambda e: (e["k"], e["v"]))
        | "Window" >> beam.WindowInto(window.FixedWindows(params.window))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Format" >> beam.Map(lambda kv, w=beam.DoFn.WindowParam: [kv[0], int(w.start), kv[1]])
        | "Write" >> WriteToJson(params.output)
    )
