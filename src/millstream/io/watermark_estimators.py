"""Beam's `apache_beam.io.watermark_estimators`: ManualWatermarkEstimator, MonotonicWatermarkEstimator."""

from millstream.engine.model.watermark_estimators import (
    ManualWatermarkEstimator,
    MonotonicWatermarkEstimator,
    WatermarkEstimator,
    WatermarkEstimatorProvider,
)

__all__ = [
    "ManualWatermarkEstimator",
    "MonotonicWatermarkEstimator",
    "WatermarkEstimator",
    "WatermarkEstimatorProvider",
]
