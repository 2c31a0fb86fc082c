"""Beam's `apache_beam.io.watermark_estimators`: the manual, monotonic and wall-time watermark estimators."""

from millstream.engine.model.watermark_estimators import (
    ManualWatermarkEstimator,
    MonotonicWatermarkEstimator,
    WalltimeWatermarkEstimator,
    WatermarkEstimator,
    WatermarkEstimatorProvider,
)

__all__ = [
    "ManualWatermarkEstimator",
    "MonotonicWatermarkEstimator",
    "WalltimeWatermarkEstimator",
    "WatermarkEstimator",
    "WatermarkEstimatorProvider",
]
