"""Source drivers: the task body of a source stage, pushing batches and watermarks into the stage's nodes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node


class SourceNode(Node):
    """The head of a source stage: emits what its driver reads."""

    def __init__(self, label: str) -> None:
        super().__init__(label, num_inputs=0)
        self.input_wms = []

    def push(self, index: int, batch: Batch) -> None:
        self.elements_in += len(batch.values)
        self.emit(batch)

    def source_watermark(self, micros: int) -> None:
        """Advance this source's watermark (monotonic)."""
        if micros > self.input_wm:
            self.input_wm = micros
            self.advance_output_watermark(micros)


class SourceDriver:
    """Reads a source and feeds a SourceNode; `flush` awaits the stage's channel sends (backpressure)."""

    def __init__(self, node: SourceNode) -> None:
        self.node = node

    async def run(self, flush: Callable[[], Awaitable[None]]) -> None:
        """Read everything (or until cancelled), pushing batches and watermarks."""
        raise NotImplementedError


class CreateDriver(SourceDriver):
    """Emits an in-memory list in batches; bounded, so its watermark ends at +infinity.

    Checkpointable: its position is the number of elements emitted, so a restored job does not emit them twice.
    """

    reader = None

    def __init__(self, node: SourceNode, values: list[Any], batch_size: int, plan: Any) -> None:
        super().__init__(node)
        self.values = values
        self.batch_size = max(1, batch_size)
        self.plan = plan
        self.offset = 0
        self.finished = False

    @property
    def label(self) -> str:
        """The step label."""
        return self.node.label

    def describe(self) -> str:
        """What the source is, for the state layout."""
        return f"Create({len(self.values)} elements)"

    def checkpoint_state(self) -> dict[str, Any]:
        """The position to store in a checkpoint."""
        return {"positions": {"0": self.offset}, "finished": self.finished}

    def restore(self, state: dict[str, Any] | None) -> None:
        """Resume after the elements a checkpoint already covers."""
        if state:
            self.offset = int(state["positions"]["0"])

    async def run(self, flush: Callable[[], Awaitable[None]]) -> None:
        values, size = self.values, self.batch_size
        coordinator = self.plan.coordinator
        control = self.plan.control
        while self.offset < len(values):
            if coordinator is not None:
                await coordinator.source_boundary(self, flush)
            if control is not None and await control.source_should_end():
                break
            start = self.offset
            self.offset = min(len(values), start + size)
            self.node.push(0, Batch(values[start : self.offset]))
            await flush()
            await anyio.lowlevel.checkpoint()
        self.finished = True
        self.node.source_watermark(MAX_MICROS)
        await flush()
