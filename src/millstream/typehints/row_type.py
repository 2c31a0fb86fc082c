"""Beam's `apache_beam.typehints.row_type`: `RowTypeConstraint`, the type of schema'd rows."""

from millstream.engine.model.row_type import RowTypeConstraint

__all__ = ["RowTypeConstraint"]
