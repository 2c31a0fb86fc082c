"""Small operators: Flatten, WindowInto, and the collecting tap used by tests and the library API."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node


class FlattenNode(Node):
    """Merges its inputs; its watermark is the minimum of theirs."""

    def push(self, index: int, batch: Batch) -> None:
        self.elements_in += len(batch.values)
        self.emit(batch)


class WindowIntoNode(Node):
    """Re-windows elements: explicit windows and panes are dropped so windows are re-derived from timestamps."""

    def __init__(self, label: str, windowing: Windowing) -> None:
        super().__init__(label)
        self.windowing = windowing

    def push(self, index: int, batch: Batch) -> None:
        self.elements_in += len(batch.values)
        if batch.wins is None and batch.panes is None:
            self.emit(batch)
        else:
            self.emit(Batch(batch.values, batch.ts))


class CollectNode(Node):
    """Collects every element it receives (values, timestamps, windows, panes) in memory."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.rows: list[tuple[Any, int, Any, Any]] = []
        self.done = False

    def push(self, index: int, batch: Batch) -> None:
        from millstream.engine.model.timestamp import MIN_MICROS

        n = len(batch.values)
        self.elements_in += n
        ts = batch.ts or [MIN_MICROS] * n
        wins = batch.wins or [None] * n
        panes = batch.panes or [None] * n
        self.rows.extend(zip(batch.values, ts, wins, panes))

    def on_input_watermark(self, micros: int) -> None:
        from millstream.engine.model.timestamp import MAX_MICROS

        if micros >= MAX_MICROS:
            self.done = True
        self.advance_output_watermark(micros)
