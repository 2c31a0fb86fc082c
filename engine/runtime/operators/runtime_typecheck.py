"""Beam's ``--runtime_type_check``: every ParDo's input and main-output elements checked against its declared
type hints while the pipeline runs, failing the job with Beam's `TypeCheckError` naming the step and the element.

The checks are the step's `ParDoNode` hooks (``input_check``, ``output_check``), set when the plan is built and
only when the option is on: without it they are None, and the node tests that once per batch.
``--performance_runtime_type_check`` (Beam checks a sample of the elements there) runs the same checks here;
as in Beam, the two cannot be combined. Which hints count is Beam's: the transform's ``with_input_types`` /
``with_output_types``, its decorators, or the annotations of its function or ``process`` (`typecheck`).

A CombinePerKey's CombineFn (so also CombineGlobally's, which is one inside) is wrapped, as Beam wraps it in
its ``TypeCheckCombineFn``: each value added is checked against the values' input type and each result of
``extract_output`` against the output type (`combine_type_check`); a combine declaring no types is not wrapped,
nor is a GroupByKey. In the global window, a wrapped `sum` leaves the node's inlined accumulation for its general
path, which calls the CombineFn (only while the option is on); the windowed reducers are chosen by the
windowing, not the CombineFn, and stay the same fast classes. CombineValues is a ParDo declaring Beam's
``Tuple[K, Iterable[I]]`` (`typecheck.combine_values_dofn_hints`): its pairs are checked as any ParDo's.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, TypeVar

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import CallableWrapperDoFn, CombinePerKey, ParDo
from millstream.engine.model.typecheck import (
    combine_value_hints,
    input_hint,
    is_instance,
    normalize,
    output_hint,
)
from millstream.engine.model.typehints import TypeCheckError
from millstream.engine.runtime.graph.node import user_error
from millstream.engine.runtime.operators.pardo import ParDoNode

__all__ = [
    "TypeCheckCombineFn",
    "combine_type_check",
    "install_type_checks",
    "runtime_type_check_requested",
]


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


class TypeCheckCombineFn(CombineFn):
    """A CombineFn checking the values it is given and the results it extracts (Beam's ``TypeCheckCombineFn``),
    failing the job with Beam's `TypeCheckError` naming the step; every other call goes to the wrapped fn."""

    def __init__(self, fn: Any, input_type: Any, output_type: Any, label: str) -> None:
        self.checked_fn = fn
        self.input_type = input_type
        self.output_type = output_type
        self.label = label

    def _check_input(self, element: Any) -> None:
        """Raise Beam's error when `element` is not of the values' input type."""
        if not is_instance(element, self.input_type):
            raise _combine_violation(
                self.label,
                element,
                f"Type-hint for argument: 'element' violated. Expected an instance of {self.input_type!r}, "
                f"instead found {_shown(element)}, an instance of {type(element)!r}.",
            )

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """The wrapped fn's setup."""
        setup = getattr(self.checked_fn, "setup", None)
        if setup is not None:
            setup(*args, **kwargs)

    def teardown(self, *args: Any, **kwargs: Any) -> None:
        """The wrapped fn's teardown."""
        teardown = getattr(self.checked_fn, "teardown", None)
        if teardown is not None:
            teardown(*args, **kwargs)

    def create_accumulator(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped fn's new accumulator."""
        return self.checked_fn.create_accumulator(*args, **kwargs)

    def add_input(self, accumulator: Any, element: Any, *args: Any, **kwargs: Any) -> Any:
        """`element` checked against the input type, then added by the wrapped fn."""
        if self.input_type is not None:
            self._check_input(element)
        return self.checked_fn.add_input(accumulator, element, *args, **kwargs)

    def add_inputs(self, accumulator: Any, elements: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """Each of `elements` checked, then all added by the wrapped fn's own bulk add (if it has one)."""
        if self.input_type is not None:
            elements = list(elements)  # iterated twice: checked, then added
            for element in elements:
                self._check_input(element)
        bulk = getattr(self.checked_fn, "add_inputs", None)
        if bulk is None:
            for element in elements:
                accumulator = self.checked_fn.add_input(accumulator, element, *args, **kwargs)
            return accumulator
        return bulk(accumulator, elements, *args, **kwargs)

    def merge_accumulators(self, accumulators: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        """The wrapped fn's merge."""
        return self.checked_fn.merge_accumulators(accumulators, *args, **kwargs)

    def compact(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The wrapped fn's compact (the accumulator itself when it has none)."""
        compact = getattr(self.checked_fn, "compact", None)
        return compact(accumulator, *args, **kwargs) if compact is not None else accumulator

    def extract_output(self, accumulator: Any, *args: Any, **kwargs: Any) -> Any:
        """The wrapped fn's result, checked against the output type."""
        result = self.checked_fn.extract_output(accumulator, *args, **kwargs)
        if self.output_type is not None and not is_instance(result, self.output_type):
            raise _combine_violation(
                self.label,
                result,
                f"Type-hint for return type violated. Expected an instance of {self.output_type!r}, "
                f"instead found {_shown(result)}, an instance of {type(result)!r}.",
            )
        return result

    def default_label(self) -> str:
        """The wrapped fn's label."""
        label = getattr(self.checked_fn, "default_label", None)
        return label() if label is not None else type(self.checked_fn).__name__


def _combine_violation(label: str, element: Any, detail: str) -> BaseException:
    """Beam's runtime TypeCheckError of a combine (it names the step without "ParDo(...)")."""
    return user_error(
        label, element, TypeCheckError(f"Runtime type violation detected within {label}: {detail}")
    )


def combine_type_check(fn: Any, transform: Any, label: str) -> Any:
    """`fn` (the CombineFn of `transform`, applied as `label`) wrapped to check its values and results against
    the types `transform` declares for them; `fn` itself when it is not a CombinePerKey or declares none."""
    if not isinstance(transform, CombinePerKey):
        return fn
    in_hint, out_hint = combine_value_hints(transform)
    in_hint, out_hint = _checked(in_hint), _checked(out_hint)
    if in_hint is None and out_hint is None:
        return fn
    if transform._keys_encoded:  # the inner step of a combine grouping by its key coder: named as the combine
        label = label.rsplit("/", 1)[0]
    return TypeCheckCombineFn(fn, in_hint, out_hint, label)
