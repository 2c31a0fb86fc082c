"""Resolving Beam `ValueProvider` arguments of IO transforms to their values."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.options import ValueProvider


def resolve_value(value: Any, what: str) -> Any:
    """`value`, or the value a ValueProvider holds; `what` names the argument in the error for an unset one."""
    if not isinstance(value, ValueProvider):
        return value
    if not value.is_accessible():
        raise ValueError(
            f"{what}: the value provider {value!r} has no value; pass the option on the command line"
        )
    return value.get()
