"""Type hints checked at pipeline construction (Beam's ``pipeline_type_check``): the same pipelines built on
millstream and on apache_beam must be accepted or refused alike, and the consistency relation agrees with
Beam's ``typehints.is_consistent_with`` on the common hints.

No ``from __future__ import annotations`` here: its string annotations are left unchecked, by Beam as by us.
"""

import types
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pytest

import millstream as beam
from millstream.engine.model.typecheck import bind_type_variables, is_consistent_with
from millstream.typehints import TypeCheckError

from support.beam_harness import construction_outcome, engine

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _to_str(x: int) -> str:
    return str(x)


def _identity_int(x: int) -> int:
    return x


def _quoted(x: "int") -> "int":  # noqa: UP037 - a string annotation, as under the __future__ import
    return x


def _explode(x: int) -> Iterable[str]:
    return [str(x)]


def _swap(kv: tuple[str, int]) -> tuple[int, str]:
    return (kv[1], kv[0])


def _dofns(b: types.ModuleType) -> dict[str, Any]:
    class Words(b.DoFn):
        def process(self, line: str) -> Iterator[str]:
            yield from line.split()

    class Lengths(b.DoFn):
        def process(self, word: str) -> Iterator[int]:
            yield len(word)

    @b.typehints.with_input_types(int)
    @b.typehints.with_output_types(str)
    class Decorated(b.DoFn):
        def process(self, x):  # type: ignore[no-untyped-def]
            yield str(x)

    return {"Words": Words, "Lengths": Lengths, "Decorated": Decorated}


def _transforms(b: types.ModuleType) -> dict[str, Any]:
    """PTransforms typed by their `expand` annotations, and by decorators with a type variable (Beam's snippets)."""
    pcoll = b.pvalue.PCollection

    class IntToStr(b.PTransform):
        def expand(self, pcoll: pcoll[int]) -> pcoll[str]:
            return pcoll | b.Map(lambda elem: str(elem))

    class Unannotated(b.PTransform):
        def expand(self, pcoll: pcoll) -> pcoll:
            return pcoll | b.Map(lambda elem: elem)

    @b.typehints.with_input_types(T)
    @b.typehints.with_output_types(tuple[int, T])
    class WithLength(b.PTransform):
        def expand(self, pcoll):  # type: ignore[no-untyped-def]
            return pcoll | b.Map(lambda x: (len(x), x))

    return {"IntToStr": IntToStr, "Unannotated": Unannotated, "WithLength": WithLength}


Build = Callable[[types.ModuleType, Any], Any]

