"""Beam's ``--runtime_type_check``: the same pipelines run on millstream and on Beam's DirectRunner fail alike,
with Beam's `TypeCheckError` message naming the step and the element; without the option nothing is checked
(and nothing is installed); `is_instance` agrees with Beam's ``check_constraint``.

No ``from __future__ import annotations`` here: the DoFn below is typed by real annotations, as Beam reads them.
"""

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model.typecheck import is_instance
from millstream.engine.runtime.graph.planner import plan_pipeline
from millstream.options.pipeline_options import PipelineOptions

from support.beam_harness import engine, options_module


def _ident(elem: Any) -> Any:
    return elem


def _typed_dofn(b: types.ModuleType) -> Any:
    class Stringify(b.DoFn):
        def process(self, element: int) -> Iterable[int]:
            yield str(element)

    return Stringify()


Build = Callable[[types.ModuleType, Any], Any]

#: name -> (pipeline, Beam's message about the element; the step is named before it, as
#: "Runtime type violation detected within ParDo(Bad): ", except by Beam for a DoFn's generator output)
FAILING: dict[str, tuple[Build, str]] = {
    "map_output": (
        lambda b, p: p | b.Create(["a"]) | "Bad" >> b.Map(lambda x: 3).with_output_types(str),
        "According to type-hint expected output should be of type <class 'str'>. "
        "Instead, received '3', an instance of type <class 'int'>.",
    ),
    "map_input": (
        lambda b, p: (
            p
            | b.Create([1])
            | "Id" >> b.Map(_ident).with_output_types(b.typehints.Any)
            | "Bad" >> b.Map(lambda elem: elem).with_input_types(str)
        ),
        "Type-hint for argument: 'elem' violated. Expected an instance of <class 'str'>, "
        "instead found 1, an instance of <class 'int'>.",
    ),
    "flatmap_second_output": (
        lambda b, p: p | b.Create(["a"]) | "Bad" >> b.FlatMap(lambda x: [1, "b"]).with_output_types(int),
        "According to type-hint expected output should be of type <class 'int'>. "
        "Instead, received 'b', an instance of type <class 'str'>.",
    ),
    "dofn_annotations": (
        lambda b, p: p | b.Create([7]) | "Bad" >> b.ParDo(_typed_dofn(b)),
        "According to type-hint expected output should be of type <class 'int'>. "
        "Instead, received '7', an instance of type <class 'str'>.",
    ),
}


def _combine_fns(b: types.ModuleType) -> dict[str, Any]:
    """CombineFns typed by Beam's decorators: one whose result matches its output type and one whose does not."""

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

    @b.typehints.with_input_types(int)
    @b.typehints.with_output_types(str)
    class WrongOutput(SumInts):
        pass

    return {"SumInts": SumInts(), "WrongOutput": WrongOutput()}


def _stringified_values(b: types.ModuleType, p: Any) -> Any:
    """("a", "1"): a str value where the combines below take ints (typed Any, so construction accepts it)."""
    return (
        p
        | b.Create([("a", 1)])
        | "Str" >> b.Map(lambda kv: (kv[0], str(kv[1]))).with_output_types(typing.Tuple[str, Any])  # noqa: UP006
    )


#: name -> (pipeline, Beam's message after "Runtime type violation detected within <step>: ", the step)
COMBINE_FAILING: dict[str, tuple[Build, str, str]] = {
    "combine_per_key_input": (
        lambda b, p: _stringified_values(b, p) | "Bad" >> b.CombinePerKey(_combine_fns(b)["SumInts"]),
        "Type-hint for argument: 'element' violated. Expected an instance of <class 'int'>, "
        "instead found 1, an instance of <class 'str'>.",
        "Bad",
    ),
    "combine_per_key_output": (
        lambda b, p: p | b.Create([("a", 1)]) | "Bad" >> b.CombinePerKey(_combine_fns(b)["WrongOutput"]),
        "Type-hint for return type violated. Expected an instance of <class 'str'>, "
        "instead found 1, an instance of <class 'int'>.",
        "Bad",
    ),
    "combine_per_key_with_input_types": (
        lambda b, p: (
            _stringified_values(b, p)
            | "Bad" >> b.CombinePerKey(lambda vs: 0).with_input_types(typing.Tuple[str, int])  # noqa: UP006
        ),
        "Type-hint for argument: 'element' violated. Expected an instance of <class 'int'>, "
        "instead found 1, an instance of <class 'str'>.",
        "Bad",
    ),
    "combine_globally_input": (
        lambda b, p: (
            p
            | b.Create([1])
            | "Str" >> b.Map(lambda x: str(x)).with_output_types(Any)
            | "Bad" >> b.CombineGlobally(_combine_fns(b)["SumInts"])
        ),
        "Type-hint for argument: 'element' violated. Expected an instance of <class 'int'>, "
        "instead found 1, an instance of <class 'str'>.",
        "Bad/CombinePerKey",
    ),
}


