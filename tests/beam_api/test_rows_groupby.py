"""`beam.Row`, `beam.GroupBy` (keys from fields and expressions, `aggregate_field`) and `beam.Select`, as pipelines."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to
from millstream.transforms.combiners import MeanCombineFn

GROCERIES = [
    beam.Row(recipe="pie", fruit="apple", quantity=2, unit_price=1.0),
    beam.Row(recipe="pie", fruit="blueberry", quantity=1, unit_price=3.0),
    beam.Row(recipe="muffin", fruit="blueberry", quantity=4, unit_price=3.0),
]


def _as_tuple(k: Any, v: Any) -> tuple[Any, list[Any]]:
    return tuple(k) if isinstance(k, tuple) else k, sorted(x.fruit for x in v)


def test_row_equality_order_hash_and_pickling() -> None:
    row = beam.Row(a=1, b="x")
    assert row == beam.Row(a=1, b="x") and row != beam.Row(b="x", a=1) and row != (1, "x")
    assert (
        hash(row) == hash(beam.Row(a=1, b="x"))
        and list(row) == [1, "x"]
        and row.as_dict() == {"a": 1, "b": "x"}
    )
    assert pickle.loads(pickle.dumps(row)) == row
    assert repr(row) == "Row(a=1, b='x')"


def test_group_by_one_field_keys_by_its_value() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create(GROCERIES) | beam.GroupBy("recipe") | beam.MapTuple(_as_tuple)
        assert_that(out, equal_to([("pie", ["apple", "blueberry"]), ("muffin", ["blueberry"])]))


def test_group_by_several_expressions_keys_by_a_named_tuple() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(GROCERIES)
            | beam.GroupBy("recipe", berry=lambda r: "berry" in r.fruit)
            | beam.MapTuple(lambda k, v: (k.recipe, k.berry, k._fields, len(v)))
        )
        assert_that(
            out,
            equal_to(
                [
                    ("pie", False, ("recipe", "berry"), 1),
                    ("pie", True, ("recipe", "berry"), 1),
                    ("muffin", True, ("recipe", "berry"), 1),
                ]
            ),
        )


def test_group_by_aggregate_fields_per_key_and_globally() -> None:
    with beam.Pipeline() as p:
        rows = p | beam.Create(GROCERIES)
        per_key = rows | "PerKey" >> beam.GroupBy("fruit").aggregate_field(
            "quantity", sum, "total"
        ).aggregate_field(lambda r: r.quantity * r.unit_price, max, "top")
        assert_that(
            per_key | "AsRows" >> beam.Map(lambda r: beam.Row(**r._asdict())),
            equal_to(
                [beam.Row(fruit="apple", total=2, top=2.0), beam.Row(fruit="blueberry", total=5, top=12.0)]
            ),
            label="per key",
        )
        overall = rows | "Global" >> beam.GroupBy().aggregate_field("unit_price", MeanCombineFn(), "mean")
        assert_that(
            overall | "Mean" >> beam.Map(lambda r: round(r.mean, 6)),
            equal_to([round(7 / 3, 6)]),
            label="global",
        )


def test_group_by_rejects_a_field_that_is_neither_name_nor_callable() -> None:
    with pytest.raises(TypeError, match="field expression 3 at 0 must be a callable or a string"):
        beam.GroupBy(3)


def test_select_makes_rows() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create(GROCERIES[:1]) | beam.Select("fruit", double=lambda r: r.quantity * 2)
        assert_that(out, equal_to([beam.Row(fruit="apple", double=4)]))
