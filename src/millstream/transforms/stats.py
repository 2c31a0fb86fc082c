"""Beam's `apache_beam.transforms.stats`: ApproximateUnique and ApproximateQuantiles."""

from millstream.engine.model.combiners_approx import (
    ApproximateQuantiles,
    ApproximateQuantilesCombineFn,
    ApproximateUnique,
    ApproximateUniqueCombineFn,
)

__all__ = [
    "ApproximateQuantiles",
    "ApproximateQuantilesCombineFn",
    "ApproximateUnique",
    "ApproximateUniqueCombineFn",
]
