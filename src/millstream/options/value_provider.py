"""Beam's `apache_beam.options.value_provider`."""

from millstream.engine.model.options import RuntimeValueProvider, StaticValueProvider, ValueProvider

__all__ = ["RuntimeValueProvider", "StaticValueProvider", "ValueProvider"]
