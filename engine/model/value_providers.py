"""Resolving Beam `ValueProvider` arguments of IO transforms to their values.

Every IO argument Beam accepts a ValueProvider for goes through `resolve_value` when the transform is built:
millstream parses all options before the pipeline is built, so the value is known then (a template
parameter left off the command line resolves to its declared default, and to an error naming the option
when it has none).
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.options import RuntimeValueProvider, ValueProvider


def resolve_value(value: Any, what: str) -> Any:
    """`value`, or the value a ValueProvider holds; `what` names the argument in the error for an unset one."""
    if not isinstance(value, ValueProvider):
        return value
    if not value.is_accessible():
        raise ValueError(
            f"{what}: the value provider {value!r} has no value; pass the option on the command line"
        )
    resolved = value.get()
    if resolved is None and isinstance(value, RuntimeValueProvider):
        raise ValueError(
            f"{what}: the template parameter --{value.option_name} was not given and has no default; "
            f"pass --{value.option_name}=VALUE"
        )
    return resolved
