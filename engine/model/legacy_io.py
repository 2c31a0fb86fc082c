"""Beam's legacy BoundedSource and Sink run through millstream's Source/Sink protocols (see `iobase.py`).

A BoundedSource becomes a bounded `Source` whose splits are the source's bundles (`split(desired_bundle_size)`),
each read with the range tracker of `get_range_tracker(start, stop)`. A bundle's checkpointed position is the
number of records already returned from it: a restored run splits the source again (Beam asks `split` to be
deterministic) and skips that many records of each bundle, so a record is neither lost nor repeated.

A Beam Sink becomes a two-phase `Sink`: each checkpoint epoch writes through one `Writer`
(`open_writer(init_result, uid)`), whose `close()` result is kept; the end of a bounded run's input calls
`pre_finalize` and `finalize_write` once with every result. The init result and the results are pickled into
each checkpoint's commit record, so a run restored from a checkpoint still finalizes the writers before it.
Writing an unbounded PCollection, there is no end of the input to wait for: each checkpoint epoch is then a
write of its own, as Beam's streaming file writes finalize each pane: `initialize_write` when the epoch's first
value arrives, one `Writer`, and `pre_finalize` / `finalize_write` of that epoch's result when its checkpoint
commits (again after a crash between the checkpoint and the commit: Beam asks `finalize_write` to be
idempotent). An epoch without values writes nothing. The Sink's calls are synchronous user code (file I/O,
renames), so they run in a worker thread, one at a time, and never stall the event loop or a checkpoint's
commit step.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import anyio

from millstream.engine.model.dofn import require_methods
from millstream.engine.model.io import Sink, SinkWriter, Source, SourceBatch, SourceReader
from millstream.engine.model.timestamp import MIN_MICROS, TimestampedValue

#: Records per batch handed to the runtime when the options do not say (``--batch_size``): user `read` code runs
#: synchronously between awaits, so a batch bounds how long the event loop waits for it.
BATCH_SIZE = 1000


class BoundedSourceAdapter(Source):
    """A Beam BoundedSource as a millstream bounded Source: one split per bundle of `desired_bundle_size`."""

    is_bounded = True

    def __init__(self, source: Any, desired_bundle_size: int) -> None:
        self.source = source
        self.desired_bundle_size = desired_bundle_size

    def validate(self) -> None:
        """Check that the source implements what reading it needs."""
        require_methods(
            self.source,
            ("split", "get_range_tracker", "read"),
            "a BoundedSource",
            f"Read({type(self.source).__name__})",
        )

    def create_reader(self, options: Any) -> SourceReader:
        """A reader of the source's bundles, one after the other, `--batch_size` records at a time."""
        batch_size = BATCH_SIZE
        if options is not None:
            from millstream.engine.model.options import MillstreamOptions

            batch_size = options.view_as(MillstreamOptions).batch_size
        return BoundedSourceReader(self.source, self.desired_bundle_size, batch_size)

    def display_name(self) -> str:
        """The Beam source's class name."""
        return type(self.source).__name__


class _Bundle:
    """One bundle being read: its records so far and the iterator over the rest."""

    def __init__(self, name: str, bundle: Any) -> None:
        self.name = name
        self.bundle = bundle
        self.done = 0  # records returned so far
        self.finished = False
        self.records: Iterator[Any] | None = None


