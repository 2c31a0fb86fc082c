"""Beam's `apache_beam.typehints.typehints`: the hint names."""

from typing import Any

from millstream.engine.model.typehints import (
    KV,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    TupleConstraint,
    TypeCheckError,
    TypeVariable,
    Union,
)

__all__ = [
    "KV",
    "Any",
    "Dict",
    "Iterable",
    "Iterator",
    "List",
    "Optional",
    "Set",
    "Tuple",
    "TupleConstraint",
    "TypeCheckError",
    "TypeVariable",
    "Union",
]
