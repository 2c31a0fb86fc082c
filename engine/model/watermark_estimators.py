"""Beam's watermark estimators for splittable DoFns (``apache_beam.io.watermark_estimators``): manual,
monotonic and wall-time, with their providers for ``DoFn.WatermarkEstimatorParam(provider)``.

They are the objects a splittable DoFn's `process` receives, one per restriction (`splittable.py`); a DoFn
without a restriction cannot use them (`check_watermark_estimator_param` says so when the ParDo is built).
``WalltimeWatermarkEstimator`` reads the clock it is given (`use_clock`: the job's, a FakeClock under
TestStream), never the machine's wall clock.
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.dofn import provider_of, require_methods
from millstream.engine.model.timestamp import Timestamp

__all__ = [
    "ManualWatermarkEstimator",
    "MonotonicWatermarkEstimator",
    "WalltimeWatermarkEstimator",
    "WatermarkEstimator",
    "WatermarkEstimatorProvider",
    "check_watermark_estimator_param",
    "estimator_provider",
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

    def estimator_state_coder(self) -> Any:
        """The coder of estimator states, kept with a residual restriction (pickling by default)."""
        from millstream.engine.model.coders import PickleCoder

        return PickleCoder()


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


class WalltimeWatermarkEstimator(WatermarkEstimator):
    """The watermark is processing time (never going back), read from the job's clock.

    Beam's reads ``Timestamp.now()``; this one reads the clock the runtime hands it with `use_clock` before
    `process` sees it, so a FakeClock drives it in tests.

    >>> class Clock:
    ...     def now_us(self) -> int: return 7_000_000
    >>> e = WalltimeWatermarkEstimator(None); e.use_clock(Clock()); e.current_watermark()
    Timestamp(7)
    """

    def __init__(self, timestamp: Timestamp | None = None) -> None:
        self._timestamp = timestamp
        self._clock: Any = None

    def use_clock(self, clock: Any) -> None:
        """Read processing time from `clock` (anything with ``now_us()``); a new estimator starts at its now."""
        self._clock = clock
        if self._timestamp is None:
            self._timestamp = self._now()

    def _now(self) -> Timestamp:
        if self._clock is None:
            raise RuntimeError(
                "WalltimeWatermarkEstimator has no clock: it is given the job's clock when a splittable DoFn's "
                "restriction starts, so create it through DoFn.WatermarkEstimatorParam, or call use_clock first"
            )
        return Timestamp(micros=self._clock.now_us())

    def observe_timestamp(self, timestamp: Timestamp) -> None:
        """Outputs do not move a wall-time watermark."""

    def current_watermark(self) -> Timestamp | None:
        """The clock's time, or the last watermark if the clock went back."""
        now = self._now()
        if self._timestamp is None or now > self._timestamp:
            self._timestamp = now
        return self._timestamp

    def get_estimator_state(self) -> Any:
        """The watermark."""
        return self._timestamp

    @staticmethod
    def default_provider() -> WatermarkEstimatorProvider:
        """A provider of wall-time estimators starting at the clock's time."""
        return _DefaultProvider(WalltimeWatermarkEstimator)


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
    watermark estimator tracks one restriction's progress, so elsewhere it has nothing to estimate.

    `markers` are those of the user's own `process` (a splittable DoFn's, before its runner takes the
    tracker and the estimator out of the signature)."""
    names = [m.name for m in markers.values()]
    if "WatermarkEstimatorParam" in names and "RestrictionParam" not in names:
        raise ValueError(
            f"{where}: DoFn.WatermarkEstimatorParam is meaningful only in a splittable DoFn (one that also takes "
            "DoFn.RestrictionParam); this DoFn has no restriction whose watermark it could estimate"
        )
    if names.count("WatermarkEstimatorParam") > 1:
        raise ValueError(f"{where}: process declares more than one DoFn.WatermarkEstimatorParam")


def estimator_provider(marker: Any, fn: Any, where: str) -> Any:
    """The provider a ``DoFn.WatermarkEstimatorParam`` names, or the DoFn itself when it names none (Beam's
    rule); refused clearly when it cannot create estimators."""
    provider = provider_of(marker, fn)
    require_methods(
        provider,
        ("initial_estimator_state", "create_watermark_estimator"),
        "DoFn.WatermarkEstimatorParam needs a WatermarkEstimatorProvider: it",
        where,
        "pass one (e.g. ManualWatermarkEstimator.default_provider()), or make the DoFn itself a provider",
    )
    return provider
