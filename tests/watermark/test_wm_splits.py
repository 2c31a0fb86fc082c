"""Unit tests for SplitWatermarks: min over splits, idleness on an injected clock, rebalance, end of input."""

from __future__ import annotations

import pytest

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.watermarks import (
    BatchWatermark,
    BoundedOutOfOrderness,
    ManualWatermark,
    SplitWatermarks,
    batch_semantics,
    source_watermarks,
)

S = 1_000_000  # one second in microseconds


def test_source_watermark_is_min_over_splits() -> None:
    clock = FakeClock()
    wm = SplitWatermarks.bounded_out_of_orderness(10)
    wm.add_split("p0", clock.now_us())
    wm.add_split("p1", clock.now_us())
    assert wm.current(clock.now_us()) == MIN_MICROS
    wm.observe_batch("p0", [100, 300, 200], clock.now_us())
    assert wm.current(clock.now_us()) == MIN_MICROS  # p1 has not seen data yet
    wm.observe("p1", 150, clock.now_us())
    assert wm.current(clock.now_us()) == 140
    wm.observe("p1", 500, clock.now_us())
    assert wm.current(clock.now_us()) == 290
    assert not wm.idle


def test_no_splits_means_no_change() -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(0)
    assert wm.raw(0) is None
    assert wm.current(0) == MIN_MICROS
    wm.add_split("a", 0)
    wm.observe("a", 50, 0)
    assert wm.current(0) == 50
    wm.remove_split("a")  # revoked: nothing assigned, the watermark holds
    assert wm.current(0) == 50 and len(wm) == 0


def test_idle_split_stops_holding_after_timeout_on_fake_clock() -> None:
    clock = FakeClock(start_us=1_000 * S)
    wm = SplitWatermarks.bounded_out_of_orderness(0, idle_timeout_us=5 * S)
    wm.add_split("busy", clock.monotonic_us())
    wm.add_split("quiet", clock.monotonic_us())
    wm.observe("busy", 700, clock.monotonic_us())
    wm.observe("quiet", 100, clock.monotonic_us())
    assert wm.current(clock.monotonic_us()) == 100

    clock.advance(4 * S)
    wm.observe("busy", 900, clock.monotonic_us())
    assert wm.current(clock.monotonic_us()) == 100  # quiet for 4 s < 5 s: still holds
    assert not wm.split_is_idle("quiet", clock.monotonic_us())

    clock.advance(1 * S)  # quiet for exactly 5 s: idle
    assert wm.split_is_idle("quiet", clock.monotonic_us())
    assert not wm.split_is_idle("busy", clock.monotonic_us())
    assert wm.current(clock.monotonic_us()) == 900
    assert not wm.idle  # "busy" still holds

    # The quiet split wakes up behind the watermark: the output holds (its data at 100.. is late)...
    wm.observe("quiet", 120, clock.monotonic_us())
    assert wm.raw(clock.monotonic_us()) == 120
    assert wm.current(clock.monotonic_us()) == 900
    # ...and it holds the output again once it is past it.
    wm.observe("busy", 2_000, clock.monotonic_us())
    wm.observe("quiet", 1_000, clock.monotonic_us())
    assert wm.current(clock.monotonic_us()) == 1_000


def test_all_idle_advances_to_the_most_advanced_split_and_reports_idle() -> None:
    clock = FakeClock()
    wm = SplitWatermarks.bounded_out_of_orderness(10, idle_timeout_us=S)
    for sid in ("a", "b", "c"):
        wm.add_split(sid, clock.now_us())
    wm.observe("a", 1_000, clock.now_us())
    wm.observe("b", 500, clock.now_us())
    wm.observe("c", 800, clock.now_us())
    assert wm.current(clock.now_us()) == 490
    clock.advance(S)
    assert wm.current(clock.now_us()) == 990
    assert wm.idle
    # New data ends idleness but cannot move the output back.
    wm.observe("b", 600, clock.now_us())
    assert wm.current(clock.now_us()) == 990
    assert not wm.idle


def test_never_observed_splits_go_idle_and_release_the_watermark() -> None:
    clock = FakeClock()
    wm = SplitWatermarks.bounded_out_of_orderness(0, idle_timeout_us=3 * S)
    wm.add_split("empty-partition", clock.now_us())
    wm.add_split("p1", clock.now_us())
    clock.advance(2 * S)
    wm.observe("p1", 42, clock.now_us())
    assert wm.current(clock.now_us()) == MIN_MICROS
    clock.advance(1 * S)
    assert wm.current(clock.now_us()) == 42


def test_mark_idle_until_next_data() -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(0)  # no timeout: only explicit idleness
    wm.add_split("a", 0)
    wm.add_split("b", 0)
    wm.observe("a", 10, 0)
    wm.observe("b", 50, 0)
    assert wm.current(10**12) == 10  # no timeout: time alone never makes a split idle
    wm.mark_idle("a")
    assert wm.current(0) == 50
    wm.observe_batch("a", [], 0)  # an empty batch is not data
    assert wm.split_is_idle("a", 0)
    wm.observe_batch("a", [60], 0)
    assert not wm.split_is_idle("a", 0)
    wm.observe("b", 100, 0)
    assert wm.current(0) == 60


