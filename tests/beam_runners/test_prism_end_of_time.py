"""The end of time at the edge: millstream's `MAX_TIMESTAMP` and `GlobalWindow().end`/`max_timestamp()` are 1000x
smaller than Beam's (microseconds of Java's bound, which Beam keeps in milliseconds), so the translation
converts them both ways: a DoFn sees millstream's values on Beam's runners too, and its outputs and timers at
millstream's bounds are Beam's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

from apache_beam.transforms import window as beam_window  # noqa: E402
from apache_beam.utils import timestamp as beam_timestamp  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, Timestamp  # noqa: E402
from millstream.engine.model.window import GlobalWindow  # noqa: E402
from millstream.engine.translate.beam.dofns import to_beam_timestamp, to_ms_timestamp  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")


def test_the_bounds_differ_by_a_factor_of_1000():
    assert beam_timestamp.MAX_TIMESTAMP.micros // 1000 == MAX_MICROS  # Java's bound: µs here, ms in Beam
    assert beam_timestamp.MIN_TIMESTAMP.micros // 1000 == MIN_MICROS


def test_the_bounds_are_converted_at_the_edge_both_ways():
    beam_gw, ms_gw = beam_window.GlobalWindow(), GlobalWindow()
    pairs = [
        (Timestamp(micros=MAX_MICROS), beam_timestamp.MAX_TIMESTAMP),
        (Timestamp(micros=MIN_MICROS), beam_timestamp.MIN_TIMESTAMP),
        (ms_gw.max_timestamp(), beam_gw.max_timestamp()),
    ]
    for ms, b in pairs:
        assert to_beam_timestamp(ms) == b
        assert to_ms_timestamp(b) == ms
    assert to_beam_timestamp(ms_gw.end) == beam_gw.end
    # Beam's portable runners keep milliseconds: the global window's max timestamp comes back as Java's (Prism
    # stamps a global-window grouping with 9223371950454775 ms, Beam Python's end of the global window)
    for micros in (beam_gw.max_timestamp().micros // 1000 * 1000, beam_gw.end.micros):
        assert to_ms_timestamp(beam_timestamp.Timestamp(micros=micros)) == ms_gw.max_timestamp()
    # ordinary times pass unchanged
    assert to_ms_timestamp(beam_timestamp.Timestamp(micros=1_234_567)) == Timestamp(micros=1_234_567)
    assert to_beam_timestamp(Timestamp(micros=-5)) == beam_timestamp.Timestamp(micros=-5)


def _global_window_times(p: object, out: str) -> None:
    grouped = p | "Pairs" >> beam.Create([("k", 1), ("k", 2)]) | "Group" >> beam.GroupByKey()
    at_end = grouped | "Times" >> beam.Map(
        lambda kv, ts=beam.DoFn.TimestampParam, w=beam.DoFn.WindowParam: (
            kv[0],
            ts == w.max_timestamp(),
            ts.micros,
        )
    )
    cap.capture(beam, at_end, "times", out)


def test_a_global_window_grouping_is_stamped_with_millstreams_max_timestamp_on_prism_too(
    prism_flags, tmp_path
):
    results = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            _global_window_times(p, str(out))
        results[name] = cap.read(str(out))
    assert results["local"]["times"] == [("k", True, GlobalWindow().max_timestamp().micros)]
    assert results["prism"] == results["local"]
