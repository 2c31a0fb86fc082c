"""A completed bounded run without sinks (only `assert_that`, or side effects in DoFns) is completed too: the
next run in the same state directory computes afresh instead of resuming it."""

from __future__ import annotations

from typing import Any

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to


def _run(tmp: Any, label: str, seen: list[str]) -> None:
    (tmp / "in.txt").write_text("1\n2\n3\n")
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp / 'state'}"])) as p:
        lines = p | label >> beam.io.ReadFromText(str(tmp / "in.txt"))
        assert_that(lines | beam.Map(lambda x: seen.append(x) or x), equal_to(["1", "2", "3"]))


def test_the_same_sinkless_pipeline_twice_reads_everything_twice(tmp_path: Any) -> None:
    seen: list[str] = []
    _run(tmp_path, "Nums", seen)
    _run(tmp_path, "Nums", seen)  # a completed run is not taken for an interrupted one and resumed
    assert sorted(seen) == ["1", "1", "2", "2", "3", "3"]


def test_a_sinkless_pipeline_with_other_steps_after_a_completed_one(tmp_path: Any) -> None:
    seen: list[str] = []
    _run(tmp_path, "Nums", seen)
    _run(tmp_path, "Other", seen)  # a completed run's steps do not constrain the next run's
    assert sorted(seen) == ["1", "1", "2", "2", "3", "3"]
