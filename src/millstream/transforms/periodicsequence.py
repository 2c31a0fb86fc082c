"""Beam's `apache_beam.transforms.periodicsequence`: PeriodicImpulse, PeriodicSequence, RebaseMode."""

from millstream.connectors.periodic.periodicsequence import PeriodicImpulse, PeriodicSequence, RebaseMode

__all__ = ["PeriodicImpulse", "PeriodicSequence", "RebaseMode"]
