"""The optional capabilities of runtime nodes and stage drivers, declared as `Protocol`s.

A node is a `Node` (`graph.node`); what else it can do (keep state, keep it incrementally, hold timers,
write to a sink, take part in checkpoints as a source) is one of these protocols, checked with
``isinstance`` where the executor and the checkpointer set a job up (never per element). The protocols
and who implements them are listed in docs/architecture.md ("Node capabilities").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AsyncNode",
    "BundleFinalizingNode",
    "CheckpointedSource",
    "ClosableDriver",
    "IncrementalStateNode",
    "LateDataSampler",
    "LingeringNode",
    "PathNamingWriter",
    "QueueingNode",
    "SinkNode",
    "StatefulNode",
    "TimerNode",
    "WindowedNode",
]


@runtime_checkable
class BundleFinalizingNode(Protocol):
    """A node whose DoFn registered bundle finalization callbacks (`DoFn.BundleFinalizerParam`): the
    checkpointer takes them once the checkpoint covering those bundles has committed (after the sinks' commit)
    and runs them in a worker thread after the sources resume; a job without checkpoints runs them once every
    stage has finished."""

    def take_bundle_callbacks(self) -> Callable[[], None]:
        """Take the callbacks registered by the bundles processed so far: the returned function runs each
        once (off the event loop) and raises the first failure, naming the step."""


@runtime_checkable
class StatefulNode(Protocol):
    """A node with operator state: its layout is part of the pipeline fingerprint."""

    def state_layout(self) -> dict[str, Any]:
        """What the node stores (kind, window, trigger, functions)."""


@runtime_checkable
class IncrementalStateNode(Protocol):
    """A stateful node whose state is kept per entry in a `StateTier` (`checkpoint.incremental`)."""

    def attach_state_tier(self, tier: Any) -> None:
        """Keep the state in `tier` (with at most ``tier.cache_entries`` entries in memory)."""

    def capture_incremental(self) -> Any:
        """What changed since the last checkpoint (header, entries, deletions)."""

    def restore_incremental(self, header: Any) -> None:
        """Load the checkpoint whose node header is `header`."""


@runtime_checkable
class AsyncNode(Protocol):
    """A node whose work is asynchronous (async DoFns, sinks): it starts a stage of its own, and that stage
    awaits `run_pending` after each message the node takes."""

    async def run_pending(self) -> None:
        """Finish the work the messages taken so far started."""


@runtime_checkable
class QueueingNode(Protocol):
    """A node that queues batches to process later (async DoFns): a checkpoint's drain waits for its queue."""

    queue: list[Any]


@runtime_checkable
class TimerNode(Protocol):
    """A node with processing-time timers, woken by its stage's timer loop."""

    timer_changed: Any

    def next_timer(self) -> int | None:
        """The earliest pending processing-time timer (µs), or None."""

    def advance_processing_time(self, now_us: int) -> None:
        """Fire the timers due at `now_us`."""


@runtime_checkable
class LingeringNode(Protocol):
    """A timer node that can outlive its input: held processing-time timers (a periodic sequence) keep it
    running after the watermark reached +infinity, until they are done or a drain truncates them."""

    def lingers(self) -> bool:
        """Whether held timers still keep the node running after its input ended."""

    def truncate_held(self) -> None:
        """On a drain: drop the held timers and let the lingering (key, window)s expire (Beam truncates an
        unbounded restriction to nothing on drain)."""


@runtime_checkable
class SinkNode(Protocol):
    """A node that writes to an external system through a two-phase `SinkWriter`."""

    writer: Any


@runtime_checkable
class PathNamingWriter(Protocol):
    """A sink writer that names the file it writes, for errors that name none themselves (`GuardedSinkWriter`)."""

    def io_path(self) -> str:
        """The path (or pattern) being written."""


@runtime_checkable
class CheckpointedSource(Protocol):
    """A stage driver whose read positions are part of a checkpoint."""

    def checkpoint_state(self) -> dict[str, Any]:
        """The positions and watermark state to store."""


@runtime_checkable
class ClosableDriver(Protocol):
    """A stage driver holding resources that the executor releases when the job ends."""

    async def close(self) -> None:
        """Release them."""


@runtime_checkable
class WindowedNode(Protocol):
    """A windowed aggregation: counts dropped late data and records which windows a drain finalised."""

    frontier: Any

    @property
    def dropped_late(self) -> int:
        """Elements dropped because they were late or their window's trigger had finished."""


@runtime_checkable
class LateDataSampler(Protocol):
    """A node that keeps the latest few elements it dropped as late, with their reasons (for the console)."""

    def latest_late(self) -> list[dict[str, Any]]:
        """Newest first: ``time``, ``record`` (a truncated repr), ``timestamp``, ``window``, ``watermark``
        (seconds or None) and ``reason``."""
        ...
