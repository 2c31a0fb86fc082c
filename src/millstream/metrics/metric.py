"""Beam's `apache_beam.metrics.metric`."""

from millstream.engine.model.metrics import MetricResults, Metrics, MetricsFilter

__all__ = ["MetricResults", "Metrics", "MetricsFilter"]
