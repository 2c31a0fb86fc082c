"""The async ParDo operator: `async def process` (or an async Map/FlatMap callable) with bounded concurrency.

Each batch is one bundle: up to `concurrency` elements are in flight at once (a fixed pool of worker tasks per
batch, not a task per element), and outputs are emitted in input order. Watermarks wait behind the batches
that precede them.
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio

from millstream.engine.model.core import CallableWrapperDoFn, ParDo
from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.timestamp import MIN_MICROS
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import raise_user_error
from millstream.engine.runtime.operators.pardo import ParDoNode, _Outputs


class AsyncParDoNode(ParDoNode):
    """Runs an async DoFn; the owning stage awaits `run_pending()` after each message (an `AsyncNode`)."""

    def __init__(
        self,
        label: str,
        transform: ParDo,
        windowing: Windowing,
        side_windowings: list[Windowing],
        concurrency: int,
    ) -> None:
        super().__init__(label, transform, windowing, side_windowings)
        self.fast = False
        self.concurrency = max(1, concurrency)
        self.queue: list[Batch] = []
        self.deferred_wm: int | None = None

    def process(self, batch: Batch) -> None:
        self.queue.append(batch)

    def on_input_watermark(self, micros: int) -> None:
        if all(self.side_done):
            self.deferred_wm = micros

    async def run_pending(self) -> None:
        """Process queued batches, then release a deferred watermark."""
        while self.queue:
            batch = self.queue.pop(0)
            await self._process_async(batch)
        if self.deferred_wm is not None:
            wm, self.deferred_wm = self.deferred_wm, None
            if self.windowed_sides:
                self.sides.evict(wm)  # every batch before this watermark has run with its views
            self.advance_output_watermark(wm)

    async def _call(self, v: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        fn = self.dofn
        if isinstance(fn, CallableWrapperDoFn):
            kind = fn.kind
            target = fn.fn
            call_args = (*v, *args) if kind in ("maptuple", "flatmaptuple") else (v, *args)
            res = target(*call_args, **kwargs)
            if inspect.isasyncgen(res):
                got = [o async for o in res]
            else:
                got = await res
                if kind in ("map", "maptuple"):
                    return [got]
                if kind == "filter":
                    return [v] if got else []
            return list(got) if kind != "filter" else ([v] if got else [])
        res = fn.process(v, *args, **kwargs)
        if inspect.isasyncgen(res):
            return [o async for o in res]
        if inspect.isawaitable(res):
            res = await res
        return [] if res is None else list(res)

    async def _process_async(self, batch: Batch) -> None:
        set_current_step(self.label)
        if self.has_start_bundle:
            self._call_user(self.dofn.start_bundle, "<start_bundle>")
        windowed_sides = self.windowed_sides
        if windowed_sides and batch.wins is None and not self.windows.is_global:
            batch = self._with_windows(batch)  # a windowed side input is seen in each element's window
        vals = batch.values
        n = len(vals)
        results: list[Any] = [None] * n
        errors: list[BaseException | None] = [None] * n
        eh = self.exception_handling
        kwargs_base = self._resolved_kwargs
        indices = iter(range(n))

        async def worker() -> None:
            for i in indices:
                t = batch.timestamp(i)
                args, kwargs = self._resolved_args, kwargs_base
                if windowed_sides:
                    main_window = batch.wins[i] if batch.wins is not None else self.windows.assign_one(t)
                    args, kwargs = self._side_args_for(main_window)
                if self.markers:
                    kwargs = dict(kwargs)
                    w = batch.wins[i] if batch.wins is not None else None
                    p = batch.panes[i] if batch.panes is not None else None
                    for name, marker in self.markers.items():
                        kwargs[name] = self._marker_value(marker, vals[i], t, w, p)
                try:
                    results[i] = await self._call(vals[i], args, kwargs)
                except Exception as e:
                    if eh is None or not isinstance(e, eh.exc_class):
                        raise_user_error(self.label, vals[i], e)
                    errors[i] = e

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(min(self.concurrency, n)):
                    tg.start_soon(worker)
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        outputs: dict[str | None, _Outputs] = {None: _Outputs()}
        for i in range(n):
            t = MIN_MICROS if batch.ts is None else batch.ts[i]
            w = batch.wins[i] if batch.wins is not None else None
            p = batch.panes[i] if batch.panes is not None else None
            err = errors[i]
            if err is not None:
                self._dead_letter(outputs, vals[i], err, t, w, p)
                continue
            self._collect(results[i], outputs, t, w, p)
        for tag, cols in outputs.items():
            if cols.values:
                self.emit(self._columns_to_batch(cols, batch), tag)
        if self.has_finish_bundle:
            self._finish_bundle()
