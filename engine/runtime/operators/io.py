"""Runtime operators for `Read` and `Write`: the source driver (event time, watermarks, checkpoint pauses)
and the sink node (two-phase writer in its own stage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from millstream.engine.model.io import (
    ProcessingTimeReader,
    Read,
    SinkEncodeError,
    SinkWriter,
    SourceBatch,
    SourceReader,
    Write,
)
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node, raise_user_error
from millstream.engine.runtime.graph.registry import register_primitive
from millstream.engine.runtime.operators.sink_guard import GuardedSinkWriter
from millstream.engine.runtime.operators.sources import SourceDriver, SourceNode
from millstream.engine.runtime.watermarks import SplitWatermarks, source_watermarks

#: A batch whose timestamp_fn gave only ints (whole seconds): scaled exactly, without float rounding.
_ONLY_INT = frozenset((int,))


class SourceError(Exception):
    """A source could not be read; names the source and the cause."""


class ReadDriver(SourceDriver):
    """Drives a SourceReader: stamps event time, estimates the watermark per split, pauses for checkpoints."""

    def __init__(self, node: SourceNode, transform: Read, options: Any, job: Any) -> None:
        super().__init__(node)
        self.transform = transform
        self.options = options
        self.job = job
        self.reader: SourceReader | None = None
        self.restored: dict[str, Any] | None = None
        self.restored_watermark: Any = None
        self.finished = False
        self.records = 0
        self.bytes = 0
        self.bad_records = 0
        self.wm: SplitWatermarks | None = None
        self._closed = False

    @property
    def label(self) -> str:
        """The step label of the source."""
        return self.node.label

    def describe(self) -> str:
        """What the source is, for the state layout."""
        return self.transform.source.display_name()

    def signature(self) -> Any:
        """The source's input signature (None when it has none): a completed job re-reads changed inputs."""
        fn = getattr(self.transform.source, "signature", None)
        return fn() if callable(fn) else None

    def checkpoint_state(self) -> dict[str, Any]:
        """Positions and watermark state to store in a checkpoint."""
        assert self.reader is not None
        return {
            "positions": self.reader.positions(),
            "watermark": self.wm.snapshot() if self.wm is not None else None,
            "finished": self.finished,
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        """Resume from a checkpoint's record (before `run`)."""
        if state:
            self.restored = state.get("positions")
            self.restored_watermark = state.get("watermark")

    async def run(self, flush: Callable[[], Awaitable[None]]) -> None:
        from millstream.engine.model.options import StandardOptions

        streaming = bool(self.options.view_as(StandardOptions).streaming)
        t = self.transform
        batch_mode = not streaming and t.source.is_bounded
        self.wm = source_watermarks(
            batch=batch_mode,
            max_out_of_orderness_us=round(t.max_out_of_orderness * 1_000_000),
            idle_timeout_us=None if t.idle_timeout is None else round(t.idle_timeout * 1_000_000),
        )
        clock = self.job.clock
        try:
            self.reader = t.source.create_reader(self.options)
            if isinstance(self.reader, ProcessingTimeReader):
                self.reader.use_clock(clock)
            await self.reader.open(self.restored)
        except Exception as e:
            raise SourceError(f"{t.source.display_name()}: cannot open: {e}") from e
        if self.restored_watermark is not None:
            self.wm.restore(self.restored_watermark, clock.monotonic_us())
        coordinator = self.job.coordinator
        await self._read_all(flush, batch_mode, clock, coordinator)
        self.finished = True
        self.node.source_watermark(MAX_MICROS)
        await flush()

    async def _read_all(
        self, flush: Callable[[], Awaitable[None]], batch_mode: bool, clock: Any, coordinator: Any
    ) -> None:
        """Read batches until the source ends or the job stops reading."""
        assert self.reader is not None and self.wm is not None
        control = self.job.control
        while True:
            if coordinator is not None:
                await coordinator.source_boundary(self, flush)
            if control is not None and await control.source_should_end():
                break
            sb = await self.reader.read()
            if sb is None:
                break
            now = clock.monotonic_us()
            if sb.split not in self.wm:
                self.wm.add_split(sb.split, now)
            self._emit(sb, now)
            if sb.watermark_us is not None and not sb.finished and not batch_mode:
                # the split's promise: nothing earlier follows
                self.wm.observe(sb.split, sb.watermark_us, now)
            if sb.finished and not self.wm.is_finished(sb.split):
                self.wm.finish_split(sb.split)
            if not batch_mode:
                self.node.source_watermark(self.wm.current(now))
            await flush()
            await anyio.lowlevel.checkpoint()

    def _emit(self, sb: SourceBatch, now: int) -> None:
        values = sb.values
        ts = sb.timestamps
        fn = self.transform.timestamp_fn
        errors = list(sb.errors)
        if fn is not None and values:
            try:
                raw = [fn(v) for v in values]
                if set(map(type, raw)) == _ONLY_INT:  # whole seconds: exact, no float rounding
                    ts = [t * 1_000_000 for t in raw]
                else:
                    scaled = [t * 1_000_000.0 for t in raw]
                    ts = [
                        int(m + 0.5) if m >= 0 else -int(0.5 - m) for m in scaled
                    ]  # nearest µs, cheaper than round
            except Exception:
                ts, values, errors = self._stamp_slowly(values, fn, errors, sb.split)
        self.records += len(values)
        self.bytes += sb.nbytes
        if values:
            if ts is not None and self.wm is not None:
                self.wm.observe_batch(sb.split, ts, now)
            self.node.push(0, Batch(values, ts))
        if errors:
            self.bad_records += len(errors)
            tag = self.transform.dead_letter_tag
            if tag is not None:
                self.node.emit(Batch(errors), tag)
            else:
                self._dead_letters_elsewhere(errors)

    def _dead_letters_elsewhere(self, errors: list[dict[str, Any]]) -> None:
        """Bad records of a source without a dead-letter output: to the `--dead_letters` file, or fail."""
        from millstream.engine.model.options import MillstreamOptions
        from millstream.engine.runtime.operators.dead_letter_file import dead_letter_file

        path = self.options.view_as(MillstreamOptions).dead_letters
        if path:
            dead_letter_file(path).append(self.label, errors)
            return
        first = errors[0]
        where = ", ".join(f"{k}={first[k]!r}" for k in ("file", "line", "offset") if k in first)
        raise_user_error(
            self.label,
            first.get("raw", first),
            ValueError(
                f"bad record ({where}): {first.get('reason')}; "
                "use .with_dead_letters() to route bad records instead of failing, "
                "or run with --dead_letters PATH to write every source's bad records to a file"
            ),
        )

    def _stamp_slowly(
        self, values: list[Any], fn: Any, errors: list[dict[str, Any]], split: str
    ) -> tuple[list[int], list[Any], list[dict[str, Any]]]:
        good: list[Any] = []
        ts: list[int] = []
        for v in values:
            try:
                ts.append(round(fn(v) * 1_000_000))
                good.append(v)
            except Exception as e:
                errors.append(
                    {"split": split, "raw": v, "reason": f"bad event time: {type(e).__name__}: {e}"}
                )
        return ts, good, errors

    async def close(self) -> None:
        """Close the reader (once; the executor calls it after the job's last checkpoint, which still needs
        the reader's positions and its acknowledgements)."""
        if self.reader is not None and not self._closed:
            self._closed = True
            await self.reader.close()


class SinkNode(Node):
    """Writes its input through a two-phase SinkWriter; its stage awaits `run_pending` after each message (an
    `AsyncNode`)."""

    def __init__(self, label: str, transform: Write, options: Any, job: Any) -> None:
        super().__init__(label)
        self.transform = transform
        # I/O errors of every sink then name this step and the path
        self.writer: SinkWriter = GuardedSinkWriter(label, transform.sink.create_writer(options, job))
        self.buffer: list[Any] = []
        self.opened = False

    def push(self, index: int, batch: Batch) -> None:
        self.elements_in += len(batch.values)
        self.buffer.extend(batch.values)

    async def run_pending(self) -> None:
        """Write buffered values."""
        if self.buffer:
            values, self.buffer = self.buffer, []
            try:
                await self.writer.write(values)
            except SinkEncodeError as e:
                raise_user_error(self.label, e.element, e.__cause__ or e)

    def on_input_watermark(self, micros: int) -> None:
        self.output_wm = micros


def _make_read(applied: Any, opts: Any, plan: Any) -> tuple[SourceNode, ReadDriver]:
    node = SourceNode(applied.full_label)
    return node, ReadDriver(node, applied.transform, plan.options, plan)


def _make_write(applied: Any, opts: Any, plan: Any) -> tuple[SinkNode, None]:
    return SinkNode(applied.full_label, applied.transform, plan.options, plan), None


register_primitive(Read, _make_read)
register_primitive(Write, _make_write)
