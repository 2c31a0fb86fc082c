"""Source drivers: the task body of a source stage, pushing batches and watermarks into the stage's nodes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.batch import Batch
from millstream.engine.runtime.node import Node


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
    """Emits an in-memory list in batches; bounded, so its watermark ends at +infinity."""

    def __init__(self, node: SourceNode, values: list[Any], batch_size: int) -> None:
        super().__init__(node)
        self.values = values
        self.batch_size = max(1, batch_size)

    async def run(self, flush: Callable[[], Awaitable[None]]) -> None:
        values, size = self.values, self.batch_size
        for start in range(0, len(values), size):
            self.node.push(0, Batch(values[start : start + size]))
            await flush()
            await anyio.lowlevel.checkpoint()
        self.node.source_watermark(MAX_MICROS)
        await flush()