@pytest.mark.parametrize("case", sorted(COMBINE_FAILING))
def test_a_combines_violation_fails_the_run_as_in_beam(case: str) -> None:
    """Beam wraps a CombinePerKey's CombineFn in its TypeCheckCombineFn; so do we, with its message."""
    build, detail, step = COMBINE_FAILING[case]
    expected = f"Runtime type violation detected within {step}: {detail}"
    for name in ("beam", "millstream"):
        with pytest.raises(Exception) as caught:
            _run(name, build, ["--runtime_type_check"])
        assert type(caught.value).__name__ == "TypeCheckError", name
        assert expected in str(caught.value), name
    assert caught.value.millstream_step == step  # type: ignore[attr-defined]


def test_combine_values_checks_its_pairs_as_beams_pardo_does() -> None:
    """Beam's CombineValues is a ParDo declaring ``Tuple[K, Iterable[I]]`` from its CombineFn's input type; its
    elements are checked as any ParDo's (Beam details a composite hint's violation in other words)."""

    def build(b: types.ModuleType, p: Any) -> Any:
        return (
            p
            | b.Create([("a", [1])])
            | "Str" >> b.Map(lambda kv: (kv[0], ["x"])).with_output_types(typing.Tuple[str, Any])  # noqa: UP006
            | "Bad" >> b.CombineValues(_combine_fns(b)["SumInts"])
        )

    messages = {}
    for name in ("beam", "millstream"):
        with pytest.raises(Exception) as caught:
            _run(name, build, ["--runtime_type_check"])
        assert type(caught.value).__name__ == "TypeCheckError", name
        messages[name] = str(caught.value)
    assert messages["beam"].startswith(
        "Runtime type violation detected within ParDo(Bad/ParDo(CombineValuesDoFn)): "
        "Type-hint for argument: 'element' violated"
    )
    assert messages["millstream"].startswith(
        "Runtime type violation detected within ParDo(Bad/Combine): Type-hint for argument: 'element' violated. "
        "Expected an instance of typing.Tuple[~K, typing.Iterable[int]], instead found ('a', ['x'])"
    )


@pytest.mark.parametrize("case", sorted(COMBINE_FAILING))
def test_without_the_option_no_combine_is_checked(case: str) -> None:
    """Unchecked, a value of the wrong type reaches the CombineFn itself: the run completes (a wrong output) or
    fails with the CombineFn's own error (adding a str to an int), never with a type check's."""
    build, _, _ = COMBINE_FAILING[case]
    try:
        _run("millstream", build, [])
    except TypeError as e:
        assert type(e) is TypeError and "unsupported operand" in str(e)


def test_combined_values_that_match_their_hints_pass() -> None:
    from millstream.testing.util import assert_that, equal_to

    p = beam.Pipeline(options=PipelineOptions(["--runtime_type_check"]))
    fns = _combine_fns(beam)
    pairs = p | beam.Create([("a", 1), ("a", 2), ("b", 3)])
    per_key = pairs | "PerKey" >> beam.CombinePerKey(fns["SumInts"])
    total = pairs | beam.Map(lambda kv: kv[1]) | "Globally" >> beam.CombineGlobally(fns["SumInts"])
    assert_that(per_key, equal_to([("a", 3), ("b", 3)]), label="PerKeyOk")
    assert_that(total, equal_to([6]), label="TotalOk")
    p.run().wait_until_finish()


def _summing_pipeline(flags: list[str]) -> beam.Pipeline:
    p = beam.Pipeline(options=PipelineOptions(flags))
    _ = p | beam.Create([("a", 1)]) | "Sum" >> beam.CombinePerKey(sum).with_input_types(tuple[str, int])
    return p


def test_the_combine_is_wrapped_only_when_asked_for() -> None:
    """Off, the step's node keeps its CombineFn and inlines `sum` (the fast path); on, the CombineFn is wrapped
    and the node takes the general path; the state the node describes is the same either way."""
    from millstream.engine.runtime.operators.runtime_typecheck import TypeCheckCombineFn

    off = plan_pipeline(_summing_pipeline([]), PipelineOptions([])).nodes["Sum"]
    assert not isinstance(off.fn, TypeCheckCombineFn) and off.kind == "sum"
    flags = ["--runtime_type_check"]
    on = plan_pipeline(_summing_pipeline(flags), PipelineOptions(flags)).nodes["Sum"]
    assert isinstance(on.fn, TypeCheckCombineFn) and on.kind is None
    assert on.fn.input_type is int and on.fn.output_type is None
    assert on.state_layout() == off.state_layout()


