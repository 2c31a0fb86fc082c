"""Beam's `apache_beam.transforms.trigger`: triggers and accumulation modes."""

from millstream.engine.model.trigger import *  # noqa: F403
from millstream.engine.model.trigger import __all__ as _all

__all__ = list(_all)
