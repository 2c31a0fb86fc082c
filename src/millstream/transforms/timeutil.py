"""Beam's `apache_beam.transforms.timeutil`: the time domains of timers."""

from millstream.engine.model.userstate import TimeDomain

__all__ = ["TimeDomain"]
