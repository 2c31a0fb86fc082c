"""Beam-style stamping (`Map(lambda e: TimestampedValue(e, e["ts"]))`) on an unbounded source without event
time leaves the watermark at -infinity: a WARNING at start-up names the step and the source and says what to
do; no warning where the watermark does move (a timestamp_fn, a bounded source, a source with record times)."""

from __future__ import annotations

import logging
from typing import Any

import millstream as beam
from millstream.engine.model.io import Read, Source
from millstream.engine.runtime.graph.event_time_hints import event_time_hints
from millstream.io import ReadFromJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window
from millstream.transforms.window import TimestampedValue


class Stamp(beam.DoFn):
    def process(self, e: dict) -> Any:
        yield window.TimestampedValue(e, e["ts"])


class RecordTimes(Source):
    """An unbounded source whose reader returns event times of its own (as Kafka and Pub/Sub do)."""

    is_bounded = False
    stamps_event_time = True


def hints(tmp_path: Any, build: Any, **read: Any) -> list[str]:
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    events = p | "Clicks" >> ReadFromJson(str(tmp_path / "*.jsonl"), **read)
    build(events)
    return event_time_hints(p)


def test_stamping_after_a_watched_source_without_timestamp_fn_is_named(tmp_path):
    found = hints(
        tmp_path,
        lambda pc: (
            pc
            | "Stamp" >> beam.Map(lambda e: TimestampedValue(e, e["ts"]))
            | beam.WindowInto(window.FixedWindows(60))
            | beam.combiners.Count.PerElement()
        ),
        watch=True,
    )
    assert len(found) == 1
    assert "step 'Stamp'" in found[0] and "'Clicks/Read" in found[0] and "-infinity" in found[0]
    assert "timestamp_fn=lambda e: e['ts']" in found[0]


def test_dofns_maptuple_and_nested_helpers_are_recognised(tmp_path):
    def build(pc: Any) -> None:
        pc | "DoFn" >> beam.ParDo(Stamp())
        pc | "Pairs" >> beam.Map(lambda e: (e, e["ts"])) | "Tuple" >> beam.MapTuple(TimestampedValue)

        def stamp(e: dict) -> Any:
            return [window.TimestampedValue(e, t) for t in (e["ts"],)]  # inside a comprehension

        pc | "Nested" >> beam.FlatMap(stamp)
        pc | "Plain" >> beam.Map(lambda e: e["ts"])

    found = hints(tmp_path, build, watch=True)
    assert sorted(m.split("'")[1] for m in found) == ["DoFn", "Nested", "Tuple"]


def test_no_hint_where_the_watermark_moves(tmp_path):
    def stamp(pc: Any) -> None:
        pc | beam.Map(lambda e: TimestampedValue(e, e["ts"]))

    assert hints(tmp_path, stamp, watch=True, timestamp_fn=lambda e: e["ts"]) == []
    (tmp_path / "a.jsonl").write_text('{"ts": 1}\n')
    assert hints(tmp_path, stamp) == [], "bounded: the watermark reaches +infinity at the end"
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    stamp(p | Read(RecordTimes()))
    assert event_time_hints(p) == []


async def test_a_started_job_warns_before_reading(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    p = beam.Pipeline(options=PipelineOptions(["--streaming", f"--state_dir={tmp_path / 'state'}"]))
    (
        p
        | "Clicks" >> ReadFromJson(str(tmp_path / "in" / "*.jsonl"), watch=True, poll_interval=0.05)
        | "Stamp" >> beam.Map(lambda e: TimestampedValue(e, e["ts"]))
    )
    with caplog.at_level(logging.WARNING, logger="millstream.pipeline"):
        job = await p.start()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("step 'Stamp' sets event time with TimestampedValue" in m for m in warnings), warnings
    assert await job.drain() == "DONE"
