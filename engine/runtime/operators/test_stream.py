"""Plays a TestStream on the production runtime: one bundle per element event, watermark advances, and
advances of the job's FakeClock; the next event is played only when the whole pipeline is quiescent (after the
last one, the clock runs on to the held timers of lingering steps, at most `MAX_CLOCK_JUMPS` times). A stream
whose events name tags has one output per tag, each with its own watermark (`TaggedTestStreamNode`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from millstream.engine.model.test_stream import ElementEvent, ProcessingTimeEvent, TestStream, WatermarkEvent
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.capabilities import LingeringNode
from millstream.engine.runtime.graph.registry import register_primitive
from millstream.engine.runtime.operators.sources import SourceDriver, SourceNode

#: How many times, after a TestStream's last event, the fake clock may jump to the next timer of a lingering
#: step. A splittable DoFn that defers an unbounded restriction forever never finishes (in Beam too its hold
#: keeps the watermark from the end, so the job never ends); past this many jumps the job fails naming the
#: lingering steps instead of spinning forever (a jump, with the pipeline quiescent after it, costs about
#: 0.1 s here: the cap bounds such a job to minutes).
MAX_CLOCK_JUMPS = 1_000


class TaggedTestStreamNode(SourceNode):
    """The source node of a tagged TestStream: output tag -> its own elements and watermark (as in Beam)."""

    __test__ = False

    def __init__(self, label: str, tags: list[str]) -> None:
        super().__init__(label)
        self.tag_wms = dict.fromkeys(tags, MIN_MICROS)

    def push_tagged(self, tag: str, batch: Batch) -> None:
        """Emit one bundle on output `tag`."""
        self.elements_in += len(batch.values)
        self.emit(batch, tag)

    def tag_watermark(self, tag: str, micros: int) -> None:
        """Advance output `tag`'s watermark (monotonic); the node's own is the minimum over its outputs."""
        if micros <= self.tag_wms[tag]:
            return
        self.tag_wms[tag] = micros
        for node, index in self.consumers.get(tag, ()):
            node.watermark(index, micros)
        self.input_wm = self.output_wm = min(self.tag_wms.values())


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
            node = self.node
            if isinstance(event, ElementEvent):
                tvs = event.timestamped_values
                if tvs:
                    batch = Batch([tv.value for tv in tvs], [tv.micros for tv in tvs])
                    if isinstance(node, TaggedTestStreamNode):
                        node.push_tagged(str(event.tag), batch)
                    else:
                        node.push(0, batch)
            elif isinstance(event, WatermarkEvent):
                if isinstance(node, TaggedTestStreamNode):
                    node.tag_watermark(str(event.tag), event.micros)
                else:
                    node.source_watermark(event.micros)
            elif isinstance(event, ProcessingTimeEvent):
                self.clock.advance(event.micros)
            await flush()
            await anyio.wait_all_tasks_blocked()
        self.transform.event_index = len(events)
        if isinstance(self.node, TaggedTestStreamNode):
            for tag in self.node.tag_wms:
                self.node.tag_watermark(tag, MAX_MICROS)
        self.node.source_watermark(MAX_MICROS)
        await flush()
        await self._run_out_the_clock()

    async def _run_out_the_clock(self) -> None:
        """After the last event, processing time runs on by itself: while a step lingers on held timers (a
        splittable DoFn's deferred residual, a periodic sequence), the fake clock jumps to the next timer once
        the pipeline is quiescent, so the job ends as it would on the system clock, only without waiting. After
        `MAX_CLOCK_JUMPS` jumps (a restriction deferred forever), the job fails naming the lingering steps."""
        await anyio.wait_all_tasks_blocked()
        jumps = 0
        while lingering := self._lingering():
            deadline = self.clock.next_deadline()
            if deadline is None:
                return  # nothing sleeps on the clock: no timer to jump to
            if jumps >= MAX_CLOCK_JUMPS:
                raise RuntimeError(
                    f"TestStream '{self.node.label}': after its last event the fake clock jumped to the next "
                    f"timer {jumps} times and step(s) {', '.join(repr(n) for n in lingering)} still hold "
                    "deferred work (a splittable DoFn deferring its restriction forever, e.g. an unbounded "
                    "one, never finishes: in Beam its watermark hold keeps the job from ending too); finish "
                    "or truncate the restriction, or end the job with a drain"
                )
            jumps += 1
            self.clock.set(max(deadline, self.clock.now_us()))
            await anyio.wait_all_tasks_blocked()

    def _lingering(self) -> list[str]:
        """The labels of the steps lingering on held timers."""
        labels: list[str] = []
        for stage in self.plan.stages:
            for node in stage.nodes:
                label: str = node.label
                if isinstance(node, LingeringNode) and node.lingers():
                    labels.append(label)
        return labels


def _make_test_stream(applied: Any, opts: Any, plan: Any) -> tuple[SourceNode, TestStreamDriver]:
    if not isinstance(plan.clock, FakeClock):
        plan.clock = FakeClock(0)
    t = applied.transform
    # a tagged stream's outputs are keyed by str(tag) in the graph ("None" for the untagged events)
    node: SourceNode
    if t.tagged:
        node = TaggedTestStreamNode(applied.full_label, [str(tag) for tag in t.output_tags])
    else:
        node = SourceNode(applied.full_label)
    return node, TestStreamDriver(node, t, plan.clock, plan)


register_primitive(TestStream, _make_test_stream)
