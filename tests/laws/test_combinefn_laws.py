"""Algebraic laws of every CombineFn millstream ships, checked directly with Hypothesis.

A runtime may fold inputs in any batches, start fresh accumulators anywhere, merge them in any grouping, compact
them, and (for order-insensitive combiners) see the inputs in any order; the result must be the same as folding
the whole input into one accumulator. These are Beam's CombineFn contract.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import millstream as beam
from millstream.engine.model import combinefn as cf
from millstream.engine.model import combiners as cb
from millstream.engine.model import util

# How the next input reaches the combiner (see `fold_by_plan`).
ADD, ADD_BATCH, NEW, MERGE, COMPACT = "add", "add_batch", "new", "merge", "compact"
OPS = st.sampled_from([ADD, ADD, ADD, ADD_BATCH, NEW, MERGE, COMPACT])
INTS = st.integers(-1000, 1000)


class AverageFn(beam.CombineFn):
    """The programming guide's AverageFn (tuple accumulator, merge by zip)."""

    def create_accumulator(self):
        return (0, 0)

    def add_input(self, sum_count, x):
        return sum_count[0] + x, sum_count[1] + 1

    def merge_accumulators(self, accumulators):
        sums, counts = zip(*accumulators)
        return sum(sums), sum(counts)

    def extract_output(self, sum_count):
        return sum_count[0] / sum_count[1] if sum_count[1] else float("nan")


class ScaledSum(beam.CombineFn):
    """A CombineFn taking an extra argument in every method, as CombinePerKey(fn, *args) passes it."""

    def create_accumulator(self, factor):
        return 0

    def add_input(self, acc, x, factor):
        return acc + x * factor

    def merge_accumulators(self, accs, factor):
        return sum(accs)

    def extract_output(self, acc, factor):
        return (factor, acc)


def sum_mod(xs: Any, k: int) -> int:
    """An associative reducer with an argument, for CallableWrapperCombineFn."""
    return sum(xs) % k


@dataclass
class Case:
    """A combiner under test: how to make it, its inputs, and how to compare its outputs."""

    name: str
    make: Callable[[], Any]
    elements: st.SearchStrategy[Any] = INTS
    normalize: Callable[[Any], Any] = lambda out: out  # noqa: E731
    needs_input: bool = False  # the plain callable fails on no input, as max([]) does
    merges_empty: bool = True  # False: merging only empty accumulators fails (Beam's wrapper of max does too)
    order_insensitive: bool = True


