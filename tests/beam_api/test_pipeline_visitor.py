"""`Pipeline.visit` with a `PipelineVisitor` (``apache_beam.pipeline``), `FlattenWith`, and multi-output ParDos
applied eagerly to values."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.pipeline import PipelineVisitor
from millstream.pvalue import TaggedOutput
from millstream.testing.util import assert_that, equal_to


class Recorder(PipelineVisitor):
    """Every callback, in order, by label."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def enter_composite_transform(self, node: Any) -> None:
        self.events.append(f"enter {node.full_label}")

    def leave_composite_transform(self, node: Any) -> None:
        self.events.append(f"leave {node.full_label}")

    def visit_transform(self, node: Any) -> None:
        self.events.append(f"visit {node.full_label}")

    def visit_value(self, value: Any, producer: Any) -> None:
        self.events.append(f"value of {producer.full_label}")


class Double(beam.PTransform):
    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Times2" >> beam.Map(lambda x: x * 2) | "Plus0" >> beam.Map(lambda x: x)


def test_visit_walks_composites_primitives_and_values_in_order() -> None:
    p = beam.Pipeline()
    nums = p | "Nums" >> beam.Create([1, 2])
    doubled = nums | "Double" >> Double()
    _ = (nums, doubled) | "Both" >> beam.Flatten()
    rec = Recorder()
    p.visit(rec)
    assert rec.events == [
        "enter ",
        "visit Nums",
        "value of Nums",
        "enter Double",
        "visit Double/Times2",
        "value of Double/Times2",
        "visit Double/Plus0",
        "value of Double/Plus0",
        "leave Double",
        "visit Both",
        "value of Both",
        "leave ",
    ]


class Rename(PipelineVisitor):
    """Rewires a step's DoFn before the run (what Beam's snippets do to their reads and writes)."""

    def visit_transform(self, node: Any) -> None:
        if node.full_label.endswith("Scale"):
            node.transform.fn.factor = 10


class ScaleFn(beam.DoFn):
    factor = 1

    def process(self, x: int) -> Any:
        yield x * self.factor


def test_a_visitor_changes_the_steps_before_the_run() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create([1, 2]) | "Scale" >> beam.ParDo(ScaleFn())
        assert_that(out, equal_to([10, 20]))
        p.visit(Rename())


def test_visit_needs_a_visitor() -> None:
    with pytest.raises(TypeError, match="needs a PipelineVisitor"):
        beam.Pipeline().visit(object())  # type: ignore[arg-type]


def test_flatten_with_pcollections_and_root_transforms() -> None:
    with beam.Pipeline() as p:
        a = p | "A" >> beam.Create([1, 2])
        b = p | "B" >> beam.Create([3])
        out = a | beam.FlattenWith(b, beam.Create([4, 5]))
        assert_that(out, equal_to([1, 2, 3, 4, 5]))


def test_flatten_with_refuses_other_values() -> None:
    with pytest.raises(TypeError, match="argument 0 must be a PCollection or a PTransform, got list"):
        beam.FlattenWith([1])


class Split(beam.DoFn):
    def process(self, x: int) -> Any:
        yield x if x % 2 == 0 else TaggedOutput("odd", x)


def test_a_multi_output_pardo_applied_to_values_gives_every_output_by_tag() -> None:
    result = [1, 2, 3, 4] | beam.ParDo(Split()).with_outputs("odd", main="even")
    assert sorted(result.even) == [2, 4] and sorted(result["odd"]) == [1, 3]
    even, odd = result
    assert sorted(even) == [2, 4] and sorted(odd) == [1, 3]
    with pytest.raises(KeyError, match="no output tagged 'other'"):
        result["other"]
