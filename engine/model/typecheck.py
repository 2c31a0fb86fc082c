"""Type hints checked at pipeline construction, as Beam does: a producer's declared output type must be
consistent with its consumer's declared input type, or applying the consumer raises `TypeCheckError`.

Where hints come from, in Beam's order: ``.with_input_types`` / ``.with_output_types`` on the transform, the
``@with_input_types`` / ``@with_output_types`` decorators on a PTransform or DoFn class or on a function, then
the annotations of ``DoFn.process`` or of a Map/FlatMap/Filter function (``-> Iterable[T]`` for process and
FlatMap), or of a PTransform's ``expand`` (``PCollection[T]``). `Create` infers its element type from its values.
A transform that declares nothing gets the output type Beam infers for it (`inferred_output`): a Map's or
FlatMap's callable and a DoFn's `process` inferred from their source (`inference`), a GroupByKey's or
CombinePerKey's pairs (a CombineFn's type variables bound by the values); a GroupByKey and a CombinePerKey
require pairs, as in Beam. A composite's declared output type is used only when its last step leaves the type
unknown (Beam's rule), and the built-in combiners and composites declare the hints Beam's declare.
Element types are kept in typing's spelling (`normalize`), so they compare equal to `beam.typehints` names.
A PCollection whose type is unknown (None) is never checked. Beam's ``--no_pipeline_type_check`` turns the check
off. `is_instance` is the check of one element while the pipeline runs (``--runtime_type_check``).

`is_consistent_with` covers the common hints (classes, Any, Union, Optional, Tuple, List, Set, Dict,
Iterable/Iterator, KV, type variables); a hint it does not know is taken as consistent, so an exotic hint
never fails a pipeline that Beam would accept.

>>> import typing
>>> is_consistent_with(typing.Tuple[str, int], typing.Tuple[str, typing.Any])
True
>>> is_consistent_with(typing.List[int], typing.Iterable[str])
False
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any, TypeVar

from millstream.engine.model import inference
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.typehints import TypeCheckError, declared_hints

__all__ = [
    "bind_type_variables",
    "check_input",
    "check_output",
    "combine_value_hints",
    "combine_values_dofn_hints",
    "infer_element_type",
    "inferred_output",
    "input_hint",
    "is_consistent_with",
    "is_instance",
    "keeps_elements",
    "normalize",
    "output_hint",
]

_ITERABLE_ORIGINS = (
    list,
    set,
    frozenset,
    tuple,
    collections.abc.Iterable,
    collections.abc.Iterator,
    collections.abc.Generator,
    collections.abc.Sequence,
    collections.abc.Collection,
)


def _normalize(hint: Any) -> Any:
    """None as NoneType; Beam's `typehints.Any` and the like are typing.Any already."""
    if hint is None:
        return type(None)
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _element_of(hint: Any) -> Any:
    """The element hint of an iterable hint (Any when it does not say)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return typing.Union[args] if args else Any  # noqa: UP007 - a Union built from a tuple of hints
    if origin is dict:
        return args[0] if args else Any
    return args[0] if args else Any


def is_consistent_with(sub: Any, base: Any) -> bool:
    """Whether values of hint `sub` are acceptable where hint `base` is declared (Beam's
    ``typehints.is_consistent_with``); unknown kinds of hints count as consistent."""
    sub, base = _normalize(sub), _normalize(base)
    if sub is base or base is Any or sub is Any or sub == base:
        return True
    if (sub is int and base in (float, complex)) or (sub is float and base is complex):
        return True  # PEP 484's numeric tower, as Beam
    if isinstance(base, TypeVar) or isinstance(sub, TypeVar):
        return True
    if _is_union(sub):
        return all(is_consistent_with(s, base) for s in typing.get_args(sub))
    if _is_union(base):
        return any(is_consistent_with(sub, b) for b in typing.get_args(base))
    sub_origin, base_origin = typing.get_origin(sub), typing.get_origin(base)
    sub_cls = sub_origin or sub
    base_cls = base_origin or base
    if not isinstance(sub_cls, type) or not isinstance(base_cls, type):
        return True  # a hint kind not modelled here (Literal, Callable, a Protocol ...): do not refuse it
    try:
        if not issubclass(sub_cls, base_cls):
            return False
    except TypeError:
        return True
    base_args = typing.get_args(base)
    if base_origin is None or not base_args:
        return True  # `list` where `list` (or `List` without arguments) is declared
    sub_args = typing.get_args(sub)
    if sub_origin is None or not sub_args:
        # As Beam: a bare container class is that container of Any (a bare tuple: Tuple[Any, ...]); any other
        # class (str, bytes, a user's class) is not an instance of a parameterized hint
        if sub_cls is tuple:  # Tuple[Any, ...]: not a fixed-length tuple hint, but any iterable one
            return base_origin is not tuple or (len(base_args) == 2 and base_args[1] is Ellipsis)
        return sub_cls in (list, set, frozenset, dict)
    if sub_origin is dict and not issubclass(base_origin, collections.abc.Mapping):
        return False  # Beam: a Dict is not an Iterable of its keys
    if base_origin is tuple:
        if sub_origin is not tuple:
            return True
        if len(base_args) == 2 and base_args[1] is Ellipsis:
            return is_consistent_with(_element_of(sub), base_args[0])
        if len(sub_args) == 2 and sub_args[1] is Ellipsis:
            return all(is_consistent_with(sub_args[0], b) for b in base_args)
        return len(sub_args) == len(base_args) and all(
            is_consistent_with(s, b) for s, b in zip(sub_args, base_args)
        )
    if base_origin is dict or issubclass(base_origin, collections.abc.Mapping):
        if len(sub_args) != len(base_args):
            return True
        return all(is_consistent_with(s, b) for s, b in zip(sub_args, base_args))
    if base_origin in _ITERABLE_ORIGINS or issubclass(base_origin, collections.abc.Iterable):
        return is_consistent_with(_element_of(sub), base_args[0])
    return True


def bind_type_variables(input_hint: Any, actual: Any, output: Any) -> Any:
    """`output` with the type variables of `input_hint` replaced by what `actual` binds them to (the basics
    of Beam's binding: a bare variable, variables inside Tuple/List/Iterable/Dict arguments, and the arms of a
    Union that `actual` fits); as Beam, a variable left unbound is Any."""
    bindings: dict[Any, Any] = {}
    _match(input_hint, actual, bindings)
    return _substitute(output, bindings)


def _match(hint: Any, actual: Any, bindings: dict[Any, Any]) -> None:
    if isinstance(hint, TypeVar):
        bindings.setdefault(hint, actual)
        return
    if _is_union(hint) and not _is_union(actual):
        # as Beam's Union: the variables bound alike by every arm `actual` fits, as the union of their bindings
        arms = []
        for arm in typing.get_args(hint):
            if is_consistent_with(actual, arm):
                sub: dict[Any, Any] = {}
                _match(arm, actual, sub)
                arms.append(sub)
        if arms:
            for var in set.intersection(*(set(sub) for sub in arms)):
                bound = [sub[var] for sub in arms]
                bindings.setdefault(var, typing.Union[tuple(bound)])  # noqa: UP007 - a Union from a tuple
        return
    h_args, a_args = typing.get_args(hint), typing.get_args(actual)
    if (
        h_args
        and a_args
        and len(h_args) == len(a_args)
        and typing.get_origin(hint) == typing.get_origin(actual)
    ):
        for h, a in zip(h_args, a_args):
            _match(h, a, bindings)


def _substitute(hint: Any, bindings: dict[Any, Any]) -> Any:
    if isinstance(hint, TypeVar):
        return bindings.get(hint, Any)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if not args or origin is None:
        return hint
    new = tuple(a if a is Ellipsis else _substitute(a, bindings) for a in args)
    try:
        return hint.copy_with(new)  # typing generics (Tuple[...], List[...], Union[...])
    except AttributeError:
        try:
            return origin[new]  # builtin generics (tuple[...], list[...])
        except TypeError:
            return hint


def _first(hints: tuple[tuple[Any, ...], dict[str, Any]] | None) -> Any:
    if not hints:
        return None
    args, kwargs = hints
    if args:
        return args[0]
    return next(iter(kwargs.values()), None)


def _annotations(fn: Any, resolve: bool = True) -> dict[str, Any]:
    """`fn`'s annotations. As Beam: a function's string annotations (``from __future__ import annotations``)
    are resolved; a DoFn's `process` keeps only its non-string ones (`resolve=False`), since Beam leaves
    those unchecked and checking them would refuse pipelines Beam accepts."""
    if resolve:
        try:
            return typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: no hints rather than a failed pipeline
            return {}
    raw = getattr(inspect.unwrap(fn), "__annotations__", None) if callable(fn) else None
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if not isinstance(v, str)}


def _first_param_annotation(fn: Any, resolve: bool = True) -> Any:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    return _annotations(fn, resolve).get(params[0].name)


def _yielded(hint: Any) -> Any:
    """The element type of ``Iterable[T]`` / ``Iterator[T]`` / ``Generator[T, ...]`` return hints."""
    if hint is None:
        return None
    origin = typing.get_origin(hint)
    if origin is not None and isinstance(origin, type) and issubclass(origin, collections.abc.Iterable):
        if origin in (str, bytes, dict):
            return None
        args = typing.get_args(hint)
        return _element_of(hint) if args else Any
    return None


def _wrapped(transform: Any) -> tuple[Any, str | None]:
    """A ParDo's user object (the DoFn, or a Map-family function) and the Map-family kind (None for a DoFn)."""
    fn = getattr(transform, "fn", None)
    if not isinstance(fn, DoFn):  # a combine's function takes an iterable of inputs: not an element hint
        return None, None
    inner = getattr(fn, "fn", None)
    kind = getattr(fn, "kind", None)
    if inner is not None and kind is not None:
        return inner, kind
    return fn, None


