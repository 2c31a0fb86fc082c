"""`RowTypeConstraint` (``apache_beam.typehints.row_type``): built from fields or a NamedTuple, checking rows,
and accepted as a transform's output type as in Beam's managed-IO snippet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to
from millstream.typehints.row_type import RowTypeConstraint
from millstream.utils.timestamp import Timestamp

INNER = RowTypeConstraint.from_fields([("nested_field", str), ("nested_field2", int)])
OUTER = RowTypeConstraint.from_fields(
    [("int_field", int), ("long_field", np.int64), ("array_field", Sequence[int]), ("struct_field", INNER)]
)


def test_a_row_with_the_declared_fields_passes_and_a_wrong_one_names_the_field() -> None:
    row = beam.Row(
        int_field=1,
        long_field=2,
        array_field=[1, 2],
        struct_field=beam.Row(nested_field="a", nested_field2=3),
    )
    OUTER.type_check(row)
    bad = beam.Row(
        int_field=1, long_field=2, array_field=[1], struct_field=beam.Row(nested_field=5, nested_field2=3)
    )
    with pytest.raises(TypeError, match="field struct_field: .*field nested_field: expected str, got int 5"):
        OUTER.type_check(bad)
    with pytest.raises(TypeError, match="has no field 'struct_field'"):
        OUTER.type_check(beam.Row(int_field=1, long_field=2, array_field=[]))


class Point(NamedTuple):
    x: int
    y: float


def test_from_user_type_and_equality_and_repr() -> None:
    rt = RowTypeConstraint.from_user_type(Point)
    assert rt == RowTypeConstraint.from_fields([("x", int), ("y", float)]) and rt is not None
    assert rt.user_type is Point and rt.get_type_for("y") is float
    assert repr(rt) == "Row(x=int, y=float)"
    assert RowTypeConstraint.from_user_type(int) is None
    with pytest.raises(ValueError, match="duplicate field names"):
        RowTypeConstraint.from_fields([("a", int), ("a", str)])


def test_as_output_type_of_a_transform() -> None:
    with beam.Pipeline() as p:
        rows = p | beam.Create([beam.Row(t=Timestamp(4, 5), n=1)]).with_output_types(
            RowTypeConstraint.from_fields([("t", Timestamp), ("n", int)])
        )
        assert_that(rows | beam.Map(lambda r: r.n), equal_to([1]))
