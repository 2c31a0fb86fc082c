"""Beam's runner name PrismRunner means Beam's Prism, and Beam's composites run there as they do locally."""

from __future__ import annotations

from typing import Any

import millstream as beam
from millstream.engine.model.pipeline import RUNNERS
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to


def test_prism_runner_and_a_composite_without_super_init(prism_flags: list[str]) -> None:
    """`runner="PrismRunner"` names the translation to Beam's Prism (not the local runner), and a composite
    may skip PTransform.__init__ as in Beam; it runs on the Prism job server the fixture started."""

    class Double(beam.PTransform):
        def __init__(self) -> None:  # Beam lets a composite skip PTransform.__init__
            self.factor = 2

        def expand(self, pcoll: Any) -> Any:
            return pcoll | beam.Map(lambda x: x * self.factor)

    assert RUNNERS["PrismRunner"].startswith("millstream.engine.translate.beam.runner:")
    assert Double().label == "Double"
    with beam.Pipeline(options=PipelineOptions(prism_flags)) as p:
        assert_that(p | beam.Create([1, 2]) | Double(), equal_to([2, 4]))
