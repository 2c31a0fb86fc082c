"""Unit tests of the core transforms on the real runtime, including error paths."""

from __future__ import annotations

import pytest

import millstream as beam
from millstream.engine.runtime.graph.node import PipelineError
from millstream.testing.util import BeamAssertException, assert_that, equal_to, is_empty


class Unconstructible(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def test_error_type_that_cannot_be_rebuilt_becomes_pipeline_error():
    def fail(x):
        raise Unconstructible(1, 2)

    with pytest.raises(PipelineError, match="step 'Fail' failed on element 'x'"):
        run(lambda p: p | beam.Create(["x"]) | "Fail" >> beam.Map(fail))


def run(build):
    """Build a pipeline with `build(p)` and run it."""
    with beam.Pipeline() as p:
        build(p)


def test_create_map_filter_flatmap():
    def build(p):
        words = p | beam.Create(["a b", "c", "", "d e f"]) | beam.FlatMap(str.split)
        assert_that(words, equal_to(["a", "b", "c", "d", "e", "f"]), label="words")
        upper = words | beam.Map(str.upper) | beam.Filter(lambda w: w != "C")
        assert_that(upper, equal_to(["A", "B", "D", "E", "F"]), label="upper")

    run(build)


def test_map_extra_args_and_kwargs():
    def build(p):
        out = p | beam.Create([1, 2, 3]) | beam.Map(lambda x, a, b=0: x * a + b, 10, b=1)
        assert_that(out, equal_to([11, 21, 31]))

    run(build)


def test_maptuple_and_flatmaptuple():
    def build(p):
        pairs = p | beam.Create([(1, 2), (3, 4)])
        assert_that(pairs | beam.MapTuple(lambda a, b, c: a + b + c, 100), equal_to([103, 107]), label="mt")
        assert_that(
            pairs | beam.FlatMapTuple(lambda a, b: [a] * b), equal_to([1, 1, 3, 3, 3, 3]), label="fmt"
        )

    run(build)


def test_mismatch_fails_the_run():
    with pytest.raises(BeamAssertException, match="missing elements"):
        run(lambda p: assert_that(p | beam.Create([1, 2]), equal_to([1, 2, 3])))


def test_is_empty_on_empty_and_nonempty():
    run(lambda p: assert_that(p | beam.Create([]), is_empty()))
    with pytest.raises(BeamAssertException):
        run(lambda p: assert_that(p | beam.Create([1]), is_empty()))


class SplitWords(beam.DoFn):
    def setup(self):
        self.calls = []

    def process(self, element, prefix="", suffix="!"):
        for w in element.split():
            yield prefix + w + suffix


def test_pardo_generator_with_args():
    def build(p):
        out = p | beam.Create(["x y"]) | beam.ParDo(SplitWords(), ">", suffix="<")
        assert_that(out, equal_to([">x<", ">y<"]))

    run(build)


class Lifecycle(beam.DoFn):
    events: list[str] = []

    def setup(self):
        Lifecycle.events.append("setup")

    def start_bundle(self):
        Lifecycle.events.append("start")

    def process(self, element):
        return [element]

    def finish_bundle(self):
        Lifecycle.events.append("finish")

    def teardown(self):
        Lifecycle.events.append("teardown")


def test_dofn_lifecycle_order():
    Lifecycle.events = []
    run(lambda p: p | beam.Create([1, 2, 3]) | beam.ParDo(Lifecycle()))
    ev = Lifecycle.events
    assert ev[0] == "setup" and ev[-1] == "teardown"
    assert ev.count("start") == ev.count("finish") >= 1
    # every bundle is closed before the next starts
    body = ev[1:-1]
    assert body == ["start", "finish"] * (len(body) // 2)


class AsyncDouble(beam.DoFn):
    async def process(self, element):
        import anyio

        await anyio.sleep(0)
        yield element * 2


def test_async_dofn_keeps_order_and_values():
    def build(p):
        out = p | beam.Create(list(range(50))) | beam.ParDo(AsyncDouble())
        assert_that(out, equal_to([2 * i for i in range(50)]))

    run(build)


def test_flatten_and_partition():
    def build(p):
        a = p | "A" >> beam.Create([1, 2])
        b = p | "B" >> beam.Create([3])
        both = (a, b) | beam.Flatten()
        assert_that(both, equal_to([1, 2, 3]), label="flat")
        evens, odds = p | "C" >> beam.Create(range(10)) | beam.Partition(lambda x, n: x % n, 2)
        assert_that(evens, equal_to([0, 2, 4, 6, 8]), label="evens")
        assert_that(odds, equal_to([1, 3, 5, 7, 9]), label="odds")

    run(build)


def test_partition_bad_index_names_step():
    with pytest.raises(ValueError, match="while running 'Partition"):
        run(lambda p: p | beam.Create([1]) | beam.Partition(lambda x, n: 7, 2))


def test_group_by_key_and_combines():
    def build(p):
        kvs = p | beam.Create([("a", 1), ("b", 2), ("a", 3)])
        grouped = kvs | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
        assert_that(grouped, equal_to([("a", [1, 3]), ("b", [2])]), label="gbk")
        assert_that(kvs | beam.CombinePerKey(sum), equal_to([("a", 4), ("b", 2)]), label="sum")
        assert_that(kvs | beam.CombinePerKey(max), equal_to([("a", 3), ("b", 2)]), label="max")
        assert_that(
            kvs | "G2" >> beam.GroupByKey() | beam.CombineValues(sum),
            equal_to([("a", 4), ("b", 2)]),
            label="cv",
        )
        assert_that(kvs | beam.Values() | beam.CombineGlobally(sum), equal_to([6]), label="glob")

    run(build)


def test_combine_globally_empty_gives_default():
    run(lambda p: assert_that(p | beam.Create([]) | beam.CombineGlobally(sum), equal_to([0])))
    run(lambda p: assert_that(p | beam.Create([]) | beam.CombineGlobally(sum).without_defaults(), is_empty()))


class AverageFn(beam.CombineFn):
    def create_accumulator(self):
        return (0.0, 0)

    def add_input(self, acc, x):
        return (acc[0] + x, acc[1] + 1)

    def merge_accumulators(self, accs):
        sums, counts = zip(*accs)
        return (sum(sums), sum(counts))

    def extract_output(self, acc):
        return acc[0] / acc[1] if acc[1] else float("nan")


def test_combinefn_per_key_and_globally():
    def build(p):
        nums = p | beam.Create([1, 2, 3, 4])
        assert_that(nums | beam.CombineGlobally(AverageFn()), equal_to([2.5]), label="avg")
        kv = nums | beam.Map(lambda x: (x % 2, x))
        assert_that(kv | beam.CombinePerKey(AverageFn()), equal_to([(0, 3.0), (1, 2.0)]), label="avgk")

    run(build)


class BrokenMerge(AverageFn):
    def merge_accumulators(self, accs):
        raise RuntimeError("merge exploded")

    def add_input(self, acc, x):
        raise RuntimeError("add exploded")


def test_combinefn_that_raises_names_step():
    with pytest.raises(RuntimeError, match="while running 'CombinePerKey") as info:
        run(lambda p: p | beam.Create([("a", 1)]) | beam.CombinePerKey(BrokenMerge()))
    assert "exploded" in str(info.value)


def test_user_error_names_step_and_element():
    def boom(x):
        if x == 3:
            raise ValueError("three is bad")
        return x

    with pytest.raises(ValueError) as info:
        run(lambda p: p | beam.Create([1, 2, 3, 4]) | "Explode" >> beam.Map(boom))
    msg = str(info.value)
    assert "'Explode'" in msg and "three is bad" in msg and "element 3" in msg
    assert isinstance(info.value.__cause__, ValueError)


def test_with_exception_handling_routes_bad_records():
    def parse(x):
        return int(x)

    def build(p):
        good, bad = p | beam.Create(["1", "x", "3"]) | "Parse" >> beam.Map(parse).with_exception_handling()
        assert_that(good, equal_to([1, 3]), label="good")

        def check(record):
            element, (exc_type, exc_repr, tb) = record
            assert element == "x" and exc_type is ValueError and "invalid literal" in exc_repr
            assert record[1].step == "Parse" and any("int(x)" in line for line in tb)
            return element

        assert_that(bad | beam.Map(check), equal_to(["x"]), label="bad")

    run(build)


def test_tagged_outputs():
    class Split(beam.DoFn):
        def process(self, x):
            if x < 0:
                yield beam.pvalue.TaggedOutput("neg", x)
            elif x == 0:
                yield beam.pvalue.TaggedOutput("zero", x)
            else:
                yield x

    def build(p):
        out = p | beam.Create([-1, 0, 1, 2]) | beam.ParDo(Split()).with_outputs("neg", "zero", main="pos")
        assert_that(out.pos, equal_to([1, 2]), label="pos")
        assert_that(out.neg, equal_to([-1]), label="neg")
        assert_that(out["zero"], equal_to([0]), label="zero")

    run(build)


def test_side_inputs():
    def build(p):
        factor = p | "F" >> beam.Create([3])
        table = p | "T" >> beam.Create([("a", 1), ("b", 2)])
        items = p | "I" >> beam.Create(["a", "b"])
        out = items | beam.Map(
            lambda k, f, t, everything: (k, t[k] * f, sorted(everything)),
            beam.pvalue.AsSingleton(factor),
            beam.pvalue.AsDict(table),
            everything=beam.pvalue.AsList(items),
        )
        assert_that(out, equal_to([("a", 3, ["a", "b"]), ("b", 6, ["a", "b"])]))

    run(build)


def test_duplicate_label_is_rejected_like_beam():
    p = beam.Pipeline()
    pc = p | "Same" >> beam.Create([1])
    with pytest.raises(RuntimeError, match='A transform with label "Same" already exists'):
        pc | "Same" >> beam.Map(str)


def test_pipe_non_transform_is_a_clear_type_error():
    p = beam.Pipeline()
    with pytest.raises(TypeError, match="expected a PTransform"):
        p | 5  # noqa: B018
    with pytest.raises(TypeError, match="expected a PTransform"):
        p | beam.Create([1]) | "not a transform"  # noqa: B018


def test_map_requires_callable_and_pardo_requires_dofn():
    with pytest.raises(TypeError, match="callable"):
        beam.Map(3)
    with pytest.raises(TypeError, match="DoFn instance"):
        beam.ParDo(SplitWords)
    with pytest.raises(TypeError, match="Map or FlatMap"):
        beam.ParDo(lambda x: x)


def test_flatmap_returning_string_is_an_error():
    with pytest.raises(TypeError, match="returned a str"):
        run(lambda p: p | beam.Create(["ab"]) | beam.FlatMap(lambda s: s.upper()))


def test_keys_values_kvswap_distinct_reshuffle():
    def build(p):
        kvs = p | beam.Create([("a", 1), ("b", 2), ("a", 1)])
        assert_that(kvs | beam.Keys(), equal_to(["a", "b", "a"]), label="k")
        assert_that(kvs | beam.Values(), equal_to([1, 2, 1]), label="v")
        assert_that(kvs | beam.KvSwap(), equal_to([(1, "a"), (2, "b"), (1, "a")]), label="s")
        assert_that(kvs | beam.Distinct(), equal_to([("a", 1), ("b", 2)]), label="d")
        assert_that(kvs | beam.Reshuffle(), equal_to([("a", 1), ("b", 2), ("a", 1)]), label="r")

    run(build)


def test_cogroupbykey_dict_and_tuple():
    def build(p):
        emails = p | "E" >> beam.Create([("amy", "amy@x"), ("carl", "carl@x"), ("carl", "c@y")])
        phones = p | "P" >> beam.Create([("amy", "111"), ("james", "222")])
        joined = (
            {"emails": emails, "phones": phones}
            | beam.CoGroupByKey()
            | beam.MapTuple(lambda k, d: (k, sorted(d["emails"]), sorted(d["phones"])))
        )
        assert_that(
            joined,
            equal_to([("amy", ["amy@x"], ["111"]), ("carl", ["c@y", "carl@x"], []), ("james", [], ["222"])]),
            label="dict",
        )
        tup = (
            (emails, phones)
            | "T" >> beam.CoGroupByKey()
            | beam.MapTuple(lambda k, v: (k, len(v[0]), len(v[1])))
        )
        assert_that(tup, equal_to([("amy", 1, 1), ("carl", 2, 0), ("james", 0, 1)]), label="tuple")

    run(build)


def test_metrics_are_readable_from_result():
    from millstream.metrics import Metrics, MetricsFilter

    class Counting(beam.DoFn):
        def __init__(self):
            self.seen = Metrics.counter("test", "seen")
            self.sizes = Metrics.distribution("test", "sizes")
            self.last = Metrics.gauge("test", "last")

        def process(self, x):
            self.seen.inc()
            self.sizes.update(x)
            self.last.set(x)
            yield x

    p = beam.Pipeline()
    p | beam.Create([1, 5, 3]) | "Count" >> beam.ParDo(Counting())
    result = p.run()
    result.wait_until_finish()
    q = result.metrics().query(MetricsFilter().with_name("seen"))
    assert [c.committed for c in q["counters"]] == [3]
    assert q["counters"][0].key.step == "Count"
    d = result.metrics().query(MetricsFilter().with_name("sizes"))["distributions"][0].committed
    assert (d.count, d.sum, d.min, d.max) == (3, 9, 1, 5)


def test_unknown_runner_and_unknown_flag_fail_clearly():
    from millstream.options.pipeline_options import PipelineOptions

    # DataflowRunner & co. are Beam runners now (tests/beam_runners); a name no runner has still fails
    p = beam.Pipeline(options=PipelineOptions(["--runner=NoSuchRunner"]))
    p | beam.Create([1])
    with pytest.raises(ValueError, match="NoSuchRunner.*not available.*PrismRunner"):
        p.run()
    p = beam.Pipeline(options=PipelineOptions(["--streming", "--strict_options"]))
    p | beam.Create([1])
    with pytest.raises(
        ValueError, match=r"unknown pipeline option\(s\): --streming \(did you mean --streaming\?\)"
    ):
        p.run()


def test_custom_options_and_view_as():
    from millstream.options.pipeline_options import PipelineOptions, StandardOptions

    class MyOptions(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--input", default="in.txt")
            parser.add_argument("--count", type=int, default=1)

    opts = PipelineOptions(["--input=x.csv", "--count", "3", "--streaming"])
    mine = opts.view_as(MyOptions)
    assert (mine.input, mine.count) == ("x.csv", 3)
    assert opts.view_as(StandardOptions).streaming is True
    opts.view_as(StandardOptions).streaming = False
    assert opts.view_as(StandardOptions).streaming is False
    assert PipelineOptions(count=7).view_as(MyOptions).count == 7
    opts.validate_flags()