def test_finished_splits_release_and_all_finished_is_max() -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(0)
    wm.add_split("f1", 0)
    wm.add_split("f2", 0)
    wm.observe("f1", 100, 0)
    wm.observe("f2", 30, 0)
    assert wm.current(0) == 30
    wm.finish_split("f2")
    assert wm.is_finished("f2")
    assert wm.current(0) == 100
    with pytest.raises(ValueError):
        wm.observe("f2", 200, 0)
    with pytest.raises(ValueError):
        wm.observe_batch("f2", [200], 0)
    wm.finish_split("f1")
    assert wm.current(0) == MAX_MICROS
    # A split appearing after the end cannot move the watermark back (its data is late).
    wm.add_split("late-file", 0)
    assert wm.raw(0) == MIN_MICROS
    assert wm.current(0) == MAX_MICROS


def test_finished_and_idle_does_not_jump_to_max() -> None:
    clock = FakeClock()
    wm = SplitWatermarks.bounded_out_of_orderness(0, idle_timeout_us=S)
    wm.add_split("done", 0)
    wm.add_split("quiet", 0)
    wm.observe("quiet", 70, 0)
    wm.finish_split("done")
    clock.advance(S)
    assert wm.current(clock.now_us()) == 70  # the quiet split may still yield data
    assert wm.idle


def test_rebalance_add_remove_splits() -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(0)
    wm.add_split("p0", 0)
    wm.observe("p0", 1_000, 0)
    assert wm.current(0) == 1_000
    wm.add_split("p1", 0, estimator=BoundedOutOfOrderness(0, max_seen_us=400))  # resumed from elsewhere
    assert wm.raw(0) == 400
    assert wm.current(0) == 1_000  # held, never backwards
    wm.observe("p1", 1_500, 0)
    wm.observe("p0", 2_000, 0)
    assert wm.current(0) == 1_500
    wm.remove_split("p1")
    assert wm.current(0) == 2_000
    assert "p1" not in wm and "p0" in wm and wm.split_ids == ["p0"]
    with pytest.raises(ValueError):
        wm.add_split("p0", 0)
    with pytest.raises(KeyError):
        wm.remove_split("nope")
    with pytest.raises(KeyError):
        wm.observe("nope", 1, 0)


def test_manual_estimator_split() -> None:
    wm = SplitWatermarks(ManualWatermark)
    wm.add_split("s", 0)
    wm.observe("s", 10**9, 0)
    assert wm.current(0) == MIN_MICROS
    est = wm.estimator("s")
    assert isinstance(est, ManualWatermark)
    est.set_watermark(777)
    assert wm.current(0) == 777


def test_batch_mode_stays_min_until_all_input_read_then_max() -> None:
    assert batch_semantics(streaming=False, all_inputs_bounded=True)
    assert not batch_semantics(streaming=True, all_inputs_bounded=True)
    assert not batch_semantics(streaming=False, all_inputs_bounded=False)

    clock = FakeClock()
    wm = source_watermarks(batch=True, max_out_of_orderness_us=5, idle_timeout_us=S)
    assert wm.idle_timeout_us is None  # no idleness in batch: a slow read never lets it advance
    # months stored 1, 10, 11, 12, 2, ...: any order is fine, nothing moves until the end.
    wm.add_split("flights-1.csv", clock.now_us())
    wm.add_split("flights-2.csv", clock.now_us())
    assert isinstance(wm.estimator("flights-1.csv"), BatchWatermark)
    for month in (1, 10, 11, 12, 2):
        wm.observe_batch("flights-1.csv", [month * 30 * 86_400 * S], clock.now_us())
        clock.advance(10 * S)
        assert wm.current(clock.now_us()) == MIN_MICROS
    wm.finish_split("flights-1.csv")
    assert wm.current(clock.now_us()) == MIN_MICROS
    wm.observe_batch("flights-2.csv", [S], clock.now_us())
    wm.finish_split("flights-2.csv")
    assert wm.current(clock.now_us()) == MAX_MICROS


def test_source_watermarks_streaming_configuration() -> None:
    wm = source_watermarks(batch=False, max_out_of_orderness_us=100, idle_timeout_us=S)
    assert wm.idle_timeout_us == S
    wm.add_split("p", 0)
    wm.observe("p", 1_000, 0)
    assert wm.current(0) == 900
    custom = source_watermarks(batch=False, estimator_factory=ManualWatermark)
    custom.add_split("p", 0)
    assert isinstance(custom.estimator("p"), ManualWatermark)


def test_snapshot_and_restore() -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(10, idle_timeout_us=S)
    wm.add_split("a", 0)
    wm.add_split("b", 0)
    wm.observe("a", 500, 0)
    wm.observe("b", 300, 0)
    wm.finish_split("a")
    assert wm.current(0) == 290
    snap = wm.snapshot()

    again = SplitWatermarks.bounded_out_of_orderness(10, idle_timeout_us=S)
    again.restore(snap, now_us=5 * S)
    assert again.output == 290
    assert again.is_finished("a") and not again.is_finished("b")
    assert not again.split_is_idle("b", 5 * S)  # restored splits start active
    assert again.current(5 * S) == 290
    again.observe("b", 400, 5 * S)
    assert again.current(5 * S) == 390
