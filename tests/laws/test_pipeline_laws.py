"""Pipeline-level laws on millstream's runtime, checked with Hypothesis.

Batch boundaries and input order are the runtime's business, never the result's: a keyed combine gives what
one CombineFn folding each key's values gives, whatever `--batch_size` and however the input is shuffled.
GroupByKey, Flatten and Partition move elements without losing, duplicating or inventing any.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import combiners

KEYS = st.one_of(
    st.sampled_from(["a", "b", "", "ü"]), st.integers(-3, 3), st.none(), st.tuples(st.integers(0, 2))
)
PAIRS = st.lists(st.tuples(KEYS, st.integers(-100, 100)), max_size=60)
# Few keys, many values each: the wrapped callables' buffers (10 values) fill and compact.
HOT_PAIRS = st.lists(
    st.tuples(st.sampled_from(["hot", "warm"]), st.integers(-100, 100)), min_size=15, max_size=80
)
BATCH_SIZES = st.sampled_from([1, 2, 7, 4096])


def canonical(value: Any) -> Any:
    """A sortable form: lists (GroupByKey's values, ToList's output) compared as sorted tuples."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, list):
        return ("list", tuple(sorted((canonical(v) for v in value), key=repr)))
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    return value


def multiset(values: Any) -> list[Any]:
    return sorted((canonical(v) for v in values), key=repr)


def run(build: Callable[[Any], dict[str, Any]], batch_size: int) -> dict[str, list[Any]]:
    """Run `build(p)` (it returns PCollections by name) with the given batch size; returns each one's elements."""
    outputs: dict[str, list[Any]] = {}
    p = beam.Pipeline(options=PipelineOptions([f"--batch_size={batch_size}"]))
    for name, pcoll in build(p).items():
        sink = outputs.setdefault(name, [])
        pcoll | f"Collect[{name}]" >> beam.Map(sink.append)
    p.run().wait_until_finish()
    return outputs


class AverageFn(beam.CombineFn):
    """The programming guide's AverageFn, with exact integer sums."""

    def create_accumulator(self):
        return (0, 0)

    def add_input(self, acc, x):
        return acc[0] + x, acc[1] + 1

    def merge_accumulators(self, accs):
        sums, counts = zip(*accs)
        return sum(sums), sum(counts)

    def extract_output(self, acc):
        return acc[0] / acc[1] if acc[1] else float("nan")


def per_key_combiners() -> dict[str, Any]:
    """CombineFns and callables under test, by name (fresh instances each call)."""
    return {
        "sum": sum,
        "max": max,
        "min": min,
        "lambda_sum": lambda values: sum(values),
        "mean": combiners.MeanCombineFn(),
        "count": combiners.CountCombineFn(),
        "top3": combiners.TopCombineFn(3),
        "bottom2": combiners.TopCombineFn(2, reverse=True),
        "average": AverageFn(),
        "to_list": combiners.ToListCombineFn(),
        "to_set": combiners.ToSetCombineFn(),
    }


def oracle_per_key(pairs: list[tuple[Any, int]]) -> dict[str, list[Any]]:
    """Each combiner applied in one go to each key's values."""
    grouped: dict[Any, list[int]] = collections.defaultdict(list)
    for k, v in pairs:
        grouped[k].append(v)
    out = {}
    for name, fn in per_key_combiners().items():
        combine_fn = beam.CombineFn.maybe_from_callable(fn)
        out[name] = multiset((k, combine_fn.apply(vs)) for k, vs in grouped.items())
    return out


@settings(max_examples=30, deadline=None)
@given(pairs=st.one_of(PAIRS, HOT_PAIRS), data=st.data())
def test_keyed_combines_do_not_depend_on_batches_or_order(pairs, data):
    """Batches of 1, 7 and 4096 elements, input as given and shuffled: always the one-go result."""
    shuffled = data.draw(st.permutations(pairs), label="shuffled")

    def build(p, elements):
        kv = p | beam.Create(elements)
        outs = {
            name: kv | f"PerKey[{name}]" >> beam.CombinePerKey(fn) for name, fn in per_key_combiners().items()
        }
        values = kv | beam.Values()
        outs["global_sum"] = values | "GlobalSum" >> beam.CombineGlobally(sum)
        outs["global_mean"] = values | "GlobalMean" >> combiners.Mean.Globally()
        outs["count_per_element"] = values | combiners.Count.PerElement()
        outs["distinct"] = kv | beam.Distinct()
        return outs

    for elements, batch_size in ((pairs, 1), (shuffled, 7), (pairs, 4096), (shuffled, 4096)):
        check_keyed_combines(run(lambda p, e=elements: build(p, e), batch_size), pairs)


def check_keyed_combines(got: dict[str, list[Any]], pairs: list[tuple[Any, int]]) -> None:
    expected = oracle_per_key(pairs)
    for name in per_key_combiners():
        assert multiset(got[name]) == expected[name], name
    values = [v for _, v in pairs]
    assert got["global_sum"] == [sum(values)]
    assert multiset(got["global_mean"]) == multiset([sum(values) / len(values) if values else float("nan")])
    assert multiset(got["count_per_element"]) == multiset(collections.Counter(values).items())
    assert multiset(got["distinct"]) == multiset(set(pairs))


@settings(max_examples=40, deadline=None)
@given(pairs=PAIRS, batch_size=BATCH_SIZES)
def test_group_by_key_preserves_the_multiset_of_pairs(pairs, batch_size):
    got = run(lambda p: {"g": p | beam.Create(pairs) | beam.GroupByKey()}, batch_size)["g"]
    keys = [k for k, _ in got]
    assert len(keys) == len(set(keys)), "a key was emitted twice"
    assert multiset((k, v) for k, vs in got for v in vs) == multiset(pairs)
    assert all(len(list(vs)) > 0 for _, vs in got)


@settings(max_examples=40, deadline=None)
@given(
    inputs=st.lists(st.lists(st.integers(-5, 5), max_size=20), min_size=1, max_size=4), batch_size=BATCH_SIZES
)
def test_flatten_is_the_multiset_union(inputs, batch_size):
    def build(p):
        pcolls = [p | f"In{i}" >> beam.Create(xs) for i, xs in enumerate(inputs)]
        twice = (pcolls[0], pcolls[0]) | "Twice" >> beam.Flatten()
        return {"all": tuple(pcolls) | beam.Flatten(), "twice": twice}

    got = run(build, batch_size)
    assert multiset(got["all"]) == multiset(x for xs in inputs for x in xs)
    assert multiset(got["twice"]) == multiset(inputs[0] * 2)


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.integers(-50, 50), max_size=50), n=st.integers(1, 5), batch_size=BATCH_SIZES)
def test_partition_is_a_partition(xs, n, batch_size):
    def by_mod(x, num_partitions):
        return x % num_partitions

    got = run(
        lambda p: {str(i): part for i, part in enumerate(p | beam.Create(xs) | beam.Partition(by_mod, n))},
        batch_size,
    )
    assert sorted(got) == [str(i) for i in range(n)]
    for i in range(n):
        assert all(x % n == i for x in got[str(i)])
    assert multiset(x for i in range(n) for x in got[str(i)]) == multiset(xs)
