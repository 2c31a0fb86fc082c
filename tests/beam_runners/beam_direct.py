"""A conformance scenario written directly with ``apache_beam`` (no millstream), to run on the same Prism.

Used to tell Prism's own behaviour from the translation's: when the scenario's panes on Prism differ from
Beam's Python SDK (the oracle), the same scenario built here with Beam's API must give the panes millstream's
translation gives. Loaded by value (a worker pool cannot import it). The panes are recorded in the form of
`conformance_sample.pane`, timestamps in µs.
"""

from __future__ import annotations

import base64
import os
import pickle
from typing import Any

import apache_beam as beam
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger as T
from apache_beam.transforms import window as W
from apache_beam.utils.timestamp import Duration

_ACCUMULATION = {"accumulating": T.AccumulationMode.ACCUMULATING, "discarding": T.AccumulationMode.DISCARDING}
_COMBINERS = {
    "end_of_window": W.TimestampCombiner.OUTPUT_AT_EOW,
    "earliest": W.TimestampCombiner.OUTPUT_AT_EARLIEST,
    "latest": W.TimestampCombiner.OUTPUT_AT_LATEST,
}


def window_fn(spec: dict[str, Any] | None) -> Any:
    """Beam's WindowFn for the scenario's ``window`` object."""
    spec = spec or {"type": "global"}
    kind = spec["type"]
    if kind == "fixed":
        return W.FixedWindows(spec["size"], spec.get("offset", 0))
    if kind == "sliding":
        return W.SlidingWindows(spec["size"], spec["period"], spec.get("offset", 0))
    if kind == "sessions":
        return W.Sessions(spec["gap"])
    if kind == "global":
        return W.GlobalWindows()
    raise ValueError(f"scenario window {spec!r}: unknown type")


def trigger(spec: Any) -> Any:
    """Beam's trigger for the scenario's trigger expression (the grammar of tests/conformance/driver.py)."""
    simple = {
        "Default": T.DefaultTrigger,
        "Never": T._Never,
        "Always": T.Always,
        "AfterWatermark": T.AfterWatermark,
    }
    if spec is None or (isinstance(spec, str) and spec in simple):
        return simple[spec or "Default"]()
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"scenario trigger {spec!r}: not a one-key expression")
    ((name, arg),) = spec.items()
    if name in simple and not arg:
        return simple[name]()
    if name == "AfterWatermark":
        early, late = arg.get("early"), arg.get("late")
        return T.AfterWatermark(early=trigger(early) if early else None, late=trigger(late) if late else None)
    if name == "AfterCount":
        return T.AfterCount(int(arg))
    if name == "Repeatedly":
        return T.Repeatedly(trigger(arg))
    if name in ("AfterAny", "AfterFirst"):
        return T.AfterAny(*[trigger(t) for t in arg])
    if name == "AfterAll":
        return T.AfterAll(*[trigger(t) for t in arg])
    if name == "AfterEach":
        return T.AfterEach(*[trigger(t) for t in arg])
    if name == "OrFinally":
        return T.OrFinally(trigger(arg[0]), trigger(arg[1]))
    raise ValueError(f"scenario trigger {name!r}: not supported here (processing time is not sampled)")


def stream(spec: dict[str, Any]) -> TestStream:
    """The scenario's events as Beam's TestStream (watermarks never go back, as in conformance_sample)."""
    out = TestStream()
    watermark = None
    for event in spec.get("events", []):
        ((kind, arg),) = event.items()
        if kind == "elements":
            out.add_elements([W.TimestampedValue((e[0], e[1]), e[2]) for e in arg])
        elif kind == "watermark" and (watermark is None or arg >= watermark):
            watermark = arg
            out.advance_watermark_to(arg)
    return out.advance_watermark_to_infinity()


def _record(
    kv: Any,
    path: str,
    w: Any = beam.DoFn.WindowParam,
    ts: Any = beam.DoFn.TimestampParam,
    info: Any = beam.DoFn.PaneInfoParam,
) -> None:
    where = "GLOBAL" if isinstance(w, W.GlobalWindow) else (w.start.micros, w.end.micros)
    value = kv[1] if isinstance(kv[1], int) else sorted(kv[1])
    timing = {0: "EARLY", 1: "ON_TIME", 2: "LATE", 3: "UNKNOWN"}[info.timing]
    row = (
        kv[0],
        where,
        value,
        ts.micros,
        timing,
        info.is_first,
        info.is_last,
        info.index,
        info.nonspeculative_index,
    )
    line = base64.b64encode(pickle.dumps(row)) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write per line with O_APPEND: concurrent bundles never interleave
    finally:
        os.close(fd)


def build(p: Any, spec: dict[str, Any], path: str) -> None:
    """``TestStream | WindowInto | GroupByKey or CombinePerKey(sum) | record`` with Beam's API on `p`."""
    aggregate = beam.CombinePerKey(sum) if spec.get("aggregation", "collect") == "sum" else beam.GroupByKey()
    _ = (
        p
        | stream(spec)
        | beam.WindowInto(
            window_fn(spec.get("window")),
            trigger=trigger(spec.get("trigger", "Default")),
            accumulation_mode=_ACCUMULATION[spec.get("accumulation", "accumulating")],
            timestamp_combiner=_COMBINERS[spec.get("timestamp_combiner", "end_of_window")],
            allowed_lateness=Duration(micros=int(round(spec.get("allowed_lateness", 0) * 1_000_000))),
        )
        | aggregate
        | "Pane" >> beam.Map(_record, path)
    )