#: The windowings of the W1-W3 benchmarks, each with its own fast reducer.
FAST_WINDOWINGS: dict[str, Callable[[], Any]] = {
    "W1_fixed": lambda: beam.window.FixedWindows(60),
    "W2_sliding": lambda: beam.window.SlidingWindows(60, 10),
    "W3_sessions": lambda: beam.window.Sessions(30),
}


@pytest.mark.parametrize("windowing", sorted(FAST_WINDOWINGS))
def test_a_windowed_combine_keeps_its_fast_reducer_when_checked(windowing: str) -> None:
    """The windowed reducer is chosen by the windowing: with the checks on it is the same fast class."""
    from millstream.engine.runtime.operators.runtime_typecheck import TypeCheckCombineFn

    def planned(flags: list[str]) -> Any:
        p = beam.Pipeline(options=PipelineOptions(flags))
        _ = (
            p
            | beam.Create([("a", 1)])
            | beam.WindowInto(FAST_WINDOWINGS[windowing]())
            | "Sum" >> beam.CombinePerKey(_combine_fns(beam)["SumInts"])
        )
        return plan_pipeline(p, PipelineOptions(flags)).nodes["Sum"]

    off, on = planned([]), planned(["--runtime_type_check"])
    assert isinstance(on.combine_fn, TypeCheckCombineFn) and not isinstance(
        off.combine_fn, TypeCheckCombineFn
    )
    assert type(on.reducer) is type(off.reducer)
    assert type(off.reducer).__name__ != "Reducer", "the fast path is not taken without the checks"
    assert on.state_layout() == off.state_layout()


def _run(engine_name: str, build: Build, flags: list[str]) -> None:
    b = engine(engine_name)
    p = b.Pipeline(options=options_module(engine_name).PipelineOptions(flags))
    build(b, p)
    p.run().wait_until_finish()


@pytest.mark.parametrize("case", sorted(FAILING))
def test_a_violation_fails_the_run_as_in_beam(case: str) -> None:
    build, detail = FAILING[case]
    for name in ("beam", "millstream"):
        with pytest.raises(Exception) as caught:
            _run(name, build, ["--runtime_type_check"])
        assert type(caught.value).__name__ == "TypeCheckError", name
        assert detail in str(caught.value), name
    assert f"Runtime type violation detected within ParDo(Bad): {detail}" in str(caught.value)


def test_millstreams_error_names_the_step_and_the_element() -> None:
    build, _ = FAILING["map_output"]
    with pytest.raises(beam.typehints.TypeCheckError) as caught:
        _run("millstream", build, ["--runtime_type_check"])
    assert caught.value.millstream_step == "Bad"  # type: ignore[attr-defined]
    assert caught.value.millstream_element == 3  # type: ignore[attr-defined]


def test_performance_runtime_type_check_runs_the_same_checks() -> None:
    build, detail = FAILING["map_input"]
    with pytest.raises(beam.typehints.TypeCheckError, match="Type-hint for argument: 'elem' violated"):
        _run("millstream", build, ["--performance_runtime_type_check"])


def test_both_flags_at_once_are_refused_as_in_beam() -> None:
    build, _ = FAILING["map_output"]
    for name in ("beam", "millstream"):
        with pytest.raises(RuntimeError, match="simultaneously"):
            _run(name, build, ["--runtime_type_check", "--performance_runtime_type_check"])


@pytest.mark.parametrize("case", sorted(FAILING))
def test_without_the_option_nothing_is_checked(case: str) -> None:
    build, _ = FAILING[case]
    _run("millstream", build, [])  # completes: the declared hints are not looked at while running


def test_elements_that_match_their_hints_pass() -> None:
    from millstream.testing.util import assert_that, equal_to

    p = beam.Pipeline(options=PipelineOptions(["--runtime_type_check"]))
    out = (
        p
        | beam.Create([1, 2])
        | beam.Map(lambda x: (x, [str(x)])).with_input_types(int).with_output_types(tuple[int, list[str]])
        | beam.Map(lambda kv: kv[0] * 10).with_output_types(typing.Optional[int])  # noqa: UP045
    )
    assert_that(out, equal_to([10, 20]))
    p.run().wait_until_finish()


def _hinted_pipeline(flags: list[str]) -> beam.Pipeline:
    p = beam.Pipeline(options=PipelineOptions(flags))
    _ = p | beam.Create([1]) | "Hinted" >> beam.Map(lambda x: x).with_input_types(int).with_output_types(int)
    return p