def _declared(transform: Any, side: str) -> tuple[Any, Any, str | None]:
    """``(hint, user, kind)``: the hint for `side` ("input"/"output") declared on the transform, else on the
    user function or DoFn it wraps (or that DoFn's class), else in its `expand` annotations when it wraps
    nothing; `user` and `kind` (see `_wrapped`) are set only when the wrapped function declares nothing, so
    the caller may read its annotations instead."""
    own = _first(declared_hints(transform).get(side))
    if own is not None:
        return own, None, None
    user, kind = _wrapped(transform)
    if user is None:
        return _expand_hint(transform, side), None, None
    declared = _first(declared_hints(user).get(side)) or _first(declared_hints(type(user)).get(side))
    if declared is not None:
        return declared, None, None
    return None, user, kind


def input_hint(transform: Any) -> Any:
    """The element type `transform` declares for its input, or None."""
    hint, user, kind = _declared(transform, "input")
    if user is None:
        return hint
    if kind is None:
        process = getattr(user, "process", None)
        return _first_param_annotation(process, resolve=False) if process is not None else None
    if kind in ("map", "flatmap", "filter"):
        return _first_param_annotation(user)
    return None


def output_hint(transform: Any) -> Any:
    """The element type `transform` declares for its (main) output, or None. As Beam, what a Map, MapTuple or
    FlatMapTuple function declares is read without `TimestampedValue` and the like (Any then)."""
    hint = _function_output_hint(transform)
    if hint is not None and _first(declared_hints(transform).get("output")) is None:
        if _wrapped(transform)[1] in ("map", "maptuple", "flatmaptuple"):
            return _strip_output_wrappers(hint)
    return hint


