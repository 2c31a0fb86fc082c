"""Plays a TestStream on the production runtime: one bundle per element event, watermark advances, and
advances of the job's FakeClock; the next event is played only when the whole pipeline is quiescent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from millstream.engine.model.test_stream import ElementEvent, ProcessingTimeEvent, TestStream, WatermarkEvent
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.registry import register_primitive
from millstream.engine.runtime.operators.sources import SourceDriver, SourceNode


class TestStreamDriver(SourceDriver):
    """Feeds a TestStream's events into its source node."""

    __test__ = False

    def __init__(self, node: SourceNode, transform: TestStream, clock: FakeClock, plan: Any) -> None:
        super().__init__(node)
        self.plan = plan
        self.transform = transform
        self.clock = clock

    async def run(self, flush: Callable[[], Awaitable[None]]) -> None:
        events = self.transform.events
        control = self.plan.control
        coordinator = self.plan.coordinator
        for i, event in enumerate(events):
            if coordinator is not None and coordinator.holding:
                # not a checkpointed source (a TestStream cannot be replayed), but beside one it must not touch
                # operator state while a checkpoint collects it in its worker thread
                await coordinator.wait_resumed()
            if control is not None and await control.source_should_end():
                break
            self.transform.event_index = i
            if isinstance(event, ElementEvent):
                tvs = event.timestamped_values
                if tvs:
                    self.node.push(0, Batch([tv.value for tv in tvs], [tv.micros for tv in tvs]))
            elif isinstance(event, WatermarkEvent):
                self.node.source_watermark(event.micros)
            elif isinstance(event, ProcessingTimeEvent):
                self.clock.advance(event.micros)
            await flush()
            await anyio.wait_all_tasks_blocked()
        self.transform.event_index = len(events)
        self.node.source_watermark(MAX_MICROS)
        await flush()


def _make_test_stream(applied: Any, opts: Any, plan: Any) -> tuple[SourceNode, TestStreamDriver]:
    if not isinstance(plan.clock, FakeClock):
        plan.clock = FakeClock(0)
    node = SourceNode(applied.full_label)
    return node, TestStreamDriver(node, applied.transform, plan.clock, plan)


register_primitive(TestStream, _make_test_stream)
