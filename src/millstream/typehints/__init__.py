"""Beam's `apache_beam.typehints`: `with_input_types`, `with_output_types` and the hint names."""

from typing import Any

from millstream.engine.model.typehints import (
    KV,
    Dict,
    FrozenSet,
    Generator,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    TypeCheckError,
    TypeVariable,
    Union,
    with_input_types,
    with_output_types,
)
from millstream.typehints import decorators, typehints

__all__ = [
    "KV",
    "Any",
    "Dict",
    "FrozenSet",
    "Generator",
    "Iterable",
    "Iterator",
    "List",
    "Optional",
    "Set",
    "Tuple",
    "TypeCheckError",
    "TypeVariable",
    "Union",
    "decorators",
    "typehints",
    "with_input_types",
    "with_output_types",
]