def test_the_checks_exist_only_when_asked_for() -> None:
    """Off, the step's node has no check hooks (no per-element work is added); on, it has both, and its
    class's push and emit are kept (nothing replaced on the instance)."""
    off = plan_pipeline(_hinted_pipeline([]), PipelineOptions([])).nodes["Hinted"]
    assert off.input_check is None and off.output_check is None
    flags = ["--runtime_type_check"]
    on = plan_pipeline(_hinted_pipeline(flags), PipelineOptions(flags)).nodes["Hinted"]
    assert on.input_check is not None and on.output_check is not None
    assert "push" not in vars(on) and "emit" not in vars(on)


def _fused_pipeline(flags: list[str], bad: str) -> beam.Pipeline:
    """Create -> a plain Map -> "Checked" (a plain Map with hints) -> a plain Map; with `bad` "input" the first
    Map feeds strings into "Checked", with "output" "Checked" returns strings."""
    p = beam.Pipeline(options=PipelineOptions(flags))
    _ = (
        p
        | beam.Create([1, 2, 3])
        # declared Any: Beam (and millstream) infer Union[str, int] from the lambda, which the construction
        # check would refuse before the runtime check is reached
        | "Before" >> beam.Map(lambda x: str(x) if bad == "input" else x).with_output_types(Any)
        | "Checked"
        >> beam.Map(lambda n: str(n) if bad == "output" else n).with_input_types(int).with_output_types(int)
        | "After" >> beam.Map(lambda x: x)
    )
    return p


@pytest.mark.parametrize("bad", ["input", "output"])
def test_the_checks_run_on_the_fused_fast_path(bad: str) -> None:
    """A plain Map (a callable without DoFn parameters) runs on ParDoNode's fast path, fused into its
    neighbours' stage; the hooks check its elements there, input and output."""
    flags = ["--runtime_type_check"]
    plan = plan_pipeline(_fused_pipeline(flags, bad), PipelineOptions(flags))
    node = plan.nodes["Checked"]
    assert node.fast, "the step is not on the fast path"
    assert (
        plan.stage_of_node(node)
        is plan.stage_of_node(plan.nodes["Before"])
        is plan.stage_of_node(plan.nodes["After"])
    ), "the step is not fused with its neighbours"
    expected = (
        "Type-hint for argument: 'n' violated" if bad == "input" else "expected output should be of type"
    )
    with pytest.raises(beam.typehints.TypeCheckError, match=expected) as caught:
        _fused_pipeline(flags, bad).run().wait_until_finish()
    assert caught.value.millstream_step == "Checked"  # type: ignore[attr-defined]
    assert caught.value.millstream_element == "1"  # type: ignore[attr-defined]


HINTS: list[Any] = [
    int,
    float,
    str,
    bool,
    type(None),
    Any,
    typing.Optional[int],  # noqa: UP045
    typing.Union[int, str],
    tuple[int, str],
    tuple[int, ...],
    list[int],
    typing.List[str],  # noqa: UP006
    dict[str, int],
    set[int],
    typing.Iterable[int],
]

VALUES: list[Any] = [1, True, 1.5, "a", None, (1, "a"), (1, 2), [1, 2], ["a"], {"a": 1}, {1: "a"}, {1}, ()]


def test_is_instance_agrees_with_beams_check_constraint() -> None:
    engine("beam")
    from apache_beam.typehints import native_type_compatibility as native
    from apache_beam.typehints.typehints import check_constraint

    def beams(value: Any, hint: Any) -> bool:
        try:
            check_constraint(native.convert_to_beam_type(hint), value)
        except Exception:
            return False
        return True

    disagree = [(v, h) for h in HINTS for v in VALUES if is_instance(v, h) != beams(v, h)]
    assert disagree == []


class _Team:
    """A key grouped by its registered coder (the combine becomes encode, combine, decode steps)."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_a_combine_grouping_by_its_key_coder_is_checked_under_its_own_name() -> None:
    from millstream.coders import Coder, registry

    class TeamCoder(Coder):
        def encode(self, team: _Team) -> bytes:
            return team.name.encode()

        def decode(self, data: bytes) -> _Team:
            return _Team(data.decode())

        def is_deterministic(self) -> bool:
            return True

    registry.register_coder(_Team, TeamCoder)
    p = beam.Pipeline(options=PipelineOptions(["--runtime_type_check"]))
    _ = (
        p
        | beam.Create([(_Team("a"), "1")])
        | "Untyped" >> beam.Map(lambda kv: kv).with_output_types(tuple[_Team, Any])
        | "Bad" >> beam.CombinePerKey(_combine_fns(beam)["SumInts"]).with_input_types(tuple[_Team, int])
    )
    with pytest.raises(beam.typehints.TypeCheckError, match="within Bad: Type-hint for argument: 'element'"):
        p.run().wait_until_finish()
