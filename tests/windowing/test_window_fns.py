"""Window functions, windows and pane descriptions: assignment laws and Beam's API."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millstream.engine.model import window as W
from millstream.engine.model.timestamp import MIN_MICROS, Timestamp, TimestampedValue

TS = st.integers(-(10**15), 10**15)
SIZES = st.integers(1, 10**9)


@settings(max_examples=300)
@given(TS, SIZES, st.integers(-(10**9), 10**9))
def test_fixed_window_contains_its_timestamp(ts: int, size: int, offset: int) -> None:
    """FixedWindows: exactly one window, containing ts, aligned to size and offset."""
    wf = W.FixedWindows.__new__(W.FixedWindows)
    wf.size_us, wf.offset_us = size, offset % size
    ((start, end),) = wf.assign_micros(ts)
    assert start <= ts < end and end - start == size
    assert (start - offset) % size == 0
    assert wf.assign_batch([ts]) == [[(start, end)]]


@settings(max_examples=300)
@given(TS, st.integers(1, 50), st.integers(1, 10**6), st.integers(0, 10**6))
def test_sliding_windows_are_all_windows_containing_ts(ts: int, k: int, period: int, offset: int) -> None:
    """SlidingWindows (size = k * period): exactly k windows, all containing ts, latest start first."""
    wf = W.SlidingWindows.__new__(W.SlidingWindows)
    wf.size_us, wf.period_us, wf.offset_us = k * period, period, offset % period
    ws = wf.assign_micros(ts)
    assert len(ws) == k
    assert all(s <= ts < e and e - s == k * period and (s - offset) % period == 0 for s, e in ws)
    assert [s for s, _ in ws] == sorted((s for s, _ in ws), reverse=True)


@settings(max_examples=200)
@given(TS, st.integers(1, 10**6), st.integers(1, 40), st.integers(0, 10**6 - 1))
def test_sliding_windows_uneven_size(ts: int, period: int, k: int, rest: int) -> None:
    """Any size and period: every window containing ts (start on the period grid) is assigned once."""
    size = k * period + rest % period
    wf = W.SlidingWindows.__new__(W.SlidingWindows)
    wf.size_us, wf.period_us, wf.offset_us = size, period, 0
    ws = wf.assign_micros(ts)
    first = ((ts - size) // period + 1) * period  # the first grid start with ts < start + size
    expected = sorted(((s, s + size) for s in range(first, ts + 1, period)), reverse=True)
    assert ws == expected
    assert len(ws) in (size // period, -(-size // period))


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 50)), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_session_merge_groups_overlapping_windows(raw: list[tuple[int, int]], rnd: object) -> None:
    """Sessions.merge_bounds: results are disjoint, cover exactly the merged inputs, order-independent."""
    windows = sorted({(s, s + n) for s, n in raw})
    groups = W.Sessions(10).merge_bounds(windows)
    shuffled = list(windows)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert W.Sessions(10).merge_bounds(shuffled) == groups
    merged = {w for g, _ in groups for w in g}
    final = sorted([r for _, r in groups] + [w for w in windows if w not in merged])
    assert all(a[1] <= b[0] for a, b in zip(final, final[1:]))  # strictly overlapping windows merged
    for group, (s, e) in groups:
        assert len(group) > 1 and s == min(g[0] for g in group) and e == max(g[1] for g in group)


def test_sessions_do_not_merge_touching_windows() -> None:
    """[0,10) and [10,20) only touch: Beam keeps them apart."""
    assert W.Sessions(10).merge_bounds([(0, 10), (10, 20)]) == []
    assert W.Sessions(10).merge_bounds([(0, 10), (9, 19)]) == [([(0, 10), (9, 19)], (0, 19))]


def test_interval_window_api() -> None:
    """Beam's IntervalWindow: seconds API, µs fields, max_timestamp, equality by bounds, ordering."""
    w = W.IntervalWindow(1, 11)
    assert (w.start_us, w.end_us) == (1_000_000, 11_000_000)
    assert w.start == Timestamp(1) and w.end == Timestamp(11)
    assert w.max_timestamp() == Timestamp(micros=10_999_999)
    assert w == W.IntervalWindow.from_micros(1_000_000, 11_000_000) and hash(w) == hash(
        W.IntervalWindow(1, 11)
    )
    assert w != W.IntervalWindow(1, 12)
    assert sorted([W.IntervalWindow(0, 20), W.IntervalWindow(5, 10), W.IntervalWindow(0, 10)]) == [
        W.IntervalWindow(0, 10),
        W.IntervalWindow(5, 10),
        W.IntervalWindow(0, 20),
    ]
    assert w.intersects(W.IntervalWindow(10, 12)) and not w.intersects(W.IntervalWindow(11, 12))
    assert w.union(W.IntervalWindow(20, 30)) == W.IntervalWindow(1, 30)
    assert pickle.loads(pickle.dumps(w)) == w