PIPELINES: dict[str, Build] = {
    "map_annotations_ok": lambda b, p: p | b.Create([1]) | b.Map(_to_str) | b.Map(len),
    "map_annotations_bad": lambda b, p: p | b.Create([1]) | b.Map(_to_str) | "Again" >> b.Map(_identity_int),
    "create_infers_bad": lambda b, p: p | b.Create(["a"]) | b.Map(_identity_int),
    "create_int_to_float_ok": lambda b, p: p | b.Create([1]) | b.Map(lambda x: x).with_input_types(float),
    "with_input_types_bad": lambda b, p: p | b.Create([1]) | b.Map(lambda x: x).with_input_types(str),
    "with_output_types_bad": lambda b, p: (
        p | b.Create([1]) | b.FlatMap(lambda x: [str(x)]).with_output_types(str) | b.Map(_identity_int)
    ),
    "flatmap_iterable_bad": lambda b, p: p | b.Create([1]) | b.FlatMap(_explode) | b.Map(_identity_int),
    "dofn_annotations_ok": lambda b, p: (
        p | b.Create(["a b"]) | b.ParDo(_dofns(b)["Words"]()) | b.ParDo(_dofns(b)["Lengths"]())
    ),
    "dofn_annotations_bad": lambda b, p: (
        p
        | b.Create(["a b"])
        | b.ParDo(_dofns(b)["Words"]())
        | b.ParDo(_dofns(b)["Lengths"]())
        | "Again" >> b.ParDo(_dofns(b)["Lengths"]())
    ),
    "decorated_dofn_bad": lambda b, p: p | b.Create(["x"]) | b.ParDo(_dofns(b)["Decorated"]()),
    "decorated_dofn_ok": lambda b, p: p | b.Create([1]) | b.ParDo(_dofns(b)["Decorated"]()) | b.Map(len),
    "tuple_ok": lambda b, p: p | b.Create([("a", 1)]) | b.Map(_swap),
    "tuple_bad": lambda b, p: p | b.Create([(1, "a")]) | b.Map(_swap),
    "optional_ok": lambda b, p: (
        p
        | b.Create([1])
        | b.Map(lambda x: x).with_output_types(typing.Optional[int])  # noqa: UP045
        | b.Map(lambda x: x).with_input_types(typing.Optional[int])  # noqa: UP045
    ),
    "union_bad": lambda b, p: (
        p
        | b.Create([1])
        | b.Map(lambda x: x).with_output_types(typing.Union[int, str])
        | b.Map(lambda x: x).with_input_types(int)
    ),
    "string_annotations_bad": lambda b, p: p | b.Create(["a"]) | b.Map(_quoted),
    "keys_of_non_pairs_ok": lambda b, p: p | b.Create([1]) | b.Keys(),
    "with_keys_ok": lambda b, p: p | b.Create([1]) | b.WithKeys("k") | b.Map(_swap),
    "with_keys_value_bad": lambda b, p: p | b.Create(["v"]) | b.WithKeys("k") | b.Map(_swap),
    "filter_builtin_ok": lambda b, p: p | b.Create(["a"]) | b.Filter(bool) | b.Map(_identity_int),
    "expand_annotations_ok": lambda b, p: p | b.Create([1]) | _transforms(b)["IntToStr"]() | b.Map(len),
    "expand_annotations_input_bad": lambda b, p: p | b.Create(["a"]) | _transforms(b)["IntToStr"](),
    "expand_annotations_output_bad": lambda b, p: (
        p | b.Create([1]) | _transforms(b)["IntToStr"]() | b.Map(_identity_int)
    ),
    "expand_bare_pcollection_ok": lambda b, p: (
        p | b.Create([1]) | _transforms(b)["Unannotated"]() | b.Map(_identity_int)
    ),
    "decorated_transform_binds_bad": lambda b, p: (
        p
        | b.Create(["a"])
        | _transforms(b)["WithLength"]()
        | b.Map(lambda x: x).with_input_types(tuple[int, int])
    ),
    "decorated_transform_binds_ok": lambda b, p: (
        p
        | b.Create(["a"])
        | _transforms(b)["WithLength"]()
        | b.Map(lambda x: x).with_input_types(tuple[int, str])
    ),
    "filter_keeps_type_bad": lambda b, p: (
        p | b.Create(["a"]) | b.Filter(lambda x: True) | b.Map(_identity_int)
    ),
}


def _outcome(engine_name: str, case: str, flags: list[str]) -> str:
    return construction_outcome(engine_name, PIPELINES[case], flags)[0]


@pytest.mark.parametrize("case", sorted(PIPELINES))
def test_construction_check_matches_beam(case: str) -> None:
    ours, beams = _outcome("millstream", case, []), _outcome("beam", case, [])
    assert ours == beams
    assert ours == ("refused" if case.endswith("_bad") else "accepted")  # the cases say what Beam does


@pytest.mark.parametrize("case", sorted(c for c in PIPELINES if c.endswith("_bad")))
def test_no_pipeline_type_check_turns_it_off(case: str) -> None:
    assert _outcome("millstream", case, ["--no_pipeline_type_check"]) == "accepted"


def test_the_error_names_both_transforms_as_beam_does() -> None:
    p = beam.Pipeline()
    with pytest.raises(TypeCheckError) as ours:
        PIPELINES["map_annotations_bad"](beam, p)
    assert str(ours.value) == (
        "The transform 'Again' requires PCollections of type '<class 'int'>' but was applied to a PCollection "
        "of type '<class 'str'>' (produced by the transform 'Map(_to_str)')."
    )