def by_key(key: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Top with a key may keep either of two elements with equal keys: compare the keys kept."""
    return lambda out: [key(x) for x in out]


CASES = [
    Case("count", cb.CountCombineFn),
    Case("mean", cb.MeanCombineFn, normalize=lambda out: "NaN" if out != out else out),
    Case("sum", cf.SumCombineFn),
    Case("min", cf.MinCombineFn, needs_input=True),
    Case("max", cf.MaxCombineFn, needs_input=True),
    Case("min_text", cf.MinCombineFn, elements=st.text(max_size=3), needs_input=True),
    Case("top3", lambda: cb.TopCombineFn(3)),
    Case("top0", lambda: cb.TopCombineFn(0)),
    Case("top_reverse", lambda: cb.TopCombineFn(4, reverse=True)),
    Case("top_key", lambda: cb.TopCombineFn(2, key=abs), normalize=by_key(abs)),
    Case("top_key_reverse", lambda: cb.TopCombineFn(3, key=abs, reverse=True), normalize=by_key(abs)),
    Case("to_list", cb.ToListCombineFn, normalize=sorted),
    Case("list", cf.ListCombineFn, normalize=sorted),
    Case("to_set", cb.ToSetCombineFn),
    Case("to_dict", cb.ToDictCombineFn, elements=st.tuples(st.integers(0, 5), INTS), order_insensitive=False),
    Case("callable_sum", lambda: cf.CallableWrapperCombineFn(sum)),
    Case("callable_max", lambda: cf.CallableWrapperCombineFn(max), needs_input=True, merges_empty=False),
    Case("callable_args", lambda: cf.CallableWrapperCombineFn(sum_mod, 7)),
    Case("distinct", util._DistinctCombineFn),
    Case("average_fn", AverageFn, normalize=lambda out: "NaN" if out != out else out),
    Case("bound_args", lambda: beam.CombinePerKey(ScaledSum(), 3).fn),
    Case("from_callable_min", lambda: beam.CombineFn.maybe_from_callable(min), needs_input=True),
]


def fold_whole(fn: Any, xs: list[Any]) -> Any:
    """The reference: every input folded into one accumulator."""
    return fn.extract_output(fn.add_inputs(fn.create_accumulator(), xs))


def fold_by_plan(fn: Any, steps: list[tuple[Any, str]], merges_empty: bool = True) -> Any:
    """Fold inputs in order, each after an operation on the accumulators: a new accumulator, a merge of all so
    far, a compaction, and adding through add_input or add_inputs."""
    accs = [fn.create_accumulator()]
    for i, (x, op) in enumerate(steps):
        if op == NEW:
            accs.append(fn.create_accumulator())
        elif op == MERGE and (merges_empty or i > 0):
            accs = [fn.merge_accumulators(accs)]
        elif op == COMPACT:
            accs[-1] = fn.compact(accs[-1])
        if op == ADD_BATCH:
            accs[-1] = fn.add_inputs(accs[-1], [x])
        else:
            accs[-1] = fn.add_input(accs[-1], x)
    return fn.extract_output(fn.merge_accumulators(accs))


def steps_for(case: Case) -> st.SearchStrategy[list[tuple[Any, str]]]:
    return st.lists(st.tuples(case.elements, OPS), min_size=1 if case.needs_input else 0, max_size=40)


def check_case(case: Case, data: st.DataObject) -> None:
    steps = data.draw(steps_for(case), label="steps")
    xs = [x for x, _ in steps]
    fn = case.make()
    whole = case.normalize(fold_whole(fn, xs))
    assert case.normalize(fold_by_plan(case.make(), steps, case.merges_empty)) == whole
    one_by_one = fn.create_accumulator()
    for x in xs:
        one_by_one = fn.add_input(one_by_one, x)
    assert case.normalize(fn.extract_output(one_by_one)) == whole
    if case.order_insensitive:
        shuffled = data.draw(st.permutations(xs), label="shuffled")
        assert case.normalize(fold_whole(case.make(), shuffled)) == whole
        reordered = list(zip(shuffled, [op for _, op in steps]))
        assert case.normalize(fold_by_plan(case.make(), reordered, case.merges_empty)) == whole


def _make_test(case: Case) -> Callable[..., None]:
    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        check_case(case, data)

    test.__name__ = f"test_split_merge_order_laws_{case.name}"
    return test


for _case in CASES:
    globals()[f"test_split_merge_order_laws_{_case.name}"] = _make_test(_case)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.tuples(INTS, OPS), max_size=40), n=st.integers(0, 6), seed=st.integers(0, 2**32))
def test_sample_keeps_the_same_elements_under_any_split(steps, n, seed):
    """Sample keeps the n elements with the largest random priorities, drawn one per element as it is added:
    with the random generator seeded, every way of splitting and merging must keep the very same elements."""
    xs = [x for x, _ in steps]
    fn = cb.SampleCombineFn(n)
    random.seed(seed)
    whole = fold_whole(fn, xs)
    random.seed(seed)
    planned = fold_by_plan(fn, steps)
    assert sorted(planned) == sorted(whole)
    assert len(whole) == min(n, len(xs))
    assert all(whole.count(x) <= xs.count(x) for x in whole)


def test_sample_after_a_merge_is_still_uniform():
    """A merged sample must go on sampling uniformly: 3 of 6 elements, 3 added before a merge and 3 after,
    keeps each group's elements half the time (a merged accumulator that is not a heap favours the old ones)."""
    fn = cb.SampleCombineFn(3)
    rng_state = random.getstate()
    try:
        old = 0
        trials = 3000
        for trial in range(trials):
            random.seed(trial)
            merged = fn.merge_accumulators([fn.add_inputs(fn.create_accumulator(), ["a", "b", "c"])])
            sample = fn.extract_output(fn.add_inputs(merged, [1, 2, 3]))
            old += sum(isinstance(x, str) for x in sample)
    finally:
        random.setstate(rng_state)
    assert abs(old / (3 * trials) - 0.5) < 0.03


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(INTS, max_size=20), factor=st.integers(1, 5))
def test_apply_passes_extra_arguments_to_every_method(xs, factor):
    """Beam's `CombineFn.apply(elements, *args)` hands the arguments to create/add/extract."""
    assert ScaledSum().apply(xs, factor) == (factor, factor * sum(xs))
    assert cf.CallableWrapperCombineFn(sum_mod, 7).apply(xs) == sum(xs) % 7
    mean = cb.MeanCombineFn().apply(xs)
    assert mean == sum(xs) / len(xs) if xs else math.isnan(mean)


class UnhashableSum:
    """A callable whose instances are unhashable (it defines __eq__), like a dataclass with __call__."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnhashableSum)

    def __call__(self, xs: Any) -> Any:
        return sum(xs)


def test_unhashable_callables_wrap_as_combinefns():
    fn = beam.CombineFn.maybe_from_callable(UnhashableSum())
    assert fn.apply([1, 2, 3]) == 6
    assert type(beam.CombineFn.maybe_from_callable(sum)) is cf.SumCombineFn


class EqualsEverything:
    """A value whose == says True to anything (as some ORM column or array types do, in other ways)."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return True

    def __lt__(self, other: EqualsEverything) -> bool:
        return self.v < other.v

    __hash__ = object.__hash__


def test_min_max_never_compare_user_values_to_their_empty_marker():
    """min/max accumulators hold user values; telling "no input yet" apart must not rely on the value's ==."""
    for fn, expected in ((cf.MaxCombineFn(), 3), (cf.MinCombineFn(), 1)):
        values = [EqualsEverything(v) for v in (2, 3, 1)]
        acc = fn.add_inputs(fn.create_accumulator(), values)
        assert fn.extract_output(acc).v == expected
        merged = fn.merge_accumulators([fn.create_accumulator(), acc, fn.create_accumulator()])
        assert fn.extract_output(merged).v == expected
