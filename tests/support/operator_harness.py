"""An in-process harness for one windowed operator (Flink's operator test harness is the model).

`OperatorHarness` drives a `ReducerNode` (engine/runtime/windowing/operator.py) on a fake clock: it feeds
bundles, watermarks and processing time, collects the panes (and the dropped late data) it emits, and at any
point takes a checkpoint through the real checkpoint machinery (`checkpoint.incremental.IncrementalNodes`:
the reducer's incremental records in a `StateTier`, committed by a `CheckpointStore` over a state backend).
`crash_and_restore` throws the operator away, reopens the backend and restores the latest checkpoint into a
fresh operator, whose clock resumes at the checkpoint's processing time; the output emitted after that
checkpoint is discarded, as an exactly-once sink would. Only the operator's and the checkpointer's public
methods are used.

Example::

    >>> from millstream.engine.model.window import FixedWindows
    >>> from millstream.engine.model.windowing import Windowing
    >>> h = OperatorHarness(Windowing(FixedWindows(10)), memory_backend())
    >>> h.elements([("a", 1, 2_000_000), ("a", 2, 3_000_000)])
    >>> cid = h.checkpoint()
    >>> h.crash_and_restore()
    1
    >>> h.finish()
    >>> [(p.key, p.value) for p in h.panes()]
    [('a', 3)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.checkpoint.incremental import IncrementalNodes
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node
from millstream.engine.runtime.windowing.drain_frontier import capture_frontiers, restore_frontiers
from millstream.engine.runtime.windowing.operator import ReducerNode
from millstream.state import CheckpointStore, MemoryBackend, RocksDBBackend, StateBackend

__all__ = ["Event", "OperatorHarness", "Pane", "SumFn", "feed", "memory_backend", "rocksdb_backend", "run"]

#: The side output of dropped late data.
LATE = "late"
#: Processing time added before the end of input, so every processing-time trigger fires (as in driver.py).
END_PROCESSING_TIME_ADVANCE_US = 10**12


def memory_backend() -> Callable[[], StateBackend]:
    """Opens an in-memory backend; each call "reopens" the same data (what survives a crash)."""
    data: dict[bytes, bytes] = {}
    return lambda: MemoryBackend(data)


def rocksdb_backend(path: str) -> Callable[[], StateBackend]:
    """Opens the RocksDB store in the folder `path` (files on disk); each call reopens it."""
    return lambda: RocksDBBackend(path, create=True)


class SumFn(CombineFn):
    """Sums integers: the default aggregation of the harness."""

    def create_accumulator(self) -> int:
        """Zero."""
        return 0

    def add_input(self, acc: int, value: int) -> int:
        """Add one value."""
        return acc + value

    def merge_accumulators(self, accs: Iterable[int]) -> int:
        """Add partial sums."""
        return sum(accs)

    def extract_output(self, acc: int) -> int:
        """The sum."""
        return acc


@dataclass(frozen=True, order=True)
class Pane:
    """One emitted element: a pane (`tag` None) or dropped late data (`tag` "late")."""

    tag: str
    key: Any
    value: Any
    timestamp: int
    window: str
    pane: str


class _Collector(Node):
    """Records what the operator emits on one of its outputs."""

    def __init__(self, tag: str | None, out: list[Pane]) -> None:
        super().__init__(f"collect[{tag}]")
        self.tag = tag
        self.out = out

    def push(self, index: int, batch: Batch) -> None:
        """Record every element of the batch."""
        for i, kv in enumerate(batch.values):
            key, value = kv if self.tag is None else (None, kv)
            win = repr(batch.wins[i]) if batch.wins is not None else ""
            pane = repr(batch.panes[i]) if batch.panes is not None else ""
            ts = batch.ts[i] if batch.ts is not None else 0
            self.out.append(Pane(self.tag or "", key, _canonical(value), ts, win, pane))


def _canonical(value: Any) -> Any:
    """Lists (GroupByKey's collected values) compare as sorted tuples: their order is not part of the pane."""
    if isinstance(value, list | tuple):
        return tuple(sorted((_canonical(v) for v in value), key=repr))
    return value


class OperatorHarness:
    """Drives one `ReducerNode` in-process, with checkpoints and restores through the real machinery."""

    LABEL = "windowed"

    def __init__(
        self,
        windowing: Windowing,
        open_backend: Callable[[], StateBackend],
        *,
        combine_fn: Callable[[], Any] = SumFn,
        cache_entries: int = 16,
        keep: int = 2,
        state_dir: str | None = None,
        start_us: int = 0,
        sync: bool = False,
    ) -> None:
        self.windowing = windowing
        self.open_backend = open_backend
        self.combine_fn = combine_fn
        self.cache_entries = cache_entries
        self.keep = keep
        #: Where a durable backend's spill area goes (None: in memory).
        self.state_dir = state_dir
        self.start_us = start_us
        #: Sync each checkpoint's write (as the coordinator does). Off by default: a crash here is a lost
        #: process, not a lost machine, so an fsync changes nothing the tests observe and costs the most time.
        self.sync = sync
        #: Everything emitted and still standing (output after the restored checkpoint is discarded).
        self.output: list[Pane] = []
        #: Checkpoints committed, restores done, and the reducer classes (paths) the operator ran on.
        self.checkpoints = 0
        self.restores = 0
        self.reducer_classes: set[str] = set()
        self._next_id = 1
        self._evicted = 0
        self._open(start_us)

    # -- wiring -----------------------------------------------------------------------------------------
    def _open(self, now_us: int, backend: StateBackend | None = None) -> None:
        self.backend = backend if backend is not None else self.open_backend()
        self.store = CheckpointStore(self.backend, keep=self.keep)
        self.clock = FakeClock(now_us)
        self.node = ReducerNode(self.LABEL, self.combine_fn(), self.windowing, self.clock, late_tag=LATE)
        for tag in (None, LATE):
            self.node.connect(_Collector(tag, self.output), 0, tag)
        self.incremental = IncrementalNodes(
            [self.node],
            self.backend,
            self.state_dir or "",
            memory=self.state_dir is None,
            cache_entries=self.cache_entries,
        )
        self.node.open()
        self.reducer_classes.add(type(self.node.reducer).__name__)

    def close(self) -> None:
        """Close the operator, its spill area and the backend."""
        self._evicted += self.evicted_now()
        self.node.close()
        self.incremental.close()
        self.backend.close()

    def evicted_now(self) -> int:
        """Entries the current operator evicted to the spill area or the store (its memory bound at work)."""
        return sum(int(s.get("evicted", 0)) for s in self.incremental.stats().values())

    @property
    def evicted(self) -> int:
        """Entries evicted over the operators of this harness so far."""
        return self._evicted + self.evicted_now()

    # -- input ------------------------------------------------------------------------------------------
    def elements(self, items: Iterable[tuple[Any, Any, int]]) -> None:
        """Push one bundle of ``(key, value, timestamp_us)``."""
        rows = list(items)
        self.node.push(0, Batch([(k, v) for k, v, _ in rows], [t for _, _, t in rows]))

    def watermark(self, micros: int) -> None:
        """Advance the input watermark to `micros` (a lower value is ignored, as on a real input)."""
        self.node.watermark(0, micros)

    def processing_time(self, delta_us: int) -> None:
        """Move the fake clock by `delta_us` and fire the processing-time timers now due."""
        self.clock.advance(delta_us)
        self.node.advance_processing_time(self.clock.now_us())

    def finish(self) -> None:
        """End of input: fire every processing-time timer, then the watermark reaches the end of time."""
        self.processing_time(END_PROCESSING_TIME_ADVANCE_US)
        self.watermark(MAX_MICROS)

    # -- checkpoints ------------------------------------------------------------------------------------
    def checkpoint(self) -> int:
        """Take a checkpoint (capture, one atomic durable write, commit) as the coordinator does; its id."""
        cid = self._next_id
        parts = self.incremental.capture(cid, self.store, self.keep)
        try:
            deletes = list(self.incremental.deletes(parts))
            self.incremental.released(
                parts,
                self.store.commit(
                    cid,
                    self.incremental.prewrite(parts, self.backend),
                    deletes,
                    fingerprint="operator-harness",
                    wall_time_micros=self.clock.now_us(),
                    metadata={
                        "windows": capture_frontiers([self.node]),
                        "harness": {"now_us": self.clock.now_us(), "emitted": len(self.output)},
                    },
                    sync=self.sync,
                ),
            )
        except Exception:
            self.incremental.aborted(parts)
            raise
        self.incremental.committed(parts)
        self._next_id = cid + 1
        self.checkpoints += 1
        return cid

    def crash_and_restore(self) -> int | None:
        """Lose the operator and everything in memory, reopen the backend and restore the latest checkpoint
        into a fresh operator; returns its id (None: no checkpoint, the operator starts empty). Output
        emitted after that checkpoint is discarded; the caller replays the input that followed it."""
        self.close()
        backend = self.open_backend()
        manifest = CheckpointStore(backend, keep=self.keep).latest(allow_fallback=True)
        meta = (
            manifest.metadata["harness"] if manifest is not None else {"now_us": self.start_us, "emitted": 0}
        )
        del self.output[int(meta["emitted"]) :]
        self._open(int(meta["now_us"]), backend)
        if manifest is None:
            self.incremental.restore(0)
        else:
            self.incremental.restore(manifest.checkpoint_id)
            restore_frontiers([self.node], manifest.metadata.get("windows", {}), drained=False)
        self.restores += 1
        return manifest.checkpoint_id if manifest is not None else None

    def panes(self) -> list[Pane]:
        """The standing output, sorted (emission order within a firing is not part of the semantics)."""
        return sorted(self.output, key=repr)


#: One input event: ("elements", [(key, value, ts_us), ...]), ("watermark", us) or ("processing_time", delta_us).
Event = tuple[str, Any]


def feed(harness: OperatorHarness, event: Event) -> None:
    """Apply one input event to the harness."""
    kind, arg = event
    if kind == "elements":
        harness.elements(arg)
    elif kind == "watermark":
        harness.watermark(arg)
    elif kind == "processing_time":
        harness.processing_time(arg)
    else:
        raise ValueError(f"unknown event kind {kind!r} (expected elements, watermark or processing_time)")


def run(
    harness: OperatorHarness,
    events: list[Event],
    checkpoint_after: Iterable[int] = (),
    crash_after: Iterable[int] = (),
) -> list[Pane]:
    """Feed `events`, checkpointing after the steps in `checkpoint_after`; after each step in `crash_after`
    (once) crash, restore the latest checkpoint and replay the events that followed it; then end the input.
    Returns the
    standing output (`OperatorHarness.panes`) and closes the harness."""
    checkpoints = set(checkpoint_after)
    crashes = set(crash_after)
    step_of: dict[int, int] = {}
    step = 0
    while step < len(events):
        feed(harness, events[step])
        if step in checkpoints:
            step_of[harness.checkpoint()] = step
        if step in crashes:
            crashes.discard(step)  # the replay passes this step again: crash once
            cid = harness.crash_and_restore()
            step = -1 if cid is None else step_of[cid]
        step += 1
    harness.finish()
    out = harness.panes()
    harness.close()
    return out
