"""Clicks per user and minute from JSON-lines files dropped into a directory, streamed, exactly once.

The README's walk-through ("A streaming pipeline, step by step") shows this file and the commands that run it;
tests/examples/test_readme_walkthrough.py runs them.
"""

from typing import Any

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.template import Param, template
from millstream.transforms import trigger, window


def row(kv: tuple[str, int], w: Any = beam.DoFn.WindowParam, pane: Any = beam.DoFn.PaneInfoParam) -> dict:
    """One pane of one user's minute: the count so far and which firing it is."""
    user, clicks = kv
    return {
        "user": user,
        "minute": w.start.to_utc_datetime().strftime("%H:%M"),
        "clicks": clicks,
        "timing": window.PaneInfoTiming.to_string(pane.timing),
        "pane": pane.index,
    }


@template(
    Param("input", str, required=True, help="directory the click files are dropped into"),
    Param("output", str, required=True, help="output file prefix"),
    name="clicks",
)
def pipeline(p: beam.Pipeline, params: Any) -> None:
    """Count clicks per user in 1-minute event-time windows (early and late firings), written as JSON."""
    (
        p
        | "Read"
        >> ReadFromJson(
            params.input + "/*.jsonl", watch=True, poll_interval=1, timestamp_fn=lambda e: e["ts"]
        )  # event time: seconds since the epoch
        | "Key" >> beam.Map(lambda e: (e["user"], 1))
        | "Window"
        >> beam.WindowInto(
            window.FixedWindows(60),
            trigger=trigger.AfterWatermark(early=trigger.AfterProcessingTime(5), late=trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=600,
        )
        | "Count" >> beam.CombinePerKey(sum)
        | "Format" >> beam.Map(row)
        | "Write" >> WriteToJson(params.output)
    )
