"""Output types inferred from unannotated callables (Beam's ``trivial_inference``), and the construction-time
checks Beam makes with them: our inferred type of each callable below equals what the installed apache-beam
wheel infers, or is Any (never narrower: a narrower type could refuse a pipeline Beam accepts), and the same
pipelines are refused or accepted by both engines.

The callables are defined at module level on purpose: inference reads their source, as Beam reads bytecode.
"""

import importlib.util
import os
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model import inference
from millstream.engine.model.inference import infer_return_type
from millstream.engine.model.typecheck import normalize
from millstream.typehints import TypeCheckError

from support.beam_harness import construction_outcome, engine


def _annotated(x: int) -> str:
    return str(x)


def _plus_one(x):  # type: ignore[no-untyped-def]
    return x + 1


def _words(line):  # type: ignore[no-untyped-def]
    for w in line.split():  # noqa: UP028 - a loop of yields is what is inferred here
        yield w


def _mixed(x):  # type: ignore[no-untyped-def]
    yield x
    yield 1


def _pair(k, v):  # type: ignore[no-untyped-def]
    return (v, k)


def _branches(x):  # type: ignore[no-untyped-def]
    if x:
        return "yes"
    return 0


def _loop_total(xs):  # type: ignore[no-untyped-def]
    total = 0
    for v in xs:
        total = total + v
    return total


def _unpacking(kv):  # type: ignore[no-untyped-def]
    k, v = kv
    return v, k


def _no_return(x):  # type: ignore[no-untyped-def]
    print(x)


def _endless(x):  # type: ignore[no-untyped-def]
    while True:
        return x


def _dead_branch(x):  # type: ignore[no-untyped-def]
    if False:
        return "never"
    return x


def _with_default(x, y=1):  # type: ignore[no-untyped-def]
    return x + y


def _closure_caller() -> Callable[[Any], Any]:
    fn = _plus_one
    return lambda x: fn(x)


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def doubled(self):  # type: ignore[no-untyped-def]
        return 2.0


def _tv(x):  # type: ignore[no-untyped-def]
    return beam.window.TimestampedValue(x, 1)