def _function_output_hint(transform: Any) -> Any:
    """The output hint as declared (on the transform, the user's function or DoFn, or their annotations)."""
    hint, user, kind = _declared(transform, "output")
    if user is None:
        return hint
    if kind is None:
        process = getattr(user, "process", None)
        return _yielded(_annotations(process, resolve=False).get("return")) if process is not None else None
    if kind == "filter":
        return input_hint(transform)  # what passes a filter has the type its function declares, if it does
    ret = _annotations(user).get("return")
    if kind in ("map", "maptuple"):
        return ret
    if kind in ("flatmap", "flatmaptuple"):
        return _yielded(ret)
    return None


#: The key of a CombinePerKey's input, as Beam names it in its message (``Tuple[K, V]``).
_K: Any = TypeVar("K")  # type: ignore[misc]


def _is_ours(transform: Any, name: str) -> bool:
    """Whether `transform` is millstream's transform class `name` (checked by name: core imports this module)."""
    cls = type(transform)
    return cls.__name__ == name and cls.__module__ == "millstream.engine.model.core"


def _combine_hint(fn: Any, side: str) -> Any:
    """The element type a CombineFn (or the callable it wraps) declares for its input or output, else Any. A
    wrapped callable's input hint is for the iterable of inputs: its element is the combine's input."""
    for target in (fn, type(fn), getattr(fn, "fn", None), getattr(fn, "_fn", None)):
        if target is None:
            continue
        hint = _first(declared_hints(target).get(side))
        if hint is not None:
            if side == "input" and target is not fn and target is not type(fn) and callable(target):
                return _yielded(hint) or Any
            return hint
    return Any


