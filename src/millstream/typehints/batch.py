"""Beam's `apache_beam.typehints.batch`: batch converters for batched DoFns."""

from millstream.engine.model.batch import (
    BatchConverter,
    ListBatchConverter,
    NumpyBatchConverter,
    PyarrowBatchConverter,
)

__all__ = ["BatchConverter", "ListBatchConverter", "NumpyBatchConverter", "PyarrowBatchConverter"]
