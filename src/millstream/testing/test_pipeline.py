"""Beam's `apache_beam.testing.test_pipeline`."""

from millstream.engine.model.test_pipeline import TestPipeline

__all__ = ["TestPipeline"]
