"""The Beam idioms of issue 14, each run as a pipeline: counting per window, tuple combiners, latest values,
WindowedValue from finish_bundle, Regex and ToString."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import window


def _stamped(p: beam.Pipeline, values: list[tuple[Any, int]]) -> beam.PCollection:
    return p | beam.Create(values) | beam.MapTuple(lambda v, t: window.TimestampedValue(v, t))


def test_count_globally_without_defaults_counts_per_window() -> None:
    with beam.Pipeline() as p:
        out = (
            _stamped(p, [("a", 100), ("b", 200), ("c", 300)])
            | beam.WindowInto(window.FixedWindows(200))
            | beam.combiners.Count.Globally().without_defaults()
        )
        assert_that(out, equal_to([1, 2]))


def test_count_globally_with_defaults_needs_the_global_window() -> None:
    with pytest.raises(ValueError, match="without_defaults"):
        with beam.Pipeline() as p:
            _ = (
                _stamped(p, [("a", 1)])
                | beam.WindowInto(window.FixedWindows(10))
                | beam.combiners.Count.Globally()
            )


def test_combine_globally_as_singleton_view() -> None:
    with beam.Pipeline() as p:
        total = p | "Nums" >> beam.Create([1, 2, 3]) | beam.CombineGlobally(sum).as_singleton_view()
        out = p | "One" >> beam.Create([10]) | beam.Map(lambda x, s: x + s, total)
        assert_that(out, equal_to([16]))


def test_tuple_combine_fns() -> None:
    with beam.Pipeline() as p:
        rows = p | beam.Create([(1, 2), (3, 4)])
        out = rows | beam.CombineGlobally(beam.combiners.TupleCombineFn(max, sum))
        single = (
            p
            | "Single" >> beam.Create([1, 5, 3])
            | "Both" >> beam.CombineGlobally(beam.combiners.SingleInputTupleCombineFn(min, max))
        )
        assert_that(out, equal_to([(3, 6)]))
        assert_that(single, equal_to([(1, 5)]), label="single")


def test_tuple_combine_fn_rejects_a_wrong_width() -> None:
    with pytest.raises(Exception, match="TupleCombineFn of 2 combiners got a tuple of 3"):
        with beam.Pipeline() as p:
            _ = p | beam.Create([(1, 2, 3)]) | beam.CombineGlobally(beam.combiners.TupleCombineFn(max, sum))


def test_latest_globally_and_per_key() -> None:
    with beam.Pipeline() as p:
        events = _stamped(p, [(("k", "old"), 10), (("k", "new"), 30), (("j", "only"), 5), (("k", "mid"), 20)])
        per_key = events | beam.combiners.Latest.PerKey()
        overall = events | "Values" >> beam.Values() | beam.combiners.Latest.Globally()
        assert_that(per_key, equal_to([("k", "new"), ("j", "only")]))
        assert_that(overall, equal_to(["new"]), label="overall")


def test_finish_bundle_yields_windowed_values() -> None:
    class CountInBundle(beam.DoFn):
        def start_bundle(self) -> None:
            self.n = 0

        def process(self, element: Any) -> None:
            self.n += 1

        def finish_bundle(self) -> Any:
            yield window.GlobalWindows.windowed_value(self.n)

    with beam.Pipeline() as p:
        counts = p | beam.Create([1, 2, 3]) | beam.ParDo(CountInBundle()) | beam.CombineGlobally(sum)
        assert_that(counts, equal_to([3]))


def test_regex_transforms() -> None:
    lines = ["apple:3", "pear:x", "fig:12"]
    with beam.Pipeline() as p:
        src = p | beam.Create(lines)
        assert_that(src | beam.Regex.matches(r"(\w+):(\d+)", 1), equal_to(["apple", "fig"]), label="m")
        assert_that(
            src | beam.Regex.matches_kv(r"(\w+):(\d+)", 1, 2),
            equal_to([("apple", "3"), ("fig", "12")]),
            label="kv",
        )
        assert_that(src | beam.Regex.find_all(r"\d"), equal_to([["3"], [], ["1", "2"]]), label="fa")
        assert_that(
            src | beam.Regex.replace_first(r":", "="), equal_to(["apple=3", "pear=x", "fig=12"]), label="rf"
        )
        assert_that(
            src | beam.Regex.split(r":"),
            equal_to([["apple", "3"], ["pear", "x"], ["fig", "12"]]),
            label="split",
        )


def test_regex_rejects_a_bad_pattern() -> None:
    with pytest.raises(ValueError, match=r"invalid regular expression '\('"):
        beam.Regex.find("(")


def test_to_string() -> None:
    with beam.Pipeline() as p:
        kvs = p | beam.Create([("a", 1), ("b", 2)])
        assert_that(kvs | beam.ToString.Kvs(), equal_to(["a,1", "b,2"]))
        assert_that(kvs | "Tab" >> beam.ToString.Iterables("\t"), equal_to(["a\t1", "b\t2"]), label="tab")
        assert_that(kvs | beam.ToString.Element(), equal_to(["('a', 1)", "('b', 2)"]), label="elem")


def test_value_providers_name_text_files(tmp_path: Any) -> None:
    from millstream.options.value_provider import StaticValueProvider

    (tmp_path / "in.txt").write_text("a\nb\n")
    with beam.Pipeline() as p:
        lines = p | beam.io.ReadFromText(StaticValueProvider(str, str(tmp_path / "in.txt")))
        assert_that(lines, equal_to(["a", "b"]))
        lines | beam.io.WriteToText(StaticValueProvider(str, str(tmp_path / "out")), ".txt")
    written = [f for f in tmp_path.iterdir() if f.name.startswith("out") and f.suffix == ".txt"]
    assert sorted("".join(f.read_text() for f in written).split()) == ["a", "b"]


def test_an_unset_value_provider_is_named() -> None:
    from millstream.options.value_provider import ValueProvider

    class Missing(ValueProvider):
        def is_accessible(self) -> bool:
            return False

    with pytest.raises(ValueError, match=r"ReadFromText\(file_pattern\): the value provider .* has no value"):
        beam.io.ReadFromText(Missing())
