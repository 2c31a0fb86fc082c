"""Beam's `apache_beam.coders.typecoders`: the coder registry."""

from millstream.engine.model.coders import CoderRegistry, registry

__all__ = ["CoderRegistry", "registry"]
