"""Beam's `apache_beam.testing.util`: assert_that and its matchers, run inside the pipeline."""

from millstream.connectors.files.test_utils import open_shards
from millstream.engine.model.testing_util import (
    BeamAssertException,
    TestWindowedValue,
    assert_that,
    equal_to,
    equal_to_per_window,
    is_empty,
    is_not_empty,
    matches_all,
)

__all__ = [
    "BeamAssertException",
    "TestWindowedValue",
    "assert_that",
    "equal_to",
    "equal_to_per_window",
    "is_empty",
    "is_not_empty",
    "matches_all",
    "open_shards",
]
