"""Beam's ``--runtime_type_check``: every ParDo's input and main-output elements checked against its declared
type hints while the pipeline runs, failing the job with Beam's `TypeCheckError` naming the step and the element.

The checks are the step's `ParDoNode` hooks (``input_check``, ``output_check``), set when the plan is built and
only when the option is on: without it they are None, and the node tests that once per batch.
``--performance_runtime_type_check`` (Beam checks a sample of the elements there) runs the same checks here;
as in Beam, the two cannot be combined. Which hints count is Beam's: the transform's ``with_input_types`` /
``with_output_types``, its decorators, or the annotations of its function or ``process`` (`typecheck`).
Combiners' inputs and outputs are not checked (Beam checks a CombinePerKey's values; issue 14).
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from millstream.engine.model.core import CallableWrapperDoFn, ParDo
from millstream.engine.model.typecheck import input_hint, is_instance, normalize, output_hint
from millstream.engine.model.typehints import TypeCheckError
from millstream.engine.runtime.graph.node import user_error
from millstream.engine.runtime.operators.pardo import ParDoNode

__all__ = ["install_type_checks", "runtime_type_check_requested"]


def runtime_type_check_requested(options: Any) -> bool:
    """Whether `options` ask for runtime type checks; both of Beam's flags at once are refused, as Beam does."""
    from millstream.engine.model.options import TypeOptions

    typed = options.view_as(TypeOptions)
    full = bool(getattr(typed, "runtime_type_check", False))
    sampled = bool(getattr(typed, "performance_runtime_type_check", False))
    if full and sampled:
        raise RuntimeError(
            "You cannot turn on runtime_type_check and performance_runtime_type_check simultaneously. "
            "Pick one or the other."
        )
    return full or sampled


def _checked(hint: Any) -> Any:
    """`hint` in the form `is_instance` reads, or None when it accepts every element anyway."""
    if hint is None or hint is Any or isinstance(hint, TypeVar):
        return None
    return normalize(hint)


def _argument_name(transform: ParDo) -> str:
    """The name of the parameter the element is passed as (Beam's messages name it)."""
    fn = transform.fn
    target = fn.fn if isinstance(fn, CallableWrapperDoFn) else getattr(fn, "process", None)
    try:
        params = list(inspect.signature(target).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "element"
    return params[0].name if params else "element"


def _shown(value: Any, limit: int = 200) -> str:
    """The element as Beam's message shows it (``str``, as its ``%s``), cut to `limit` characters."""
    try:
        text = str(value)
    except Exception as e:  # a broken __str__ must not hide the type error
        text = f"<unprintable {type(value).__name__}: {e}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _violation(label: str, element: Any, detail: str) -> BaseException:
    """Beam's runtime TypeCheckError, attributed to the step (so no upstream step claims it)."""
    cause = TypeCheckError(f"Runtime type violation detected within ParDo({label}): {detail}")
    return user_error(label, element, cause)


def install_type_checks(node: ParDoNode, transform: ParDo) -> None:
    """Set `node`'s input and output check hooks to check the elements entering it (its main input) and
    leaving it (its main output) against the hints `transform` declares; a hint absent or Any sets no hook."""
    label = node.label
    expected_in = _checked(input_hint(transform))
    expected_out = _checked(output_hint(transform))
    if expected_in is not None:
        name = _argument_name(transform)

        def check_input(values: list[Any]) -> None:
            for v in values:
                if not is_instance(v, expected_in):
                    raise _violation(
                        label,
                        v,
                        f"Type-hint for argument: '{name}' violated. Expected an instance of {expected_in!r}, "
                        f"instead found {_shown(v)}, an instance of {type(v)!r}.",
                    )

        node.input_check = check_input
    if expected_out is not None:

        def check_output(values: list[Any]) -> None:
            for v in values:
                if not is_instance(v, expected_out):
                    raise _violation(
                        label,
                        v,
                        f"According to type-hint expected output should be of type {expected_out!r}. "
                        f"Instead, received '{_shown(v)}', an instance of type {type(v)!r}.",
                    )

        node.output_check = check_output
