"""Run one conformance scenario as a TestStream pipeline on millstream's production runtime.

Each ``elements`` event becomes one ``add_elements`` bundle, each ``watermarks`` an ``advance_watermark_to``,
each ``processing_time`` an ``advance_processing_time`` of the job's clock; at the end processing time
advances by 10^6 s when the trigger uses processing time (the oracle's convention) and the watermark goes to
+infinity. The pipeline is ``TestStream | WindowInto(...) | GroupByKey or CombinePerKey(sum) | record``;
``record`` reads the pane's window, timestamp and PaneInfo through DoFn parameters and the TestStream's
current event index (the ``step``). Prints the oracle's canonical pane JSON, which ``compare.py`` reads.

    python -P tests/conformance/run_case.py CASE.json [-o OUT.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any

import millstream as beam
from millstream.engine.model.timestamp import to_micros
from millstream.options.pipeline_options import PipelineOptions, StandardOptions
from millstream.testing.test_stream import TestStream
from millstream.transforms import window

HERE = os.path.dirname(os.path.abspath(__file__))


def _driver() -> Any:
    name = "millstream_conformance_driver"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "driver.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def build_stream(spec: dict[str, Any], uses_processing_time: bool) -> TestStream:
    """The TestStream playing the scenario's events."""
    stream = TestStream()
    watermark = None
    for event in spec.get("events", []):
        ((kind, arg),) = event.items()
        if kind == "elements":
            stream.add_elements([window.TimestampedValue((e[0], e[1]), e[2]) for e in arg])
        elif kind == "watermark":
            if watermark is None or to_micros(arg) >= watermark:
                watermark = to_micros(arg)
                stream.advance_watermark_to(arg)
        elif kind == "processing_time":
            stream.advance_processing_time(arg)
        else:
            raise ValueError(f"unknown event {kind!r}")
    if uses_processing_time:
        stream.advance_processing_time(_driver().END_OF_STREAM_PROCESSING_TIME_ADVANCE)
    return stream


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run a scenario on the runtime; returns the canonical result."""
    driver = _driver()
    kw = driver.reducer_kwargs(spec)
    stream = build_stream(spec, kw["trigger"].uses_processing_time())
    num_events = len(spec.get("events", []))
    recorded: list[tuple[int, Any]] = []

    def record(
        kv: Any,
        w: Any = beam.DoFn.WindowParam,
        ts: Any = beam.DoFn.TimestampParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> None:
        step = min(stream.event_index, num_events)
        recorded.append((step, (kv[0], w, kv[1], ts.micros, pane)))

    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    aggregate = beam.CombinePerKey(sum) if spec.get("aggregation", "collect") == "sum" else beam.GroupByKey()
    with beam.Pipeline(options=options) as p:
        (
            p
            | stream
            | beam.WindowInto(
                kw["window_fn"],
                trigger=kw["trigger"],
                accumulation_mode=kw["accumulation_mode"],
                timestamp_combiner=kw["timestamp_combiner"],
                allowed_lateness=window.Duration(micros=kw["allowed_lateness_us"]),
            )
            | aggregate
            | beam.Map(record)
        )
    return driver.canonical_result(spec, recorded, engine="millstream runtime (TestStream)")


def main(argv: list[str] | None = None) -> int:
    """CLI: run a case file, print or write the canonical JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    with open(args.case) as f:
        spec = json.load(f)
    text = _driver().dumps(run_case(spec))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
