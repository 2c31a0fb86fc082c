"""A conformance scenario as a pipeline runnable on Prism (loaded by value: a worker pool cannot import it).

``TestStream | WindowInto(strategy) | GroupByKey or CombinePerKey(sum) | record``, where ``record`` writes
each pane's key, window, value, timestamp and PaneInfo through `capture` (files, so a worker pool's output is
seen). The scenario's events map to TestStream events as tests/conformance/run_case.py maps them.
"""

from __future__ import annotations

from typing import Any

import millstream as beam
from millstream.testing.test_stream import TestStream
from millstream.transforms import window


def stream(spec: dict[str, Any], to_micros: Any) -> TestStream:
    """The scenario's events as a TestStream (watermarks never go back, as in run_case.py)."""
    out = TestStream()
    watermark = None
    for event in spec.get("events", []):
        ((kind, arg),) = event.items()
        if kind == "elements":
            out.add_elements([window.TimestampedValue((e[0], e[1]), e[2]) for e in arg])
        elif kind == "watermark" and (watermark is None or to_micros(arg) >= watermark):
            watermark = to_micros(arg)
            out.advance_watermark_to(arg)
    return out.advance_watermark_to_infinity()


def pane(
    kv: Any,
    w: Any = beam.DoFn.WindowParam,
    ts: Any = beam.DoFn.TimestampParam,
    info: Any = beam.DoFn.PaneInfoParam,
) -> Any:
    """One pane as plain values: key, window ends in µs ("GLOBAL"), value, timestamp µs, PaneInfo fields."""
    where = "GLOBAL" if isinstance(w, window.GlobalWindow) else (w.start.micros, w.end.micros)
    value = kv[1] if isinstance(kv[1], int) else sorted(kv[1])
    return (
        kv[0],
        where,
        value,
        ts.micros,
        info.timing.name,
        info.is_first,
        info.is_last,
        info.index,
        info.nonspeculative_index,
    )


def build(p: Any, spec: dict[str, Any], kw: dict[str, Any], to_micros: Any, capture: Any) -> None:
    """The scenario's pipeline on `p`, its panes captured by ``capture(pcoll)``."""
    aggregate = beam.CombinePerKey(sum) if spec.get("aggregation", "collect") == "sum" else beam.GroupByKey()
    panes = (
        p
        | stream(spec, to_micros)
        | beam.WindowInto(
            kw["window_fn"],
            trigger=kw["trigger"],
            accumulation_mode=kw["accumulation_mode"],
            timestamp_combiner=kw["timestamp_combiner"],
            allowed_lateness=window.Duration(micros=kw["allowed_lateness_us"]),
        )
        | aggregate
        | "Pane" >> beam.Map(pane)
    )
    capture(panes)
