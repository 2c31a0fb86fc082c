"""Beam's type hints: `with_input_types`/`with_output_types` and the hint names (`Tuple[int, str]`, `KV`, ...).

Hints are recorded on the function or transform they decorate and checked when the pipeline is built
(`engine/model/typecheck.py`, as Beam's ``pipeline_type_check``); millstream does not check element types
while it runs (Beam's runtime type check is an option that is off by default).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F")

Tuple = typing.Tuple  # noqa: UP006 - Beam's name for the hint, subscripted by users as Tuple[int, str]
List = typing.List  # noqa: UP006
Dict = typing.Dict  # noqa: UP006
Set = typing.Set  # noqa: UP006
FrozenSet = typing.FrozenSet  # noqa: UP006
Iterable = typing.Iterable  # noqa: UP006
Iterator = typing.Iterator  # noqa: UP006
Generator = typing.Generator  # noqa: UP006
Union = typing.Union
Optional = typing.Optional
KV = typing.Tuple  # noqa: UP006 - KV[K, V] is a 2-tuple


class _TupleConstraintMeta(type):
    """`isinstance(hint, TupleConstraint)` is true for tuple hints such as `Tuple[int, str]` and `KV[str, int]`."""

    def __instancecheck__(cls, hint: Any) -> bool:
        return typing.get_origin(hint) is tuple


class TupleConstraint(metaclass=_TupleConstraintMeta):
    """The kind of `Tuple[...]` hints (Beam's `typehints.TupleConstraint`), for `isinstance` checks on hints.

    >>> isinstance(Tuple[int, str], TupleConstraint), isinstance(int, TupleConstraint)
    (True, False)
    """


def TypeVariable(name: str, use_name_in_eq: bool = True) -> Any:  # noqa: N802 - Beam's class name
    """Beam's type variable (``typehints.TypeVariable('T')``), as a `typing.TypeVar`: bound, when the pipeline
    is built, to the element type of the input it is declared for.

    >>> TypeVariable("T")
    ~T
    """
    return TypeVar(name)


class TypeCheckError(Exception):
    """An element or a pipeline's construction does not match the declared type hints."""


def _record(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[F], F]:
    def decorate(target: F) -> F:
        hints = dict(getattr(target, "_millstream_type_hints", {}))
        hints[kind] = (args, kwargs)
        try:
            target._millstream_type_hints = hints  # type: ignore[attr-defined]
        except AttributeError as e:
            raise TypeError(f"cannot attach type hints to {target!r}: {e}") from None
        return target

    return decorate


def with_input_types(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """Decorator: declare the input types of a function, DoFn or PTransform class."""
    return _record("input", args, kwargs)


def with_output_types(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """Decorator: declare the output type of a function, DoFn or PTransform class."""
    return _record("output", args, kwargs)


def declared_hints(target: Any) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The hints recorded on `target` by the decorators: {"input"/"output": (args, kwargs)}."""
    return dict(getattr(target, "_millstream_type_hints", {}))


__all__ = [
    "KV",
    "Dict",
    "FrozenSet",
    "Generator",
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
    "declared_hints",
    "with_input_types",
    "with_output_types",
]
