"""`io.ReadAllFromText`: the lines of the files each element names, with the element's timestamp."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import window


def test_lines_of_every_matched_file_keep_the_patterns_timestamp(tmp_path: Any) -> None:
    (tmp_path / "a1.txt").write_text("x\ny\n")
    (tmp_path / "a2.txt").write_text("z\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write("head\ng\n")
    with beam.Pipeline() as p:
        patterns = p | beam.Create([(str(tmp_path / "a*.txt"), 10), (str(tmp_path / "b.txt.gz"), 20)])
        stamped = patterns | beam.MapTuple(lambda pat, t: window.TimestampedValue(pat, t))
        lines = stamped | beam.io.ReadAllFromText()
        out = lines | beam.Map(lambda line, ts=beam.DoFn.TimestampParam: (line, float(ts)))
        assert_that(out, equal_to([("x", 10.0), ("y", 10.0), ("z", 10.0), ("head", 20.0), ("g", 20.0)]))


def test_with_filename_and_skipped_header(tmp_path: Any) -> None:
    path = tmp_path / "h.csv"
    path.write_text("name\nann\nbob\n")
    with beam.Pipeline() as p:
        out = p | beam.Create([str(path)]) | beam.io.ReadAllFromText(skip_header_lines=1, with_filename=True)
        assert_that(out, equal_to([(str(path), "ann"), (str(path), "bob")]))


def test_a_missing_file_fails_naming_it(tmp_path: Any) -> None:
    with pytest.raises(Exception, match="nope.txt: no such file"):
        with beam.Pipeline() as p:
            _ = p | beam.Create([str(tmp_path / "nope.txt")]) | beam.io.ReadAllFromText()