def test_global_window() -> None:
    """GlobalWindow is a singleton whose max timestamp is the end of the global window."""
    g = W.GlobalWindow()
    assert g is W.GlobalWindow() and pickle.loads(pickle.dumps(g)) is g
    assert g.start_us == MIN_MICROS and g.max_timestamp().micros == W.GLOBAL_WINDOW_END_MICROS - 1
    assert W.GlobalWindows().assign(W.WindowFn.AssignContext(5)) == [g]
    assert g != W.IntervalWindow.from_micros(g.start_us, g.end_us)


def test_window_fn_beam_api() -> None:
    """assign() with an AssignContext (seconds) and equality of window fns as in Beam."""
    ctx = W.WindowFn.AssignContext(Timestamp(12.5))
    assert W.FixedWindows(10).assign(ctx) == [W.IntervalWindow(10, 20)]
    assert W.FixedWindows(10, offset=13).offset == Timestamp(3)
    assert W.SlidingWindows(10, 5).assign(ctx) == [W.IntervalWindow(10, 20), W.IntervalWindow(5, 15)]
    assert W.Sessions(3).assign(ctx) == [W.IntervalWindow(12.5, 15.5)]
    assert W.FixedWindows(10) == W.FixedWindows(10, 0) != W.FixedWindows(10, 1)
    assert not W.FixedWindows(10).is_merging() and W.Sessions(1).is_merging()
    with pytest.raises(ValueError):
        W.FixedWindows(0)
    assert W.TimestampedValue is TimestampedValue


def test_beam_merge_context_api() -> None:
    """Sessions.merge(MergeContext) reports each group through merge_context.merge, as Beam's API does."""
    seen = []

    class Ctx(W.WindowFn.MergeContext):
        def merge(self, to_be_merged, merge_result):  # type: ignore[no-untyped-def]
            seen.append((sorted(to_be_merged), merge_result))

    W.Sessions(10).merge(Ctx([W.IntervalWindow(0, 10), W.IntervalWindow(5, 15), W.IntervalWindow(30, 40)]))
    assert seen == [([W.IntervalWindow(0, 10), W.IntervalWindow(5, 15)], W.IntervalWindow(0, 15))]


def test_pane_info() -> None:
    """PaneInfo: immutable, hashable, Beam's repr and encoded byte."""
    p = W.PaneInfo(True, False, W.PaneInfoTiming.ON_TIME, 0, 0)
    assert repr(p) == "PaneInfo(first: True, last: False, timing: ON_TIME, index: 0, nonspeculative_index: 0)"
    assert p == W.PaneInfo(True, False, 1, 0, 0) and hash(p) == hash(W.PaneInfo(True, False, 1, 0, 0))
    assert p.encoded_byte == 0b0101
    with pytest.raises(AttributeError):
        p._index = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(p)) == p
    assert W.PaneInfoTiming.to_string(2) == "LATE" and W.PaneInfoTiming.from_string("EARLY") == 0


beam_window = pytest.importorskip("apache_beam.transforms.window")


@settings(max_examples=200)
@given(
    st.integers(-(10**12), 10**12), st.sampled_from([(10, 5), (60, 10), (7, 3), (5, 5)]), st.integers(0, 20)
)
def test_assignment_matches_apache_beam(ts_us: int, size_period: tuple[int, int], offset: int) -> None:
    """Our integer assignment equals Beam's for fixed, sliding and session windows."""
    from apache_beam.utils.timestamp import Timestamp as BT

    size, period = size_period
    ctx = beam_window.WindowFn.AssignContext(BT(micros=ts_us))

    def bounds(ws: list[object]) -> list[tuple[int, int]]:
        return [(w.start.micros, w.end.micros) for w in ws]  # type: ignore[attr-defined]

    assert W.FixedWindows(size, offset).assign_micros(ts_us) == bounds(
        beam_window.FixedWindows(size, offset).assign(ctx)
    )
    assert W.SlidingWindows(size, period, offset).assign_micros(ts_us) == bounds(
        beam_window.SlidingWindows(size, period, offset).assign(ctx)
    )
    assert W.Sessions(size).assign_micros(ts_us) == bounds(beam_window.Sessions(size).assign(ctx))
