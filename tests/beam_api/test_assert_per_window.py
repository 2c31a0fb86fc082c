"""`assert_that` with windows: `equal_to_per_window`, `reify_windows=True` and `use_global_window=False`."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import TestWindowedValue, assert_that, equal_to, equal_to_per_window
from millstream.transforms import window
from millstream.transforms.window import IntervalWindow


def _windowed(p: beam.Pipeline, stamped: list[tuple[Any, int]]) -> beam.PCollection:
    return (
        p
        | beam.Create(stamped)
        | beam.MapTuple(lambda v, t: window.TimestampedValue(v, t))
        | beam.WindowInto(window.FixedWindows(10))
    )


def test_equal_to_per_window_matches_each_window() -> None:
    with beam.Pipeline() as p:
        out = _windowed(p, [("a", 1), ("b", 2), ("c", 15)])
        assert_that(
            out,
            equal_to_per_window({IntervalWindow(0, 10): ["a", "b"], IntervalWindow(10, 20): ["c"]}),
            use_global_window=False,
        )


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({IntervalWindow(0, 10): ["a", "b", "c"]}, "window .* not found in any expected windows"),
        (
            {IntervalWindow(0, 10): ["a", "b", "x"], IntervalWindow(10, 20): ["c"]},
            "unmatched elements \\['x'\\]",
        ),
        (
            {IntervalWindow(0, 10): ["a"], IntervalWindow(10, 20): ["c", "b"]},
            "element 'b' not found in window",
        ),
    ],
)
def test_equal_to_per_window_reports_what_is_wrong(expected: dict[Any, list[str]], message: str) -> None:
    with pytest.raises(Exception, match=message):
        with beam.Pipeline() as p:
            assert_that(_windowed(p, [("a", 1), ("b", 2), ("c", 15)]), equal_to_per_window(expected))


def test_reify_windows_gives_timestamps_and_windows() -> None:
    with beam.Pipeline() as p:
        out = _windowed(p, [("a", 1), ("c", 15)])
        assert_that(
            out,
            equal_to(
                [
                    TestWindowedValue("a", 1, [IntervalWindow(0, 10)]),
                    TestWindowedValue("c", 15, [IntervalWindow(10, 20)]),
                ]
            ),
            reify_windows=True,
        )


def test_use_global_window_false_runs_the_matcher_per_window_with_the_window() -> None:
    seen: list[tuple[list[str], Any]] = []

    def matcher(elements_and_window: Any) -> None:
        elements, w = elements_and_window
        seen.append((sorted(elements), w))

    with beam.Pipeline() as p:
        assert_that(_windowed(p, [("a", 1), ("b", 2), ("c", 15)]), matcher, use_global_window=False)
    assert sorted(seen, key=lambda s: s[1].start) == [
        (["a", "b"], IntervalWindow(0, 10)),
        (["c"], IntervalWindow(10, 20)),
    ]


def test_matches_all_pairs_each_predicate_with_an_element() -> None:
    from millstream.testing.util import matches_all

    with beam.Pipeline() as p:
        assert_that(p | beam.Create([1, 10]), matches_all([lambda x: x < 5, lambda x: x > 5]))
    with pytest.raises(Exception, match="unmatched elements \\[10\\]"):
        with beam.Pipeline() as p:
            assert_that(p | beam.Create([1, 10]), matches_all([lambda x: x < 5]))