def combine_value_hints(transform: Any) -> tuple[Any, Any]:
    """``(input, output)``: the types a CombinePerKey's values must have going in and coming out (None: not
    declared), as Beam reads them for ``--runtime_type_check``: the transform's own ``with_input_types`` /
    ``with_output_types`` of pairs, else what its CombineFn (or the callable it wraps) declares."""
    hints: list[Any] = []
    for side in ("input", "output"):
        own = _first(declared_hints(transform).get(side))
        args = typing.get_args(normalize(own)) if own is not None else ()
        if len(args) == 2 and args[1] is not Ellipsis:
            hints.append(args[1])
            continue
        hint = _combine_hint(transform.fn, side)
        hints.append(None if hint is Any else hint)
    return hints[0], hints[1]


def combine_values_dofn_hints(fn: Any) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The hints of CombineValues' DoFn for the CombineFn `fn`, as Beam's ``CombineValuesDoFn`` declares them:
    ``Tuple[K, Iterable[I]]`` in and ``Tuple[K, O]`` out for the types `fn` declares (none when it declares
    none), so that they are checked at construction and with ``--runtime_type_check`` as any ParDo's."""
    hints: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    in_hint, out_hint = _combine_hint(fn, "input"), _combine_hint(fn, "output")
    key = Any if in_hint is Any else _K
    if in_hint is not Any:
        hints["input"] = ((inference.generic(tuple, _K, inference.generic(typing.Iterable, in_hint)),), {})
    if out_hint is not Any:
        hints["output"] = ((inference.generic(tuple, key, out_hint),), {})
    return hints


#: Output annotations Beam strips from an inferred type (its ``_strip_output_annotations``): a function that
#: returns them says nothing about the elements' type.
_OUTPUT_WRAPPERS = ("TimestampedValue", "WindowedValue", "TaggedOutput")


def _strip_output_wrappers(hint: Any) -> Any:
    """Any when `hint` mentions a `TimestampedValue`, `WindowedValue` or `TaggedOutput`, else `hint`."""

    def wraps(h: Any) -> bool:
        if getattr(h, "__name__", None) in _OUTPUT_WRAPPERS:
            return True
        return any(wraps(a) for a in typing.get_args(h) if a is not Ellipsis)

    return Any if wraps(hint) else hint


def _is_internal(fn: Any) -> bool:
    """Whether `fn` is millstream's own (a step inside one of its composites): its output type is not inferred,
    since Beam builds the same composite from other steps and infers from those."""
    module = getattr(fn, "__module__", None) or getattr(type(fn), "__module__", "")
    return isinstance(module, str) and module.startswith("millstream.")


def inferred_output(transform: Any, input_type: Any) -> Any:
    """The element type Beam infers for the main output of `transform`, which declares none, when its input
    has `input_type` (None: unknown); None when nothing is inferred (Any).

    As Beam: a GroupByKey gives ``Tuple[K, Iterable[V]]`` of its input's pair, a CombinePerKey or CombineValues
    ``Tuple[K, <the CombineFn's declared output, else Any>]``; Map gives its callable's inferred return type
    and FlatMap (and a DoFn's `process`) the element type of theirs (`inference`); MapTuple binds the tuple's
    parts to its callable's arguments. A Map with extra arguments, and FlatMapTuple, are not inferred (Beam's
    wrappers hide the call); nor are millstream's own steps inside its composites."""
    t = Any if input_type is None else input_type
    if _is_ours(transform, "GroupByKey"):
        k, v = inference.key_value_types(t)
        return normalize(inference.generic(tuple, k, inference.generic(typing.Iterable, v)))
    if _is_ours(transform, "CombinePerKey") or _is_ours(transform, "CombineValues"):
        k, v = inference.key_value_types(t)
        if _is_ours(transform, "CombineValues"):
            v = inference.element_type(v)
        # the CombineFn's type variables bound by its input's values (Top's List[T] of ints is List[int])
        out = bind_type_variables(
            _combine_hint(transform.fn, "input"), v, _combine_hint(transform.fn, "output")
        )
        return normalize(typing.Tuple[k, out])  # noqa: UP006
    user, kind = _wrapped(transform)
    if user is None or _is_internal(user):
        return None
    extra = bool(getattr(transform, "args", ())) or bool(getattr(transform, "kwargs", {}))
    if kind is None:
        process = getattr(user, "process", None)
        result = inference.element_type(_strip_output_wrappers(inference.infer_return_type(process, [t])))
    elif kind == "map" and not extra:
        result = _strip_output_wrappers(
            inference.infer_return_type(user, [t], depth=inference.DEFAULT_DEPTH - 1)
        )
    elif kind == "flatmap":
        returned = inference.infer_return_type(user, [t])
        result = inference.element_type(_strip_output_wrappers(returned))
    elif kind == "maptuple" and not extra:
        parts = typing.get_args(t) if typing.get_origin(t) is tuple else ()
        fixed = bool(parts) and not (len(parts) == 2 and parts[1] is Ellipsis) and parts != ((),)
        returned = inference.infer_return_type(
            user, list(parts) if fixed else [], depth=inference.DEFAULT_DEPTH - 1
        )
        result = _strip_output_wrappers(returned)
    else:
        return None
    return None if result is Any else normalize(result)


