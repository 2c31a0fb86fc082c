"""Async nodes (`graph.capabilities.AsyncNode`: async DoFns and sinks) each start a stage of their own, and
that stage awaits their pending work after every message: the planner and the executor find them by the
protocol, once, when the job is set up."""

from __future__ import annotations

import os
from typing import Any

import millstream as beam
from millstream.engine.runtime.graph.capabilities import AsyncNode
from millstream.engine.runtime.graph.planner import plan_pipeline
from millstream.engine.runtime.operators.async_pardo import AsyncParDoNode
from millstream.engine.runtime.operators.io import SinkNode
from millstream.engine.runtime.operators.pardo import ParDoNode


async def _double(x: int) -> int:
    return 2 * x


def _pipeline(out: str) -> Any:
    p = beam.Pipeline()
    (
        p
        | "Create" >> beam.Create([1, 2, 3])
        | "Async" >> beam.Map(_double)
        | "Plus" >> beam.Map(lambda x: x + 1)
        | "Write" >> beam.io.WriteToText(out, shard_name_template="")
    )
    return p


def test_async_nodes_start_their_own_stage(tmp_path: Any) -> None:
    p = _pipeline(str(tmp_path / "out.txt"))
    plan = plan_pipeline(p, p.options)
    stage_of = {n.label: s for s in plan.stages for n in s.nodes}
    by_label = {n.label: n for s in plan.stages for n in s.nodes}
    assert isinstance(by_label["Async"], AsyncParDoNode) and isinstance(by_label["Async"], AsyncNode)
    assert isinstance(by_label["Write/Write"], SinkNode) and isinstance(by_label["Write/Write"], AsyncNode)
    assert type(by_label["Plus"]) is ParDoNode and not isinstance(by_label["Plus"], AsyncNode)
    # the async ParDo and the sink each head a stage; the plain Map fuses into the async ParDo's stage
    assert stage_of["Async"].nodes[0] is by_label["Async"]
    assert stage_of["Write/Write"].nodes[0] is by_label["Write/Write"]
    assert stage_of["Plus"] is stage_of["Async"]
    assert stage_of["Async"] is not stage_of["Create"]


def test_a_job_with_async_nodes_writes_every_element(tmp_path: Any) -> None:
    out = str(tmp_path / "out.txt")
    _pipeline(out).run().wait_until_finish()
    with open(out) as f:
        assert sorted(int(line) for line in f) == [3, 5, 7]
    assert os.path.getsize(out) > 0
