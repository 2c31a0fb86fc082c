"""Beam's `apache_beam.utils.windowed_value`."""

from millstream.engine.model.dofn import WindowedValue
from millstream.engine.model.window import PaneInfo, PaneInfoTiming

__all__ = ["PaneInfo", "PaneInfoTiming", "WindowedValue"]
