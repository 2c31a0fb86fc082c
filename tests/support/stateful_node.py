"""The stateful ParDo operator driven directly by node-level tests: build one with a collecting sink, feed
it (key, value, seconds) elements.

Example::

    >>> batch(("k", 1, 2.5)).ts
    [2500000]
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node
from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode

__all__ = ["S", "Sink", "batch", "make"]

#: One second in the engine's microseconds.
S = 1_000_000


class Sink(Node):
    """Collects what a node emits: (value, timestamp) pairs and output watermarks."""

    def __init__(self) -> None:
        super().__init__("sink")
        self.out: list[tuple[Any, int]] = []
        self.wms: list[int] = []

    def push(self, index: int, batch: Batch) -> None:
        """Collect a batch's (value, timestamp) pairs."""
        assert batch.ts is not None
        self.out.extend(zip(batch.values, batch.ts))

    def on_input_watermark(self, micros: int) -> None:
        """Collect the watermark."""
        self.wms.append(micros)


def make(fn: DoFn, windowing: Windowing) -> tuple[StatefulParDoNode, Sink]:
    """An opened stateful ParDo node of `fn` connected to a collecting sink."""
    node = StatefulParDoNode("Stateful", ParDo(fn), windowing, [])
    sink = Sink()
    node.connect(sink, 0)
    node.open()
    return node, sink


def batch(*elements: tuple[Any, Any, float]) -> Batch:
    """A batch of (key, value) elements at timestamps given in seconds."""
    return Batch([(k, v) for k, v, _ in elements], [round(t * S) for _, _, t in elements])
