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
    "TaggedOutput",
]
