"""Beam's `apache_beam.coders.coders`."""

from millstream.engine.model.coders import *  # noqa: F403
from millstream.engine.model.coders import __all__ as _all

__all__ = list(_all)
