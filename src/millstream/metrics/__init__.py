"""Beam's `apache_beam.metrics`: user metrics."""

from millstream.engine.model.metrics import Metrics, MetricsFilter

__all__ = ["Metrics", "MetricsFilter"]
