"""Windowed aggregations on the runtime: batch replay and TestStream (streaming) paths."""

from __future__ import annotations

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions, StandardOptions
from millstream.testing.test_stream import TestStream
from millstream.testing.util import TestWindowedValue, assert_that, equal_to
from millstream.transforms import trigger, window


def streaming_options() -> PipelineOptions:
    opts = PipelineOptions()
    opts.view_as(StandardOptions).streaming = True
    return opts


def test_fixed_windows_batch_sum():
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", 1, 1), ("a", 2, 9), ("a", 3, 10), ("b", 4, 59)])
            | beam.Map(lambda e: window.TimestampedValue((e[0], e[1]), e[2]))
            | beam.WindowInto(window.FixedWindows(10))
            | beam.CombinePerKey(sum)
        )
        reified = out | beam.Map(lambda kv, w=beam.DoFn.WindowParam: (kv[0], kv[1], w.start.micros // 10**6))
        assert_that(reified, equal_to([("a", 3, 0), ("a", 3, 10), ("b", 4, 50)]))


def test_sliding_windows_group_by_key():
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("k", 5)])
            | beam.Map(lambda kv: window.TimestampedValue(kv, 7))
            | beam.WindowInto(window.SlidingWindows(10, 5))
            | beam.GroupByKey()
        )
        assert_that(
            out,
            equal_to(
                [
                    TestWindowedValue(("k", [5]), window.Timestamp(9.999999), [window.IntervalWindow(0, 10)]),
                    TestWindowedValue(
                        ("k", [5]), window.Timestamp(14.999999), [window.IntervalWindow(5, 15)]
                    ),
                ]
            ),
            reify_windows=True,
        )


def test_test_stream_early_and_on_time_panes():
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(("k", 1), 1), window.TimestampedValue(("k", 2), 2)])
        .add_elements([window.TimestampedValue(("k", 3), 3)])
        .advance_watermark_to(10)
        .add_elements([window.TimestampedValue(("k", 4), 4)])
        .advance_watermark_to_infinity()
    )
    seen = []
    with beam.Pipeline(options=streaming_options()) as p:
        (
            p
            | stream
            | beam.WindowInto(
                window.FixedWindows(10),
                trigger=trigger.AfterWatermark(early=trigger.AfterCount(2), late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                allowed_lateness=100,
            )
            | beam.CombinePerKey(sum)
            | beam.Map(
                lambda kv, pane=beam.DoFn.PaneInfoParam: seen.append((kv[1], pane.timing.name, pane.index))
            )
        )
    assert seen == [(3, "EARLY", 0), (6, "ON_TIME", 1), (10, "LATE", 2)]


def test_late_data_side_output():
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(("k", 1), 1)])
        .advance_watermark_to(20)
        .add_elements([window.TimestampedValue(("k", 2), 2)])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=streaming_options()) as p:
        main, late = (
            p | stream | beam.WindowInto(window.FixedWindows(10)) | beam.CombinePerKey(sum).with_late_data()
        )
        assert_that(main, equal_to([("k", 1)]), label="main")
        assert_that(
            late | beam.Map(lambda r: (r.key, r.value, r.reason)), equal_to([("k", 2, "late")]), label="late"
        )
