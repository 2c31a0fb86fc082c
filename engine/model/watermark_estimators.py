"""Beam's watermark estimators for splittable DoFns (``apache_beam.io.watermark_estimators``): manual and
monotonic, with their providers for ``DoFn.WatermarkEstimatorParam(provider)``.

They are the objects a splittable DoFn's `process` receives; a DoFn without a restriction cannot use them
(`check_watermark_estimator_param` says so when the ParDo is built). Beam's ``WalltimeWatermarkEstimator`` is
left out: it reads the wall clock, which millstream's model code never does (issue 14).
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.timestamp import Timestamp

__all__ = [
    "ManualWatermarkEstimator",
    "MonotonicWatermarkEstimator",
    "WatermarkEstimator",
    "WatermarkEstimatorProvider",
    "check_watermark_estimator_param",
]


class WatermarkEstimator:
    """Beam's ``iobase.WatermarkEstimator``: the watermark of one (element, restriction) being processed."""

    def observe_timestamp(self, timestamp: Timestamp) -> None:
        """Told the timestamp of each output."""

    def current_watermark(self) -> Timestamp | None:
        """The watermark now."""
        raise NotImplementedError

    def get_estimator_state(self) -> Any:
        """What to keep to resume the estimator (the watermark)."""
        raise NotImplementedError


class WatermarkEstimatorProvider:
    """Beam's provider: the initial state of an estimator, and an estimator from a state."""

    def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
        """The state a new (element, restriction) starts from."""
        raise NotImplementedError

    def create_watermark_estimator(self, estimator_state: Any) -> WatermarkEstimator:
        """An estimator resuming from `estimator_state`."""
        raise NotImplementedError


class _DefaultProvider(WatermarkEstimatorProvider):
    """Starts from no watermark and builds one estimator class."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls

    def initial_estimator_state(self, element: Any, restriction: Any) -> Any:
        """None: no watermark yet."""
        return None

    def create_watermark_estimator(self, estimator_state: Any) -> WatermarkEstimator:
        """The estimator class resumed at `estimator_state`."""
        estimator: WatermarkEstimator = self.cls(estimator_state)
        return estimator


class MonotonicWatermarkEstimator(WatermarkEstimator):
    """The watermark is the latest output timestamp, assuming outputs come in timestamp order.

    >>> e = MonotonicWatermarkEstimator(None)
    >>> e.observe_timestamp(Timestamp(5)); e.current_watermark()
    Timestamp(5)
    """

    def __init__(self, timestamp: Timestamp | None) -> None:
        self._watermark = timestamp
        self._last_observed = timestamp

    def observe_timestamp(self, timestamp: Timestamp) -> None:
        """Remember the output's timestamp."""
        self._last_observed = timestamp

    def current_watermark(self) -> Timestamp | None:
        """The latest observed timestamp, never going back."""
        last = self._last_observed
        if last is not None and (self._watermark is None or last >= self._watermark):
            self._watermark = last
        return self._watermark

    def get_estimator_state(self) -> Any:
        """The watermark."""
        return self._watermark

    @staticmethod
    def default_provider() -> WatermarkEstimatorProvider:
        """A provider of monotonic estimators starting with no watermark."""
        return _DefaultProvider(MonotonicWatermarkEstimator)


class ManualWatermarkEstimator(WatermarkEstimator):
    """The DoFn sets the watermark itself with `set_watermark`.

    >>> e = ManualWatermarkEstimator(None)
    >>> e.set_watermark(Timestamp(10)); e.current_watermark()
    Timestamp(10)
    """

    def __init__(self, watermark: Timestamp | None) -> None:
        self._watermark = watermark

    def current_watermark(self) -> Timestamp | None:
        """The watermark last set."""
        return self._watermark

    def get_estimator_state(self) -> Any:
        """The watermark."""
        return self._watermark

    def set_watermark(self, timestamp: Timestamp) -> None:
        """Promise no later output before `timestamp` (a Timestamp, not before the current watermark)."""
        if not isinstance(timestamp, Timestamp):
            raise ValueError(f"set_watermark expects a Timestamp as input, got {timestamp!r}")
        if self._watermark is not None and self._watermark > timestamp:
            raise ValueError(
                f"Watermark must be monotonically increasing: {timestamp} is before the current {self._watermark}"
            )
        self._watermark = timestamp

    @staticmethod
    def default_provider() -> WatermarkEstimatorProvider:
        """A provider of manual estimators starting with no watermark."""
        return _DefaultProvider(ManualWatermarkEstimator)


def check_watermark_estimator_param(markers: dict[str, Any], where: str) -> None:
    """Refuse ``DoFn.WatermarkEstimatorParam`` in a DoFn that is not splittable (no ``RestrictionParam``): a
    watermark estimator tracks one restriction's progress, so elsewhere it has nothing to estimate."""
    names = {m.name for m in markers.values()}
    if "WatermarkEstimatorParam" in names and "RestrictionParam" not in names:
        raise ValueError(
            f"{where}: DoFn.WatermarkEstimatorParam is meaningful only in a splittable DoFn (one that also takes "
            "DoFn.RestrictionParam); this DoFn has no restriction whose watermark it could estimate"
        )
