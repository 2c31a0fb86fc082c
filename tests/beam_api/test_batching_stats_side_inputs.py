"""Issue 14's remaining combiners and batching, run as pipelines: GroupIntoBatches (and WithShardedKey),
BatchElements, ApproximateUnique, ApproximateQuantiles, and side inputs passed to a CombineFn."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.testing.test_stream import TestStream
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import combiners, window
from millstream.utils.sharded_key import ShardedKey


def _sizes(kv: Any) -> tuple[Any, int]:
    return kv[0], len(kv[1])


def test_group_into_batches_fills_batches_per_key_and_flushes_the_rest() -> None:
    data = [("a", i) for i in range(7)] + [("b", i) for i in range(2)]
    with beam.Pipeline() as p:
        batches = p | beam.Create(data) | beam.GroupIntoBatches(3)
        assert_that(
            batches | "Sizes" >> beam.Map(_sizes),
            equal_to([("a", 3), ("a", 3), ("a", 1), ("b", 2)]),
            label="sizes",
        )
        flat = batches | beam.FlatMap(lambda kv: [(kv[0], v) for v in kv[1]])
        assert_that(flat, equal_to(data), label="every value once")


def test_group_into_batches_never_mixes_windows() -> None:
    stamped = [("k", 1), ("k", 2), ("k", 11), ("k", 12), ("k", 13)]
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(stamped)
            | beam.Map(lambda kv: window.TimestampedValue(kv, kv[1]))
            | beam.WindowInto(window.FixedWindows(10))
            | beam.GroupIntoBatches(5)
            | beam.Map(lambda kv: sorted(kv[1]))
        )
        assert_that(out, equal_to([[1, 2], [11, 12, 13]]))


def test_group_into_batches_flushes_a_partial_batch_when_the_window_closes_in_streaming() -> None:
    stream = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([window.TimestampedValue(("k", 1), 1), window.TimestampedValue(("k", 2), 2)])
        .advance_watermark_to(15)
        .add_elements([window.TimestampedValue(("k", 21), 21)])
        .advance_watermark_to_infinity()
    )
    from millstream.options.pipeline_options import PipelineOptions, StandardOptions

    opts = PipelineOptions()
    opts.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=opts) as p:
        out = (
            p
            | stream
            | beam.WindowInto(window.FixedWindows(10))
            | beam.GroupIntoBatches(100)
            | beam.Map(lambda kv: sorted(kv[1]))
        )
        assert_that(out, equal_to([[1, 2], [21]]))


def test_group_into_batches_with_sharded_key() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", 1), ("a", 2), ("a", 3)])
            | beam.GroupIntoBatches.WithShardedKey(2)
            | beam.Map(lambda kv: (type(kv[0]).__name__, kv[0].key, len(kv[1])))
        )
        assert_that(out, equal_to([("ShardedKey", "a", 2), ("ShardedKey", "a", 1)]))
    assert ShardedKey("a", b"1") == ShardedKey("a", b"1") != ShardedKey("a", b"2")


@pytest.mark.parametrize("bad", [0, -1, 2.5, None])
def test_group_into_batches_rejects_a_bad_batch_size(bad: Any) -> None:
    with pytest.raises(ValueError, match="GroupIntoBatches: batch_size"):
        beam.GroupIntoBatches(bad)


def test_batch_elements_bounds_the_batch_size_and_keeps_every_element() -> None:
    with beam.Pipeline() as p:
        batches = p | beam.Create(list(range(23))) | beam.BatchElements(min_batch_size=2, max_batch_size=5)
        assert_that(
            batches | "Too big" >> beam.Filter(lambda b: not isinstance(b, list) or len(b) > 5),
            equal_to([]),
            label="sizes",
        )
        assert_that(batches | beam.FlatMap(lambda b: b), equal_to(list(range(23))), label="elements")


def test_batch_elements_rejects_min_above_max() -> None:
    with pytest.raises(ValueError, match="min_batch_size 6 > max_batch_size 5"):
        beam.BatchElements(min_batch_size=6, max_batch_size=5)


def test_approximate_unique_is_exact_below_the_sample_size_and_close_above() -> None:
    with beam.Pipeline() as p:
        few = p | "Few" >> beam.Create([1, 2, 2, 3, 3, 3]) | "U1" >> beam.ApproximateUnique.Globally(size=16)
        assert_that(few, equal_to([3]), label="exact")
        many = (
            p
            | "Many" >> beam.Create([i % 20000 for i in range(40000)])
            | "U2" >> beam.ApproximateUnique.Globally(error=0.05)
        )
        # error=0.05 -> 1600 samples; the estimate's standard error is about 2.5%, so 4 sigma is 10%
        assert_that(many | beam.Map(lambda n: abs(n - 20000) / 20000 < 0.10), equal_to([True]), label="close")
        per_key = (
            p
            | "Keyed" >> beam.Create([("a", 1), ("a", 1), ("b", 1), ("b", 2)])
            | beam.ApproximateUnique.PerKey(size=16)
        )
        assert_that(per_key, equal_to([("a", 1), ("b", 2)]), label="per key")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"size": 16, "error": 0.1}, "exactly one"),
        ({"size": 8}, "size must be"),
        ({"error": 0.9}, "error must be"),
    ],
)
def test_approximate_unique_rejects_bad_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        beam.ApproximateUnique.Globally(**kwargs)


def test_approximate_quantiles_globally_per_key_reversed_and_weighted() -> None:
    with beam.Pipeline() as p:
        q = p | "Nums" >> beam.Create(list(range(1001))) | "Q" >> beam.ApproximateQuantiles.Globally(5)
        assert_that(q, equal_to([[0, 250, 500, 750, 1000]]), label="globally")
        rev = (
            p
            | "Rev" >> beam.Create(list(range(11)))
            | "QR" >> beam.ApproximateQuantiles.Globally(3, reverse=True)
        )
        assert_that(rev, equal_to([[10, 5, 0]]), label="reversed")
        keyed = (
            p
            | "Keyed" >> beam.Create([("a", x) for x in range(5)] + [("b", 7)])
            | beam.ApproximateQuantiles.PerKey(3)
        )
        assert_that(keyed, equal_to([("a", [0, 2, 4]), ("b", [7, 7, 7])]), label="per key")
        weighted = (
            p
            | "W" >> beam.Create([(1, 1), (2, 100), (3, 1)])
            | "QW" >> beam.ApproximateQuantiles.Globally(3, weighted=True)
        )
        assert_that(weighted, equal_to([[1, 2, 3]]), label="weighted")


def test_combine_fns_receive_side_inputs() -> None:
    def bounded_sum(values: Any, data_range: Any) -> Any:
        return min(max(sum(values), data_range["min"]), data_range["max"])

    with beam.Pipeline() as p:
        limits = p | "Limits" >> beam.Create([("min", 2), ("max", 8)])
        cap = p | "Cap" >> beam.Create([5])
        kvs = p | "KVs" >> beam.Create([("a", 1), ("b", 3), ("b", 4), ("c", 9), ("c", 9)])
        per_key = kvs | "PerKey" >> beam.CombinePerKey(bounded_sum, data_range=beam.pvalue.AsDict(limits))
        assert_that(per_key, equal_to([("a", 2), ("b", 7), ("c", 8)]), label="per key")
        values = (
            kvs
            | beam.GroupByKey()
            | beam.CombineValues(lambda vs, m: min(sum(vs), m), beam.pvalue.AsSingleton(cap))
        )
        assert_that(values, equal_to([("a", 1), ("b", 5), ("c", 5)]), label="values")
        glob = (
            p
            | "Nums" >> beam.Create([1, 2, 3])
            | beam.CombineGlobally(lambda vs, extra: sum(vs) + sum(extra), beam.pvalue.AsIter(cap))
        )
        assert_that(glob, equal_to([11]), label="globally")


def test_combine_values_passes_plain_extra_arguments() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", [1, 2, 3]), ("b", [9])])
            | beam.CombineValues(lambda vs, max_value: min(sum(vs), max_value), max_value=5)
        )
        assert_that(out, equal_to([("a", 5), ("b", 5)]))


def test_combiners_module_exposes_core_as_in_beam() -> None:
    assert combiners.core.CombineGlobally is beam.CombineGlobally


def test_timestamp_and_to_bytes_coders() -> None:
    from millstream.coders import TimestampCoder, ToBytesCoder
    from millstream.typehints.typehints import Tuple, TupleConstraint
    from millstream.utils.timestamp import Timestamp

    coder = TimestampCoder()
    assert coder.encode(Timestamp(micros=1)) < coder.encode(Timestamp(micros=256))
    assert coder.decode(coder.encode(Timestamp(-3.25))) == Timestamp(-3.25)
    with pytest.raises(TypeError, match="TimestampCoder encodes Timestamp, got int"):
        coder.encode(5)
    assert ToBytesCoder().encode("é") == "é".encode() and ToBytesCoder().encode(b"\x00") == b"\x00"
    assert isinstance(Tuple[int, str], TupleConstraint) and not isinstance(int, TupleConstraint)


def test_as_multi_map_side_input() -> None:
    with beam.Pipeline() as p:
        prices = p | "Prices" >> beam.Create([("apple", 1), ("apple", 2), ("pear", 5)])
        out = (
            p
            | "Fruit" >> beam.Create(["apple", "pear", "fig"])
            | beam.Map(lambda f, m: (f, sorted(m.get(f, []))), beam.pvalue.AsMultiMap(prices))
        )
        assert_that(out, equal_to([("apple", [1, 2]), ("pear", [5]), ("fig", [])]))
