"""Beam's `apache_beam.typehints.decorators`."""

from millstream.engine.model.typehints import TypeCheckError, with_input_types, with_output_types

__all__ = ["TypeCheckError", "with_input_types", "with_output_types"]
