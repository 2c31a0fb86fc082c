"""Beam's `RowTypeConstraint` (``apache_beam.typehints.row_type``): the type of schema'd rows, field by field.

A constraint is an ordered list of (name, type) fields, built with `from_fields` or from a NamedTuple or
dataclass (`from_user_type`). It is accepted wherever Beam takes a type hint (``with_output_types``) and checks
a row's fields with `type_check`: every field present, and values of plain classes and nested row types of the
declared type (generic hints such as ``Sequence[int]`` are checked by their container class only).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any


class RowTypeConstraint:
    """The fields (name, type) of a row type, in order; equal to another with the same fields."""

    def __init__(self, fields: Sequence[tuple[str, Any]], user_type: Any = None) -> None:
        checked: list[tuple[str, Any]] = []
        for i, field in enumerate(fields):
            if not (isinstance(field, tuple) and len(field) == 2 and isinstance(field[0], str)):
                raise TypeError(f"RowTypeConstraint field {i} must be a (name, type) pair, got {field!r}")
            checked.append(field)
        names = [name for name, _ in checked]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"RowTypeConstraint: duplicate field names {duplicates}")
        self._fields = checked
        self._user_type = user_type

    @staticmethod
    def from_fields(
        fields: Sequence[tuple[str, Any]],
        schema_id: str | None = None,
        schema_options: Any = None,
        field_options: Any = None,
        field_descriptions: Any = None,
    ) -> RowTypeConstraint:
        """The row type with `fields` (Beam's schema id and options are accepted and not used)."""
        return RowTypeConstraint(list(fields))

    @staticmethod
    def from_user_type(user_type: type) -> RowTypeConstraint | None:
        """The row type of a NamedTuple or dataclass (its annotated fields), or None for other types."""
        if isinstance(user_type, type) and issubclass(user_type, tuple) and hasattr(user_type, "_fields"):
            hints = typing.get_type_hints(user_type)
            return RowTypeConstraint([(n, hints.get(n, Any)) for n in user_type._fields], user_type)
        if dataclasses.is_dataclass(user_type) and isinstance(user_type, type):
            hints = typing.get_type_hints(user_type)
            return RowTypeConstraint(
                [(f.name, hints.get(f.name, Any)) for f in dataclasses.fields(user_type)], user_type
            )
        return None

    @property
    def user_type(self) -> Any:
        """The NamedTuple or dataclass this row type came from (None for `from_fields`)."""
        return self._user_type

    def get_type_for(self, name: str) -> Any:
        """The declared type of field `name`."""
        for field, hint in self._fields:
            if field == name:
                return hint
        raise KeyError(f"{self!r} has no field {name!r}")

    def type_check(self, instance: Any) -> None:
        """Raise TypeError naming the field when `instance` does not have this row type's fields and types."""
        for name, hint in self._fields:
            if not hasattr(instance, name):
                raise TypeError(f"{self!r}: {instance!r} has no field {name!r}")
            _check_value(f"{name}", getattr(instance, name), hint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowTypeConstraint) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(tuple(name for name, _ in self._fields))

    def __repr__(self) -> str:
        return "Row({})".format(", ".join(f"{n}={_name_of(t)}" for n, t in self._fields))


def _name_of(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else repr(hint)


def _check_value(where: str, value: Any, hint: Any) -> None:
    if isinstance(hint, RowTypeConstraint):
        try:
            hint.type_check(value)
        except TypeError as e:
            raise TypeError(f"field {where}: {e}") from None
        return
    origin = typing.get_origin(hint) or hint
    if origin is Any or origin is typing.Union or not isinstance(origin, type):
        return
    if value is None:
        return  # nullable fields are common in rows
    ok = isinstance(value, origin)
    if not ok and origin in (int, float):  # numpy scalars such as np.int64 for an int field
        ok = hasattr(value, "dtype")
    if not ok and hasattr(origin, "dtype") and isinstance(value, int):  # an int for np.int64
        ok = True
    if not ok:
        raise TypeError(f"field {where}: expected {_name_of(hint)}, got {type(value).__name__} {value!r}")


__all__ = ["RowTypeConstraint"]