def test_with_keys_output_is_a_pair_type() -> None:
    """Code such as Beam's ordered_window_elements asks whether a PCollection holds pairs."""
    from millstream.typehints.typehints import TupleConstraint

    p = beam.Pipeline()
    assert isinstance((p | beam.Create([1]) | beam.WithKeys("k")).element_type, TupleConstraint)


def test_beams_type_variable_binds_like_beams() -> None:
    """``typehints.TypeVariable`` declared in and out: the output gets the input's type, on both engines."""
    for name in ("millstream", "beam"):
        b = engine(name)
        tv = b.typehints.TypeVariable("T")
        p = b.Pipeline()
        ident = b.Map(lambda x: x).with_input_types(tv).with_output_types(tv)
        out = p | b.Create(["a"]) | ident
        with pytest.raises(Exception, match="requires PCollections of type"):
            _ = out | b.Map(_identity_int)


def test_type_variables_bind_to_the_input_type() -> None:
    assert bind_type_variables(T, int, list[T]) == list[int]
    assert bind_type_variables(tuple[K, V], tuple[str, int], tuple[V, K]) == tuple[int, str]
    p = beam.Pipeline()
    swapped = (
        p
        | beam.Create([("a", 1)])
        | beam.Map(lambda kv: (kv[1], kv[0])).with_input_types(tuple[K, V]).with_output_types(tuple[V, K])
    )
    assert swapped.element_type == typing.Tuple[int, str]  # noqa: UP006 - Beam's spelling of the hint
    with pytest.raises(TypeCheckError):
        _ = swapped | beam.Map(_swap)


def test_element_types_are_spelled_as_beams_hints() -> None:
    """A bound builtin generic hint reads back equal to the `typehints` name (Beam's snippets compare them)."""
    for name in ("millstream", "beam"):
        b = engine(name)
        p = b.Pipeline()
        out = p | b.Create(["a"]) | _transforms(b)["WithLength"]()
        assert out.element_type == b.typehints.Tuple[int, str]
        listed = p | "L" >> b.Create([1]) | b.Map(lambda x: [x]).with_output_types(list[int])
        assert listed.element_type == b.typehints.List[int]
        either = p | "E" >> b.Create([1]) | b.Map(lambda x: x).with_output_types(int | str)
        assert either.element_type == b.typehints.Union[int, str]


HINTS: list[Any] = [
    int,
    float,
    str,
    bytes,
    bool,
    type(None),
    Any,
    typing.Optional[int],  # noqa: UP045 - the typing spelling is what is tested
    typing.Union[int, str],
    tuple[int, str],
    tuple[str, int],
    tuple[int, ...],
    list[int],
    list[str],
    typing.Iterable[int],
    typing.Iterable[str],
    dict[str, int],
    dict[str, str],
    set[int],
    list,
    tuple,
]


def test_consistency_agrees_with_beam_on_common_hints() -> None:
    engine("beam")
    from apache_beam.typehints import native_type_compatibility as native
    from apache_beam.typehints import typehints as beam_hints

    disagree = [
        (sub, base)
        for sub in HINTS
        for base in HINTS
        if is_consistent_with(sub, base)
        != beam_hints.is_consistent_with(native.convert_to_beam_type(sub), native.convert_to_beam_type(base))
    ]
    assert disagree == []


def _combine_counts(results: Iterable[tuple[int, int]]) -> tuple[int, int]:
    return (sum(r[0] for r in results), sum(r[1] for r in results))


def test_a_combine_functions_iterable_hint_is_not_an_element_hint() -> None:
    """Beam's estimate_pi: CombineGlobally of a function hinted ``Iterable[Tuple[...]]`` over tuples."""
    for name in ("millstream", "beam"):
        b = engine(name)
        fn = b.typehints.with_input_types(Iterable[tuple[int, int]])(_combine_counts)
        p = b.Pipeline()
        _ = p | b.Create([(1, 2)]) | b.CombineGlobally(fn)  # accepted by both