class BoundedSourceReader(SourceReader):
    """Reads a BoundedSource's bundles in order, `batch_size` records per batch; positions count records."""

    def __init__(self, source: Any, desired_bundle_size: int, batch_size: int = BATCH_SIZE) -> None:
        if batch_size <= 0:
            raise ValueError(f"{type(source).__name__}: batch size must be positive, got {batch_size}")
        self.source = source
        self.desired_bundle_size = desired_bundle_size
        self.batch_size = batch_size
        self.bundles: list[_Bundle] = []
        self._next = 0

    async def open(self, positions: dict[str, Any] | None) -> None:
        """Split the source; with `positions`, resume every bundle after the records it already returned."""
        name = type(self.source).__name__
        try:
            bundles = list(self.source.split(self.desired_bundle_size, None, None))
        except NotImplementedError:
            bundles = []
        if not bundles:  # a source that does not split is read whole
            bundles = [_WholeSource(self.source)]
        self.bundles = [_Bundle(f"bundle-{i:05d}", b) for i, b in enumerate(bundles)]
        if positions:
            known = {b.name for b in self.bundles}
            unknown = sorted(set(positions) - known)
            if unknown:
                raise ValueError(
                    f"{name}: the checkpoint has bundles {unknown} but split({self.desired_bundle_size}) now "
                    f"gives {len(self.bundles)}; BoundedSource.split must return the same bundles every time"
                )
            for b in self.bundles:
                pos = positions.get(b.name)
                if pos is None:
                    continue
                if not isinstance(pos, dict) or "done" not in pos:
                    raise ValueError(f"{name}: bad checkpointed position for {b.name}: {pos!r}")
                b.done, b.finished = int(pos["done"]), bool(pos.get("finished", False))

    def _start(self, b: _Bundle) -> Iterator[Any]:
        """The records of bundle `b` after the ones it already returned."""
        bundle = b.bundle
        tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
        records = iter(bundle.source.read(tracker))
        for _ in range(b.done):  # resume: these were returned before the checkpoint
            if next(records, _END) is _END:
                raise ValueError(
                    f"{type(self.source).__name__}: {b.name} now has fewer records than the {b.done} "
                    "read before the checkpoint; BoundedSource.read must return the same records every time"
                )
        return records

    async def read(self) -> SourceBatch | None:
        """Up to `batch_size` records of the current bundle; None once every bundle is finished."""
        while self._next < len(self.bundles) and self.bundles[self._next].finished:
            self._next += 1
        if self._next >= len(self.bundles):
            return None
        b = self.bundles[self._next]
        if b.records is None:
            b.records = self._start(b)
        values: list[Any] = []
        stamps: list[int] | None = None
        for record in b.records:
            if isinstance(record, TimestampedValue):
                if stamps is None:
                    stamps = [MIN_MICROS] * len(values)
                stamps.append(record.micros)
                record = record.value
            elif stamps is not None:
                stamps.append(MIN_MICROS)
            values.append(record)
            if len(values) >= self.batch_size:
                break
        else:
            b.finished = True
        b.done += len(values)
        return SourceBatch(b.name, values, stamps, finished=b.finished)

    def positions(self) -> dict[str, Any]:
        """{bundle: {"done": records returned, "finished": bool}} for every bundle."""
        return {b.name: {"done": b.done, "finished": b.finished} for b in self.bundles}


_END = object()


class _WholeSource:
    """The bundle of a source whose `split` gives none: all of it, with its default positions."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.start_position = None
        self.stop_position = None


class BeamSinkAdapter(Sink):
    """A Beam legacy Sink as a millstream two-phase Sink (see the module docstring)."""

    def __init__(self, sink: Any, per_checkpoint: bool = False) -> None:
        self.sink = sink
        #: Finalize each checkpoint epoch as a write of its own (the input is unbounded).
        self.per_checkpoint = per_checkpoint

    def validate(self) -> None:
        """Check that the sink implements what writing to it needs."""
        require_methods(
            self.sink,
            ("initialize_write", "open_writer", "pre_finalize", "finalize_write"),
            "a Sink",
            f"Write({type(self.sink).__name__})",
        )

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        """A writer for one run."""
        return BeamSinkWriter(self.sink, self.per_checkpoint)

    def display_name(self) -> str:
        """The Beam sink's class name."""
        return type(self.sink).__name__


_UNSET = object()


