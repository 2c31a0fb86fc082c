"""Unit tests for the per-split watermark estimators."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from millstream.engine.model.timestamp import MIN_MICROS
from millstream.engine.runtime.watermarks import (
    BatchWatermark,
    BoundedOutOfOrderness,
    ManualWatermark,
    MonotonicWatermark,
    WatermarkEstimator,
)


def test_estimators_satisfy_protocol() -> None:
    for est in (BoundedOutOfOrderness(5), MonotonicWatermark(), ManualWatermark(), BatchWatermark()):
        assert isinstance(est, WatermarkEstimator)
        assert est.current() == MIN_MICROS


def test_bounded_out_of_orderness_is_max_seen_minus_delay() -> None:
    est = BoundedOutOfOrderness(max_delay_us=100)
    est.observe(1_000)
    assert est.current() == 900
    est.observe(950)  # out of order: no change
    assert est.current() == 900 and est.max_seen == 1_000
    est.observe_batch([1_200, 1_050, 1_500, 990])
    assert est.current() == 1_400
    est.observe_batch([])  # empty batch: no change
    est.observe_batch([10, 20])  # all older: no change
    assert est.current() == 1_400


def test_bounded_out_of_orderness_clamps_at_min_and_rejects_negative_delay() -> None:
    est = BoundedOutOfOrderness(max_delay_us=10)
    est.observe(MIN_MICROS + 3)
    assert est.current() == MIN_MICROS
    with pytest.raises(ValueError):
        BoundedOutOfOrderness(-1)


def test_bounded_out_of_orderness_accepts_any_iterable_batch() -> None:
    est = BoundedOutOfOrderness(0)
    est.observe_batch(t for t in (3, 9, 4))
    assert est.current() == 9


def test_monotonic_is_latest_seen_and_never_goes_back() -> None:
    est = MonotonicWatermark()
    est.observe(10)
    est.observe(7)
    assert est.current() == 10
    est.observe_batch([11, 15, 12])
    assert est.current() == 15
    assert MonotonicWatermark(initial_us=50).current() == 50


def test_manual_moves_only_by_set_watermark() -> None:
    est = ManualWatermark()
    est.observe(1_000)
    est.observe_batch([2_000])
    assert est.current() == MIN_MICROS
    est.set_watermark(500)
    est.set_watermark(500)
    assert est.current() == 500
    with pytest.raises(ValueError):
        est.set_watermark(499)
    assert est.current() == 500


def test_batch_watermark_stays_at_min() -> None:
    est = BatchWatermark()
    est.observe(10**12)
    est.observe_batch([10**13])
    assert est.current() == MIN_MICROS


@pytest.mark.parametrize("make", [lambda: BoundedOutOfOrderness(7), MonotonicWatermark, ManualWatermark])
def test_snapshot_restore_round_trip(make: Callable[[], WatermarkEstimator]) -> None:
    est = make()
    if isinstance(est, ManualWatermark):
        est.set_watermark(1_000)
    else:
        est.observe(1_000)
    fresh = make()
    fresh.restore(est.snapshot())
    assert fresh.current() == est.current() != MIN_MICROS
