"""Session merging when one event bridges several open sessions of a key (the fast path absorbs exactly the
sessions the event overlaps, in list order)."""

from __future__ import annotations

import pytest

import millstream as beam
from millstream import window


@pytest.mark.parametrize(
    "order",
    [
        [0, 30, 60, 15, 45],
        [0, 60, 30, 45, 15],
        [60, 0, 30, 15, 45, 100],
        [0, 30, 60, 90, 120, 45, 15, 105, 75],
    ],
)
def test_bridging_events_merge_all_overlapped_sessions(order: list[int]) -> None:
    out: list[tuple[str, list[int], int, int]] = []

    def stamp(t: int) -> window.TimestampedValue:
        return window.TimestampedValue(("a", t), t)

    with beam.Pipeline() as p:
        (
            p
            | beam.Create(order + [500])
            | beam.Map(stamp)
            | beam.WindowInto(window.Sessions(20))
            | beam.GroupByKey()
            | beam.ParDo(_Bounds())
            | beam.Map(out.append)
        )
    assert sorted(out) == _reference_sessions(order + [500], gap=20)


def _reference_sessions(times: list[int], gap: int) -> list[tuple[str, list[int], int, int]]:
    """Sessions by sorting: a time joins the previous session when it is less than `gap` after its last."""
    groups: list[list[int]] = []
    for t in sorted(times):
        if groups and t - groups[-1][-1] < gap:
            groups[-1].append(t)
        else:
            groups.append([t])
    return sorted(("a", g, g[0] * 1_000_000, (g[-1] + gap) * 1_000_000) for g in groups)


class _Bounds(beam.DoFn):
    def process(self, kv, w=beam.DoFn.WindowParam):  # type: ignore[no-untyped-def]
        yield (kv[0], sorted(kv[1]), w.start.micros, w.end.micros)