#: name -> (callable, the input's element type)
CALLABLES: dict[str, tuple[Callable[..., Any], Any]] = {
    "constant": (lambda x: 1, str),
    "none": (lambda x: None, int),
    "identity": (lambda x: x, int),
    "tuple": (lambda x: (x, 1), str),
    "list": (lambda x: [x, 1], str),
    "empty_list": (lambda x: [], str),
    "dict": (lambda x: {x: 1}, str),
    "dict_mixed": (lambda x: {"a": x, "b": "s"}, int),
    "set": (lambda x: {x}, str),
    "dicts_of_two_kinds": (lambda x: {x: 1} if x else {"a": 2.0}, int),
    "index_0": (lambda kv: kv[0], tuple[str, int]),
    "index_1": (lambda kv: kv[1], tuple[str, int]),
    "index_list": (lambda x: x[0], list[int]),
    "index_str": (lambda x: x[0], str),
    "index_dict": (lambda x: x["a"], dict[str, int]),
    "slice_str": (lambda x: x[1:], str),
    "slice_tuple": (lambda x: x[1:], tuple[int, str]),
    "arith": (lambda x: x * 2 + 1, int),
    "true_div": (lambda x: x / 2, int),
    "floor_div": (lambda x: x // 2, int),
    "promoted": (lambda x: x + 1.5, int),
    "modulo": (lambda x: x % 3, int),
    "negated": (lambda x: -x, float),
    "str_repeat": (lambda x: x * 3, str),
    "str_concat": (lambda x: x + "a", str),
    "split": (lambda x: x.split(), str),
    "upper": (lambda x: x.upper(), str),
    "strip": (lambda x: x.strip(), str),
    "join": (lambda x: ",".join(x), list[str]),
    "f_string": (lambda x: f"{x}!", int),
    "len": (lambda x: len(x), str),
    "hash": (lambda x: hash(x), str),
    "int": (lambda x: int(x), str),
    "float": (lambda x: float(x), str),
    "str": (lambda x: str(x), int),
    "bool": (lambda x: bool(x), int),
    "abs": (lambda x: abs(x), int),
    "sum": (lambda x: sum(x), list[int]),
    "min": (lambda x: min(x), list[int]),
    "max_two": (lambda x: max(x, 3), int),
    "sorted": (lambda x: sorted(x), list[int]),
    "list_of": (lambda x: list(x), str),
    "tuple_of": (lambda x: tuple(x), str),
    "dict_of": (lambda x: dict(x), str),
    "set_of": (lambda x: set(x), str),
    "compare": (lambda x: x > 1, int),
    "not": (lambda x: not x, int),
    "and": (lambda x: x and 1, str),
    "or": (lambda x: x or 1, str),
    "conditional": (lambda x: x if x else "a", int),
    "timestamped": (lambda x: beam.window.TimestampedValue(x, 1), int),
    "annotated_call": (lambda x: _annotated(x), int),
    "body_call": (lambda x: _plus_one(x), int),
    "two_argument_call": (lambda x: _pair(x, 1), str),
    "lambda_call": (lambda x: (lambda y: y)(x), int),
    "list_comprehension": (lambda x: [c for c in x], str),
    "list_comprehension_typed": (lambda x: [c * 2 for c in x], list[int]),
    "generator_expression": (lambda x: (c for c in x), str),
    "walrus": (lambda x: [y := x, y], int),
    "range": (lambda x: range(x), int),
    "class": (lambda x: _Point(x), int),
    "method_of_user_class": (lambda p: p.doubled(), _Point),
    "generator": (_words, str),
    "generator_mixed": (_mixed, str),
    "branches": (_branches, int),
    "loop": (_loop_total, list[int]),
    "unpacking": (_unpacking, tuple[str, int]),
    "no_return": (_no_return, int),
    "timestamped_fn": (_tv, int),
    "first_field": (lambda line: line.split(",")[0], str),
    "key_and_count": (lambda kv: (kv[0], len(kv[1])), tuple[str, typing.Iterable[int]]),
    "key_and_sum": (lambda kv: (kv[0], sum(kv[1])), tuple[str, typing.Iterable[int]]),
    "record": (lambda x: {"word": x, "count": 1}, str),
    "encode": (lambda x: x.encode("utf-8"), str),
    "with_none": (lambda x: (x, None), int),
    "repeated_list": (lambda x: [x] * 3, int),
    "tuple_concat": (lambda x: (x,) + (1,), str),
    "is_none": (lambda x: x is None, int),
    "membership": (lambda x: x in {1, 2}, int),
    "round_to": (lambda x: round(x, 2), float),
    "reversed_str": (lambda x: x[::-1], str),
    "last_part": (lambda kv: kv[-1], tuple[str, int]),
    "default_argument": (_with_default, int),
    "closure_function": (_closure_caller(), int),
    "endless_loop": (_endless, int),
    "dead_branch": (_dead_branch, int),
}


def _beams_inference(fn: Callable[..., Any], input_type: Any) -> Any:
    engine("beam")
    from apache_beam.typehints import native_type_compatibility as native
    from apache_beam.typehints import trivial_inference

    inferred = trivial_inference.infer_return_type(fn, [native.convert_to_beam_type(input_type)])
    return normalize(native.convert_to_python_type(inferred))


@pytest.mark.parametrize("case", sorted(CALLABLES))
def test_inferred_type_equals_beams_or_is_any(case: str) -> None:
    fn, input_type = CALLABLES[case]
    ours = infer_return_type(fn, [normalize(input_type)])
    beams = _beams_inference(fn, input_type)
    assert ours == beams or ours is Any, f"ours {ours!r}, Beam's {beams!r}"


def test_inference_agrees_exactly() -> None:
    """The comparison above would pass if everything were Any: here every case must agree exactly, and most
    of them are types Beam infers (not Any)."""
    disagree = {}
    for case, (fn, input_type) in CALLABLES.items():
        ours, beams = infer_return_type(fn, [normalize(input_type)]), _beams_inference(fn, input_type)
        if ours != beams:
            disagree[case] = (ours, beams)
    assert disagree == {}
    assert sum(_beams_inference(*CALLABLES[c]) is not Any for c in CALLABLES) >= 60


def test_the_documented_examples() -> None:
    assert infer_return_type(lambda x: (x, 1), [str]) == typing.Tuple[str, int]  # noqa: UP006
    assert infer_return_type(lambda line: len(line.split()), [str]) is int
    assert inference.element_type(typing.List[int]) is int  # noqa: UP006
    assert inference.element_type(str) is Any
    assert inference.key_value_types(typing.Tuple[str, int]) == (str, int)  # noqa: UP006


def test_lambdas_on_one_line_are_told_apart() -> None:
    """Both lambdas start on the same line with the same argument: the code's columns pick the right one."""
    to_str, to_len = (lambda x: str(x)), (lambda x: len(x))
    assert infer_return_type(to_str, [int]) is str
    assert infer_return_type(to_len, [str]) is int


def test_a_lambda_inside_a_lambda_is_told_apart() -> None:
    """Same line, same argument name: the inner lambda is the innermost node holding its code."""
    outer = lambda x: lambda x: len(x)  # noqa: E731 - the nesting is what is tested
    assert infer_return_type(outer("a"), [str]) is int
    assert infer_return_type(outer, [str]) is types.FunctionType  # as Beam: a function value


def test_a_callable_without_source_is_any() -> None:
    namespace: dict[str, Any] = {}
    exec("f = lambda x: (x, 1)", namespace)  # no file to read the source from
    assert infer_return_type(namespace["f"], [str]) is Any
    assert infer_return_type(print, [str]) is Any
    assert infer_return_type(types.SimpleNamespace(), [str]) is Any  # not callable at all: Any, no error


def test_the_syntax_tree_is_found_once_per_code_object() -> None:
    fn = CALLABLES["tuple"][0]
    node = inference._function_node(fn.__code__)
    assert node is not None and (fn.__code__.co_filename, fn.__code__) in inference._NODES
    assert inference._function_node(fn.__code__) is node


class _Watched:
    reads = 0

    @property
    def value(self) -> int:
        _Watched.reads += 1
        return 1


def test_a_property_is_not_read_while_inferring() -> None:
    """Reading it would run user code at construction (Beam does; we give Any instead)."""
    watched = _Watched()
    assert infer_return_type(lambda x: watched.value, [int]) is Any
    assert _Watched.reads == 0


def test_recursion_is_bounded() -> None:
    def down(x):  # type: ignore[no-untyped-def]
        return down(x)

    assert infer_return_type(down, [int]) is Any


def _edit(path: Any, text: str) -> None:
    """Rewrite a module's file as an editor would, its mtime moved on so that neither `linecache` nor the
    bytecode cache (both keyed by size and mtime, the bytecode's by the second) can take it for the old one."""
    before = path.stat().st_mtime
    path.write_text(text)
    os.utime(path, (before + 10, before + 10))


def _import_from(path: Any) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_edited_and_reloaded_module_is_inferred_from_its_new_source(tmp_path: Any) -> None:
    """Finding 1 of review 2: the old text (same number of lines) was read for the new code, and a pipeline
    Beam accepts was refused."""
    namespace: dict[str, Any] = {}
    exec("f = lambda x: (x, 1)\n", namespace)  # the new code's equal, but without a file: no source
    assert infer_return_type(namespace["f"], [int]) is Any
    path = tmp_path / "edited_fns.py"
    path.write_text("f = lambda x: str(x)\n")
    module = _import_from(path)
    assert infer_return_type(module.f, [int]) is str
    _edit(path, "f = lambda x: (x, 1)\n")  # the same length and number of lines
    module = _import_from(path)  # what importlib.reload and %autoreload do
    assert infer_return_type(module.f, [int]) == typing.Tuple[int, int]  # noqa: UP006
    _ = beam.Pipeline() | beam.Create([1]) | beam.Map(module.f) | beam.GroupByKey()  # Beam accepts it too


def test_code_whose_file_was_replaced_under_it_is_any(tmp_path: Any) -> None:
    """A long-running process that imported a module before a deploy replaced its file: the new text is not
    the code's source, so nothing is inferred from it (Beam reads the bytecode and accepts the pipeline)."""
    path = tmp_path / "deployed_fns.py"
    path.write_text("f = lambda x: (x, 1)\n")
    module = _import_from(path)
    _edit(path, "f = lambda x: str(x)\n")
    assert infer_return_type(module.f, [int]) is Any
    _ = beam.Pipeline() | beam.Create([1]) | beam.Map(module.f) | beam.GroupByKey()


Build = Callable[[types.ModuleType, Any], Any]


def _identity_int(x: int) -> int:
    return x


def _identity_str(x: str) -> str:
    return x


def _dofns(b: types.ModuleType) -> dict[str, Any]:
    class Lengths(b.DoFn):
        def process(self, element):  # type: ignore[no-untyped-def]
            yield len(element)

    class Splits(b.DoFn):
        def process(self, element):  # type: ignore[no-untyped-def]
            return element.split()

    return {"Lengths": Lengths(), "Splits": Splits()}


def _stamper(b: types.ModuleType) -> Callable[[int], Any]:
    def stamp(t: int) -> b.window.TimestampedValue:  # type: ignore[name-defined]
        return b.window.TimestampedValue(("a", t), t)

    return stamp


def _sum_ints(b: types.ModuleType) -> Any:
    @b.typehints.with_input_types(int)
    @b.typehints.with_output_types(int)
    class SumInts(b.CombineFn):
        def create_accumulator(self):  # type: ignore[no-untyped-def]
            return 0

        def add_input(self, acc, x):  # type: ignore[no-untyped-def]
            return acc + x

        def merge_accumulators(self, accs):  # type: ignore[no-untyped-def]
            return sum(accs)

        def extract_output(self, acc):  # type: ignore[no-untyped-def]
            return acc

    return SumInts()


def _first_of_ints(x: list[int]) -> int:
    return x[0]


#: Pipelines whose checks need inferred types; `_bad` ones are refused by Beam at construction.
PIPELINES: dict[str, Build] = {
    "map_len_bad": lambda b, p: p | b.Create(["a"]) | b.Map(lambda x: len(x)) | b.Map(_identity_str),
    "map_len_ok": lambda b, p: p | b.Create(["a"]) | b.Map(lambda x: len(x)) | b.Map(_identity_int),
    "map_str_method_ok": lambda b, p: p | b.Create(["a"]) | b.Map(lambda x: x.upper()) | b.Map(_identity_int),
    "map_concat_bad": lambda b, p: p | b.Create(["a"]) | b.Map(lambda x: x + "!") | b.Map(_identity_int),
    "map_pair_to_combine_ok": lambda b, p: (
        p | b.Create(["a"]) | "Pair" >> b.Map(lambda x: (x, 1)) | b.CombinePerKey(sum) | b.Map(lambda kv: kv)
    ),
    "map_int_to_combine_bad": lambda b, p: (
        p | b.Create(["a"]) | b.Map(lambda x: len(x)) | b.CombinePerKey(sum)
    ),
    "map_int_to_group_bad": lambda b, p: p | b.Create(["a"]) | b.Map(lambda x: len(x)) | b.GroupByKey(),
    "list_pairs_to_group_bad": lambda b, p: p | b.Create([["a", 1]]) | b.GroupByKey(),
    "dict_to_group_bad": lambda b, p: p | b.Create([{"a": 1}]) | b.GroupByKey(),
    "pairs_and_int_to_group_bad": lambda b, p: p | b.Create([("a", 1), 3]) | b.GroupByKey(),
    "pairs_of_two_kinds_to_group_ok": lambda b, p: p | b.Create([("a", 1), ("b", "x")]) | b.GroupByKey(),
    "none_key_to_group_ok": lambda b, p: p | b.Create([(None, 1)]) | b.GroupByKey(),
    "group_output_bad": lambda b, p: (
        p | b.Create(["a"]) | b.Map(lambda x: (x, 1)) | b.GroupByKey() | b.Map(_identity_int)
    ),
    "combine_output_bad": lambda b, p: p | b.Create([("a", 1)]) | b.CombinePerKey(sum) | b.Map(_identity_int),
    "map_index_bad": lambda b, p: p | b.Create([("a", 1)]) | b.Map(lambda kv: kv[0]) | b.Map(_identity_int),
    "map_index_ok": lambda b, p: p | b.Create([("a", 1)]) | b.Map(lambda kv: kv[1]) | b.Map(_identity_int),
    "maptuple_bad": lambda b, p: p | b.Create([("a", 1)]) | b.MapTuple(lambda k, v: k) | b.Map(_identity_int),
    "maptuple_ok": lambda b, p: p | b.Create([("a", 1)]) | b.MapTuple(lambda k, v: v) | b.Map(_identity_int),
    "flatmaptuple_ok": lambda b, p: (
        p | b.Create([("a", 1)]) | b.FlatMapTuple(lambda k, v: [k]) | b.Map(_identity_int)
    ),
    "flatmap_list_bad": lambda b, p: p | b.Create([1]) | b.FlatMap(lambda x: [str(x)]) | b.Map(_identity_int),
    "flatmap_generator_bad": lambda b, p: p | b.Create(["a"]) | b.FlatMap(_mixed) | b.Map(_identity_int),
    "flatmap_split_ok": lambda b, p: (
        p | b.Create(["a b"]) | b.FlatMap(lambda x: x.split()) | b.Map(_identity_int)
    ),
    "flatmap_str_ok": lambda b, p: p | b.Create([1]) | b.FlatMap(lambda x: str(x)) | b.Map(_identity_int),
    "filter_after_map_bad": lambda b, p: (
        p | b.Create(["a"]) | b.Map(lambda x: len(x)) | b.Filter(lambda n: n > 0) | b.Map(_identity_str)
    ),
    "dofn_yield_bad": lambda b, p: p | b.Create(["a"]) | b.ParDo(_dofns(b)["Lengths"]) | b.Map(_identity_str),
    "dofn_method_ok": lambda b, p: p | b.Create(["a"]) | b.ParDo(_dofns(b)["Splits"]) | b.Map(_identity_int),
    "timestamped_ok": lambda b, p: (
        p | b.Create([1]) | b.Map(lambda x: b.window.TimestampedValue(x, 1)) | b.Map(_identity_str)
    ),
    "conditional_bad": lambda b, p: (
        p | b.Create([1]) | b.Map(lambda x: x if x else "a") | b.Map(_identity_int)
    ),
    "map_with_argument_ok": lambda b, p: (
        p | b.Create([1]) | b.Map(lambda x, y: str(x), 2) | b.Map(_identity_int)
    ),
    "timestamped_annotation_then_group_ok": lambda b, p: (
        p | b.Create([1]) | b.Map(_stamper(b)) | b.WindowInto(b.window.FixedWindows(5)) | b.GroupByKey()
    ),
    "combine_values_bad": lambda b, p: p | b.Create([("a", ["x"])]) | b.CombineValues(_sum_ints(b)),
    "combine_values_ok": lambda b, p: (
        p
        | b.Create([("a", [1])])
        | b.CombineValues(_sum_ints(b))
        | b.Map(lambda kv: kv[1])
        | b.Map(_identity_int)
    ),
    "combine_values_output_bad": lambda b, p: (
        p
        | b.Create([("a", [1])])
        | b.CombineValues(_sum_ints(b))
        | b.Map(lambda kv: kv[1])
        | b.Map(_identity_str)
    ),
    "combine_globally_input_bad": lambda b, p: p | b.Create(["a"]) | b.CombineGlobally(_sum_ints(b)),
    "combine_globally_output_bad": lambda b, p: (
        p | b.Create([1]) | b.CombineGlobally(_sum_ints(b)) | b.Map(_identity_str)
    ),
    "combine_globally_sum_ok": lambda b, p: p | b.Create([1]) | b.CombineGlobally(sum) | b.Map(_identity_str),
    "combine_globally_declared_bad": lambda b, p: (
        p | b.Create([1]) | b.CombineGlobally(sum).with_input_types(str)
    ),
    "create_list_bad": lambda b, p: p | b.Create([["a"]]) | b.Map(_first_of_ints),
    "create_list_ok": lambda b, p: p | b.Create([[1]]) | b.Map(_first_of_ints),
    "nested_call_bad": lambda b, p: p | b.Create([1]) | b.Map(lambda x: _plus_one(x)) | b.Map(_identity_str),
}


#: Cases whose refused step is named otherwise here: CombineValues' inner ParDo is "ParDo(CombineValuesDoFn)"
#: on Beam and "<the CombineValues>/Combine" here (millstream's step name, unchanged).
OTHER_STEP_NAMES = {"combine_values_bad"}


def _outcome(engine_name: str, case: str) -> tuple[str, str]:
    return construction_outcome(engine_name, PIPELINES[case])


@pytest.mark.parametrize("case", sorted(PIPELINES))
def test_construction_check_with_inferred_types_matches_beam(case: str) -> None:
    (ours, our_message), (beams, beams_message) = _outcome("millstream", case), _outcome("beam", case)
    assert ours == beams, beams_message or our_message
    assert ours == ("refused" if case.endswith("_bad") else "accepted")  # the cases say what Beam does
    # the same sentence, naming the same transforms (hints are spelled as typing does, Beam's its own way)
    shape = beams_message.split(" requires PCollections")[0].split(": expected")[0]
    if case in OTHER_STEP_NAMES:
        shape = shape.split("'")[0]
    assert our_message.startswith(shape)
    if "(produced by" in beams_message:
        assert (
            our_message.rsplit("(produced by", 1)[-1] == beams_message.strip().rsplit("(produced by", 1)[-1]
        )


def test_a_lambda_without_source_is_not_checked_where_beam_reads_its_bytecode() -> None:
    """The one way we check less than Beam: a callable whose source cannot be read (built by `eval`/`exec` or
    in a REPL) is Any here, so the pipeline is accepted; Beam reads the bytecode and refuses it."""

    def build(b: types.ModuleType) -> None:
        _ = b.Pipeline() | b.Create([1]) | b.Map(eval("lambda x: str(x)")) | b.Map(_identity_int)

    build(beam)  # accepted
    with pytest.raises(Exception, match="requires PCollections of type") as caught:
        build(engine("beam"))
    assert type(caught.value).__name__ == "TypeCheckError"


def test_the_error_names_both_transforms_and_the_inferred_type() -> None:
    p = beam.Pipeline()
    with pytest.raises(TypeCheckError) as caught:
        _ = p | beam.Create(["a"]) | "Len" >> beam.Map(lambda x: len(x)) | "Words" >> beam.Map(_identity_str)
    assert str(caught.value) == (
        "The transform 'Words' requires PCollections of type '<class 'str'>' but was applied to a PCollection "
        "of type '<class 'int'>' (produced by the transform 'Len')."
    )


def test_a_group_by_keys_error_is_beams() -> None:
    p = beam.Pipeline()
    with pytest.raises(TypeCheckError) as caught:
        _ = p | beam.Create(["a"]) | beam.Map(lambda x: len(x)) | "Group" >> beam.GroupByKey()
    assert str(caught.value) == (
        "Input type hint violation at Group: expected Tuple[TypeVariable[K], TypeVariable[V]], got <class 'int'>"
    )


#: Transforms whose output element type both engines infer, applied to Create([("a", 1)]).
OUTPUTS: dict[str, Build] = {
    "map": lambda b, pc: pc | b.Map(lambda kv: (kv[1], kv[0])),
    "maptuple": lambda b, pc: pc | b.MapTuple(lambda k, v: (v, k)),
    "flatmap": lambda b, pc: pc | b.FlatMap(lambda kv: kv),
    "filter": lambda b, pc: pc | b.Filter(lambda kv: True),
    "group": lambda b, pc: pc | b.GroupByKey(),
    "combine": lambda b, pc: pc | b.CombinePerKey(sum),
    "map_len": lambda b, pc: pc | b.Map(len),
}


@pytest.mark.parametrize("case", sorted(OUTPUTS))
def test_output_element_types_equal_beams(case: str) -> None:
    engine("beam")
    from apache_beam.typehints import native_type_compatibility as native

    types_ = {}
    for name in ("millstream", "beam"):
        b = engine(name)
        out = OUTPUTS[case](b, b.Pipeline() | b.Create([("a", 1)]))
        t = out.element_type
        types_[name] = normalize(native.convert_to_python_type(t)) if name == "beam" else t
    assert types_["millstream"] == types_["beam"]
    assert types_["millstream"] is not None


#: Run by other Python versions: the inference reads source, so its results must not depend on the
#: interpreter's bytecode (Beam's do). Each line: a callable, its input type, and the type inferred.
_PROBE = """
import importlib.util, sys, typing
spec = importlib.util.spec_from_file_location("inference", sys.argv[1])
inference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(inference)


def words(line):
    for w in line.split():
        yield w, 1


def branches(x):
    if x:
        return "yes"
    return 0


cases = [
    (lambda x: (x, 1), str),
    (lambda kv: kv[-1], typing.Tuple[str, int]),
    (lambda x: x / 2 if x else len(str(x)), int),
    (lambda x: [c for c in x], typing.List[int]),
    (lambda x: {x: f"{x}"}, int),
    (lambda x: not x or x > 1, int),
    (lambda x: (lambda y: y * 2.0)(x), int),
    (words, str),
    (branches, int),
]
for fn, t in cases:
    print(repr(inference.infer_return_type(fn, [t])))
"""

_PROBE_EXPECTED = [
    "typing.Tuple[str, int]",
    "<class 'int'>",
    "typing.Union[float, int]",
    "typing.List[int]",
    "typing.Dict[int, str]",
    "<class 'bool'>",
    "<class 'float'>",
    "typing.Iterable[typing.Tuple[typing.Any, int]]",  # a str's split() is Any, as in Beam
    "typing.Union[str, int]",
]


def _pythons() -> list[str]:
    """This interpreter, and the other CPythons (3.9+) pyenv installed on this machine, if any."""
    import glob
    import re
    import sys

    found = glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*"))
    minors = {p: re.fullmatch(r".*/python3\.(\d+)", p) for p in found}
    others = sorted(
        p for p, m in minors.items() if m and int(m[1]) >= 9 and int(m[1]) != sys.version_info.minor
    )
    return [sys.executable, *others]


@pytest.mark.parametrize("python", _pythons())
def test_inference_is_the_same_on_every_python(python: str, tmp_path: Any) -> None:
    import subprocess

    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    run = subprocess.run(
        [python, str(probe), inference.__file__], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == _PROBE_EXPECTED
