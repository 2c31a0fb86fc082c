"""TestPipeline behaves as Beam's: options from --test-pipeline-options, blocking run, runs on exit."""

from __future__ import annotations

import unittest

import pytest

import millstream as beam
from millstream.options.pipeline_options import StandardOptions
from millstream.testing.test_pipeline import TestPipeline
from millstream.testing.util import assert_that, equal_to


def test_options_come_from_test_pipeline_options() -> None:
    p = TestPipeline(argv=["prog", "--test-pipeline-options=--runner=DirectRunner --job_name='a b'"])
    assert p.options_list == ["--runner=DirectRunner", "--job_name=a b"]
    assert p.get_pipeline_options().view_as(StandardOptions).runner == "DirectRunner"
    assert p.get_option("job_name") == "a b"
    assert p.get_option("missing") is None


def test_full_options_as_args_appends_extra_options() -> None:
    p = TestPipeline(argv=["--test-pipeline-options=--runner=DirectRunner"])
    args = p.get_full_options_as_args(output="/tmp/out", streaming=True, skipped=None)
    assert args == ["--runner=DirectRunner", "--output=/tmp/out", "--streaming"]


def test_integration_test_without_options_is_skipped() -> None:
    with pytest.raises(unittest.SkipTest):
        TestPipeline(argv=[], is_integration_test=True)


def test_runs_on_exit_and_checks_assertions() -> None:
    with pytest.raises(Exception, match="Failed assert"):
        with TestPipeline(argv=[]) as p:
            assert_that(p | beam.Create([1, 2]), equal_to([1, 2, 3]))


def test_blocking_run_returns_a_done_result() -> None:
    p = TestPipeline(argv=[], additional_pipeline_args=["--job_name=tp"])
    assert_that(p | beam.Create([1, 2]) | beam.Map(lambda x: x * 10), equal_to([10, 20]))
    result = p.run()
    assert result.state == "DONE"
    assert p.get_option("job_name") == "tp"