def _expand_hint(transform: Any, side: str) -> Any:
    """The element type in a PTransform's `expand` annotation (``pcoll: PCollection[int]`` for the input,
    ``-> PCollection[str]`` for the output), as Beam strips the PCollection; None for anything else."""
    expand = getattr(type(transform), "expand", None)
    if expand is None or not getattr(expand, "__annotations__", None):
        return None  # most transforms: skip resolving annotations at all
    from millstream.engine.model.pvalue import PCollection

    if side == "input":
        hint = _first_param_annotation(transform.expand)
    else:
        hint = _annotations(expand).get("return")
    if typing.get_origin(hint) is not PCollection:
        return None
    args = typing.get_args(hint)
    return normalize(args[0]) if args else None


def normalize(hint: Any) -> Any:
    """`hint` with builtin generics in typing's spelling (``tuple[int, str]`` as ``typing.Tuple[int, str]``), as
    Beam converts every hint to its own constraints: a PCollection's element type then equals the hint written
    with `beam.typehints` names."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is None or not args:
        return hint
    new = tuple(a if a is Ellipsis else normalize(a) for a in args)
    if isinstance(hint, types.UnionType):
        return typing.Union[new]  # noqa: UP007 - Beam's Union, not the `|` spelling
    spelled = _TYPING_NAMES.get(origin) if isinstance(hint, types.GenericAlias) else None
    if spelled is not None:
        return spelled[new if len(new) != 1 else new[0]]
    if new == args:
        return hint
    try:
        return hint.copy_with(new)
    except AttributeError:
        return hint


_TYPING_NAMES: dict[Any, Any] = {
    tuple: typing.Tuple,  # noqa: UP006 - the typing names are what `beam.typehints` gives
    list: typing.List,  # noqa: UP006
    dict: typing.Dict,  # noqa: UP006
    set: typing.Set,  # noqa: UP006
    frozenset: typing.FrozenSet,  # noqa: UP006
    collections.abc.Iterable: typing.Iterable,
    collections.abc.Iterator: typing.Iterator,
    collections.abc.Generator: typing.Generator,
}


def keeps_elements(transform: Any) -> bool:
    """Whether `transform`'s output has its input's element type, as Beam infers it: Filter (without a
    declared input type), WindowInto, Reshuffle, Distinct and Flatten (the union of its inputs' types)."""
    user, kind = _wrapped(transform)
    if kind == "filter":
        # Beam passes the type through a Python function, not through a builtin or a class such as `bool`
        return isinstance(user, (types.FunctionType, types.MethodType))
    return type(transform).__name__ in ("WindowInto", "Reshuffle", "Distinct", "Flatten")


def _hint_repr(hint: Any) -> str:
    """A hint as Beam's messages show it: ``<class 'int'>``, ``typing.Tuple[str, int]``."""
    return repr(hint)


#: Beam's `PTransformWithSideInputs`: their input check names the producer (the others' does not).
_WITH_SIDE_INPUTS = ("ParDo", "CombinePerKey", "CombineValues", "Partition")


def check_output(transform: Any, result: Any, label: str) -> None:
    """Raise Beam's `TypeCheckError` when a composite's output, typed by its last step, is inconsistent with
    the output type the composite declares (Beam's ``type_check_outputs``); an output not typed yet (a
    primitive's, typed after this from what it declares) is not checked."""
    actual = getattr(result, "element_type", None)
    if actual is None:
        return
    declared = output_hint(transform)
    if declared is not None and not is_consistent_with(actual, declared):
        raise TypeCheckError(
            f"Output type hint violation at {label}: expected {_hint_repr(normalize(declared))}, got "
            f"{_hint_repr(actual)}"
        )


def check_input(transform: Any, pcoll: Any, label: str) -> None:
    """Raise Beam's `TypeCheckError` when the element type of `pcoll` is inconsistent with what `transform`
    (applied as `label`, its label within its composite) declares for its input; the message is Beam's, naming
    both transforms (a GroupByKey's is Beam's own: it requires pairs). As Beam, the producer is named down to
    as many levels as the consumer's label has: a composite's output is produced by the composite."""
    actual = pcoll.element_type
    if actual is None:
        return
    if _is_ours(transform, "GroupByKey"):
        if not is_consistent_with(actual, typing.Tuple[Any, Any]):  # noqa: UP006
            raise TypeCheckError(
                f"Input type hint violation at {label}: expected "
                f"Tuple[TypeVariable[K], TypeVariable[V]], got {_hint_repr(actual)}"
            )
        return
    required = input_hint(transform)
    if required is not None and not any(_is_ours(transform, name) for name in _WITH_SIDE_INPUTS):
        # Beam's message for a transform that takes no side inputs (a composite, a user's PTransform)
        if not is_consistent_with(actual, required):
            raise TypeCheckError(
                f"Input type hint violation at {label}: expected {_hint_repr(normalize(required))}, got "
                f"{_hint_repr(actual)}"
            )
        return
    if required is None and _is_ours(transform, "CombinePerKey"):
        # as Beam: pairs whose values are what the CombineFn declares for its input (Any when it declares none)
        required = typing.Tuple[_K, _combine_hint(transform.fn, "input")]  # noqa: UP006
    if required is None or is_consistent_with(actual, required):
        return
    producer = getattr(getattr(pcoll, "producer", None), "full_label", None) or "?"
    producer = "/".join(producer.split("/")[: label.count("/") + 1])
    raise TypeCheckError(
        f"The transform '{label}' requires PCollections of type '{_hint_repr(required)}' but was applied to a "
        f"PCollection of type '{_hint_repr(actual)}' (produced by the transform '{producer}')."
    )


def infer_element_type(values: list[Any]) -> Any:
    """The element type of `Create`'s values (Beam's ``instance_to_type``, for the common values): the union
    of their types, with tuples as Tuple[...] of their items; None (unknown) for no values."""
    if not values:
        return None
    kinds: list[Any] = []
    for v in values[:1000]:  # a sample is enough: Create's values are usually homogeneous
        t = _instance_type(v)
        if t not in kinds:
            kinds.append(t)
        if len(kinds) > 8:
            return Any
    return inference.union(*kinds)  # Beam's Union: a Union of Dicts is one Dict of Unions


def _instance_type(v: Any) -> Any:
    """Beam's ``instance_to_type``: containers with their elements' types (a list of str is List[str])."""
    return inference.instance_type(v)


def is_instance(value: Any, hint: Any) -> bool:
    """Whether `value` satisfies `hint` while the pipeline runs (Beam's ``check_constraint``).

    Classes by `isinstance` (an int is not a float, as in Beam), None for NoneType, Union/Optional, Tuple
    (fixed and variadic), List/Set/FrozenSet/Dict, and the elements of a container (not of an iterator,
    which checking would consume). Any, type variables and hints not modelled here accept everything."""
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is None:
        if isinstance(hint, type):
            return isinstance(value, hint)
        return True  # a hint kind not modelled here: never fail a running pipeline on it
    if origin in (typing.Union, types.UnionType):
        return any(is_instance(value, h) for h in typing.get_args(hint))
    if not isinstance(origin, type):
        return True  # Literal, Annotated ...: not modelled
    if not isinstance(value, origin):
        return False
    args = typing.get_args(hint)
    if not args:
        return True
    if isinstance(value, tuple) and origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(is_instance(v, args[0]) for v in value)
        if args == ((),):
            return len(value) == 0
        return len(value) == len(args) and all(is_instance(v, h) for v, h in zip(value, args))
    if isinstance(value, collections.abc.Mapping) and len(args) == 2:
        return all(is_instance(k, args[0]) and is_instance(v, args[1]) for k, v in value.items())
    if len(args) == 1 and isinstance(value, collections.abc.Collection):
        # a container is iterated again without harm (a str's characters, a dict's keys, as Beam checks them)
        return all(is_instance(v, args[0]) for v in value)
    return True
