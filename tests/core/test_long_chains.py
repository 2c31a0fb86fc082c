"""Long fused chains: any number of single-input steps runs, without overflowing Python's stack."""

from __future__ import annotations

import millstream as beam
from millstream.engine.model.options import PipelineOptions
from millstream.engine.runtime.graph.planner import MAX_FUSED_DEPTH, plan_pipeline
from millstream.testing.util import assert_that, equal_to


def _chain(p: beam.Pipeline, steps: int) -> beam.PCollection:
    pc = p | beam.Create(list(range(100)))
    for i in range(steps):
        pc = pc | f"Step{i}" >> beam.Map(lambda x: x + 1)
    return pc


def test_a_chain_of_1000_map_steps_runs():
    # Before the planner bounded fusion depth this failed with RecursionError around step 160.
    with beam.Pipeline() as p:
        assert_that(_chain(p, 1000), equal_to([x + 1000 for x in range(100)]))


def test_a_long_chain_into_a_windowed_aggregation_fires_every_window():
    # Watermarks travel the same recursive path as batches: the windows must still close at the end.
    with beam.Pipeline() as p:
        pc = _chain(p, 450) | "Stamp" >> beam.Map(lambda x: beam.window.TimestampedValue(("k", x), x))
        sums = (
            pc
            | beam.WindowInto(beam.window.FixedWindows(100))
            | beam.CombinePerKey(sum)
            | beam.Map(lambda kv: kv[1])
        )
        assert_that(sums, equal_to([sum(range(450, 500)), sum(range(500, 550))]))


def test_short_chains_stay_in_one_stage_and_long_ones_are_cut_at_the_bound():
    p = beam.Pipeline()
    _chain(p, MAX_FUSED_DEPTH - 1)  # with Create: exactly MAX_FUSED_DEPTH nodes
    assert len(plan_pipeline(p, PipelineOptions()).stages) == 1

    p = beam.Pipeline()
    _chain(p, 3 * MAX_FUSED_DEPTH)
    plan = plan_pipeline(p, PipelineOptions())
    chains = [[n for n in s.nodes if not n.label.count("->")] for s in plan.stages]
    assert len(plan.stages) == 4
    assert max(len(c) for c in chains) == MAX_FUSED_DEPTH
