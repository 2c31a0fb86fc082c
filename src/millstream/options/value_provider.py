"""Beam's `apache_beam.options.value_provider`."""

from millstream.engine.model.options import StaticValueProvider, ValueProvider

__all__ = ["StaticValueProvider", "ValueProvider"]