class BeamSinkWriter(SinkWriter):
    """One Beam `Writer` per checkpoint epoch; `finalize_write` when a bounded run's input ends, or, with
    `per_checkpoint`, when each epoch's checkpoint commits."""

    def __init__(self, sink: Any, per_checkpoint: bool = False) -> None:
        self.sink = sink
        self.per_checkpoint = per_checkpoint
        self.init_result: Any = _UNSET
        self.writer: Any = None
        self.results: list[Any] = []
        self.finalized = False

    def _init(self) -> Any:
        if self.init_result is _UNSET:
            self.init_result = self.sink.initialize_write()
        return self.init_result

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        """Take the init result and the writers' results of the checkpoint restored from; finalize if it was
        the end of the input and finalizing had not finished."""
        if record is None:
            return
        if record.get("epoch"):
            # the crash may have come before its commit: finalizing is idempotent
            await anyio.to_thread.run_sync(self._finalize_epoch, record)
            return
        state = pickle.loads(record["state"])
        self.init_result, self.results = state["init"], list(state["results"])
        if record.get("final"):
            await anyio.to_thread.run_sync(self._finalize)

    async def write(self, values: list[Any]) -> None:
        """Write `values` through this epoch's writer (opened on the epoch's first value)."""
        await anyio.to_thread.run_sync(self._write, values)

    def _write(self, values: list[Any]) -> None:
        if self.writer is None:
            self.writer = self.sink.open_writer(self._init(), uuid.uuid4().hex)
        for v in values:
            self.writer.write(v)

    def _seal(self, final: bool) -> dict[str, Any]:
        """Close this epoch's writer and pickle everything finalizing needs."""
        if self.per_checkpoint:
            return self._seal_epoch(final)
        if self.writer is not None:
            self.results.append(self.writer.close())
            self.writer = None
        return {"state": self._pickled(self._init(), self.results), "final": final}

    def _seal_epoch(self, final: bool) -> dict[str, Any]:
        """Close this epoch's writer: the record holds the epoch's own init result and writer result (no state
        for an epoch without values), and the next value starts a new write."""
        if self.writer is None:
            return {"state": None, "final": final, "epoch": True}
        results = [self.writer.close()]
        self.writer = None
        init, self.init_result = self.init_result, _UNSET
        return {"state": self._pickled(init, results), "final": final, "epoch": True}

    def _pickled(self, init: Any, results: list[Any]) -> bytes:
        try:
            return pickle.dumps({"init": init, "results": results})
        except Exception as e:
            raise TypeError(
                f"Sink {type(self.sink).__name__}: initialize_write() and Writer.close() results must be "
                f"picklable to be checkpointed: {e}"
            ) from e

    def _finalize_epoch(self, record: Any) -> None:
        """Finalize the write of one epoch (per-checkpoint mode)."""
        if record.get("state") is None:
            return
        state = pickle.loads(record["state"])
        pre = self.sink.pre_finalize(state["init"], state["results"])
        _drain(self.sink.finalize_write(state["init"], state["results"], pre))

    async def prepare(self, checkpoint_id: int) -> Any:
        """Close this epoch's writer; its result waits for the end of the input."""
        return await anyio.to_thread.run_sync(self._seal, False)

    async def prepare_end_of_input(self, checkpoint_id: int) -> Any:
        """Close the last writer; committing this record finalizes the write."""
        return await anyio.to_thread.run_sync(self._seal, True)

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        """Finalize the write when `record` ends the input (once); other epochs wait for it. Per checkpoint,
        finalize this epoch's write."""
        if record.get("epoch"):
            await anyio.to_thread.run_sync(self._finalize_epoch, record)
        elif record.get("final"):
            await anyio.to_thread.run_sync(self._finalize)

    def _finalize(self) -> None:
        if self.finalized:
            return
        pre = self.sink.pre_finalize(self.init_result, self.results)
        _drain(self.sink.finalize_write(self.init_result, self.results, pre))
        self.finalized = True

    async def abort(self) -> None:
        """Drop the open writer without finalizing (Beam leaves its temporary output behind)."""
        self.writer = None


def _drain(outputs: Any) -> None:
    """Run Beam's `finalize_write` to its end: it may be a generator."""
    if isinstance(outputs, Iterator):
        for _ in outputs:
            pass
