"""Beam's `apache_beam.pvalue`: PCollection, TaggedOutput and side-input views."""

from millstream.engine.model.pvalue import (
    AsDict,
    AsIter,
    AsList,
    AsMultiMap,
    AsSideInput,
    AsSingleton,
    DoOutputsTuple,
    PBegin,
    PCollection,
    PDone,
    PValue,
    TaggedOutput,
)
from millstream.engine.model.rows import Row

__all__ = [
    "AsDict",
    "AsIter",
    "AsList",
    "AsMultiMap",
    "AsSideInput",
    "AsSingleton",
    "DoOutputsTuple",
    "PBegin",
    "PCollection",
    "PDone",
    "PValue",
    "Row",
    "TaggedOutput",
]
