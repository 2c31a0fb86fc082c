"""Checkpoints: consistent cuts of the whole job, written as ONE atomic RocksDB batch, then sinks commit.

The protocol is an explicit state machine; the numbered steps below are the `Step` values the code moves
through, and the crash points of the kill -9 tests (``MILLSTREAM_CRASH_AT=<step>[:<n>]`` kills the process
with SIGKILL on entering that step of the n-th checkpoint):

1. PAUSE_SOURCES   every running source stops at its next batch boundary (finished sources count as paused);
                   processing-time timers are held.
2. DRAIN           wait until every message sent before the pause has been processed by every stage (the
                   job-wide count of in-flight channel messages is zero and no async work is pending).
                   With a pause budget (``--checkpoint_pause_budget``) and a large write-ahead backlog, the
                   backlog is written now, while the sources are paused; if that is not done within the
                   budget, the sources resume without a checkpoint (nothing was captured) and steps 1-2 are
                   entered again after a gap (`Checkpointer._caught_up`, `_defer`); not once the job stops,
                   drains or cancels, or every source has finished (`_deferral_ends`). These decisions read
                   the job's injected clock (`Checkpointer.clock`).
3. SNAPSHOT        collect each stateful operator's state, each source's positions and watermark state,
                   and each sink's pending-commit record (`prepare(checkpoint_id)` seals the sink's epoch).
                   Incremental operators (the windowed reducer and the stateful ParDo, see
                   `checkpoint.incremental`) give only the entries changed since the previous checkpoint
                   plus a small header; their evicted entries join from the spill area. The others (global
                   combines, side inputs) give a whole snapshot when it changed.
4. WRITE_DURABLE   write state + manifest (id, pipeline fingerprint, per-step layout, positions, sink
                   records) in one atomic, synced write batch. From here on the checkpoint exists.
5. COMMIT_SINKS    each sink makes its epoch visible (`commit`, idempotent); sources are told the
                   checkpoint is durable (e.g. Pub/Sub acks).
6. RESUME          sources and timers continue.

Recovery (`Checkpointer.restore`) reads the latest manifest, checks the fingerprint, restores operator state,
rewinds sources to the recorded positions and lets each sink finish the commit recorded in the manifest
(committing again is harmless) and discard anything written after it. Incremental operators load only their
header (and per-key timer index); entries are read from the store when needed. Both kinds of state keep the
versions every retained manifest needs, so an older retained checkpoint stays restorable.

Between checkpoints, `write_ahead` moves spilled state, and the changed entries held in memory, into the
store in slices as versions of the coming checkpoint (see `checkpoint.versioned_store`), so a large
checkpoint pauses the sources only for what is left; those versions count only once step 4 commits the
manifest, and restore purges them otherwise.

`last_pause_s` is the longest time a checkpoint kept the sources paused (step 1 to their release, over its
deferrals); `last_stall_s` how long it kept the job paused from SNAPSHOT to durable; `last_loop_stall_s`
the longest time the event loop itself could not run during it (collecting and writing happen in a worker
thread, so this is mostly RocksDB holding the GIL while it writes the batch); ``max_*`` are the maxima.

Some sinks cannot finish a commit after a crash: a Kafka transaction is aborted when its producer dies, so after
a kill between steps 4 and 5 the store holds checkpoint N while Kafka holds the output of N-1 only. Such a sink
reports the checkpoint its system committed (`SinkWriter.committed_checkpoint`, asked before `recover`), and
restore picks the minimum over the sinks and the latest: an older checkpoint is restored from its retained
manifest and operator snapshots (the last ``store_keep`` are kept), so the input after it is read again and its
output written once. A committed checkpoint that is no longer retained is an error; ``0`` (nothing of this
state committed) starts afresh.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import logging
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from millstream.engine.model.io import EndOfInputSinkWriter
from millstream.engine.runtime.graph.capabilities import (
    BundleFinalizingNode,
    CheckpointedSource,
    QueueingNode,
    SinkNode,
    StatefulNode,
)
from millstream.engine.runtime.windowing.drain_frontier import capture_frontiers, restore_frontiers

if TYPE_CHECKING:  # the planner builds the plan a checkpointer is given; only its type is needed here
    from millstream.engine.runtime.exec.clock import Clock
    from millstream.engine.runtime.graph.planner import Plan

log = logging.getLogger("millstream.checkpoint")


class Step(enum.IntEnum):
    """The numbered steps of a checkpoint (see the module docstring)."""

    IDLE = 0
    PAUSE_SOURCES = 1
    DRAIN = 2
    SNAPSHOT = 3
    WRITE_DURABLE = 4
    COMMIT_SINKS = 5
    RESUME = 6


#: Seconds the sources run at least between two pauses of a deferred checkpoint (`Checkpointer._defer`).
DEFER_GAP_S = 0.2
#: A checkpoint is deferred at most this long, or one checkpoint interval if longer (then taken anyway).
MIN_MAX_DEFERRAL_S = 5.0


class CheckpointError(Exception):
    """A checkpoint or a restore could not be done; says which and why."""


class CheckpointFallbackError(CheckpointError):
    """Restoring would mean rewriting output that was already committed (and perhaps consumed)."""


FALLBACK_HOW_TO = (
    "to accept the fallback (that output is deleted and written again, so readers that consumed it see its "
    "records twice), start again with --accept_checkpoint_fallback; to start over, use --from_scratch"
)


def checkpoint_fallback(state_dir: str, manifest: Any, redone: dict[str, list[str]]) -> dict[str, Any]:
    """What a fallback to an older checkpoint means, as plain data (also shown by `jobs describe`)."""
    outputs = [name for names in redone.values() for name in names]
    lost = sorted(manifest.skipped)
    if lost:
        damaged = f"checkpoint(s) {lost} in {state_dir} are unreadable"
    else:
        damaged = (
            f"checkpoint(s) newer than {manifest.checkpoint_id} are missing from {state_dir} (damaged log?)"
        )
    message = f"{damaged}; falling back to checkpoint {manifest.checkpoint_id}"
    if outputs:
        shown = ", ".join(outputs[:5]) + (f" and {len(outputs) - 5} more" if len(outputs) > 5 else "")
        message += f", which is older than committed output that it would delete and write again: {shown}"
    return {
        "restored": manifest.checkpoint_id,
        "unreadable": lost,
        "redone_outputs": outputs,
        "message": message,
    }


class StateMismatchError(CheckpointError):
    """The stored state was written by a pipeline whose stateful steps differ from this one."""


def _crash_point() -> tuple[int, int] | None:
    spec = os.environ.get("MILLSTREAM_CRASH_AT")
    if not spec:
        return None
    step, _, nth = spec.partition(":")
    return int(step), int(nth or 1)


def run_all(callbacks: list[Callable[[], None]]) -> None:
    """Run every bundle-finalization function (`BundleFinalizingNode.take_bundle_callbacks`), then raise the
    first failure: one step's failing callback neither skips another step's nor leaves the sinks open."""
    first: BaseException | None = None
    for run in callbacks:
        try:
            run()
        except Exception as e:
            if first is None:
                first = e
    if first is not None:
        raise first


class InFlight:
    """Counts channel messages sent but not yet fully processed, job-wide; `idle` is set at zero."""

    def __init__(self) -> None:
        self.count = 0
        #: When the last message was queued (``time.monotonic``): tells an idle job from a busy one whose
        #: channels happen to be empty at this instant.
        self.last_sent = 0.0
        self.idle = anyio.Event()
        self.idle.set()

    def add(self) -> None:
        """A message was queued for a channel."""
        if self.count == 0:
            self.idle = anyio.Event()
        self.count += 1
        self.last_sent = time.monotonic()

    def done(self) -> None:
        """A message was processed (and what it produced was queued)."""
        self.count -= 1
        if self.count == 0:
            self.idle.set()


def node_layout(node: Any) -> dict[str, Any] | None:
    """The state layout of a stateful node (for the fingerprint), or None for stateless nodes."""
    return node.state_layout() if isinstance(node, StatefulNode) else None


def snapshot_key(label: str, checkpoint_id: int) -> bytes:
    """Where the whole-state snapshot of step `label` written by checkpoint `checkpoint_id` is stored."""
    from millstream.state.keys import encode_u64, state_key

    return state_key(label, b"", encode_u64(checkpoint_id), "snapshot")


def fingerprint(layout: dict[str, Any]) -> str:
    """A stable digest of the per-step state layout."""
    text = repr(sorted((k, repr(v)) for k, v in layout.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpointer:
    """Owns the job's state store: restores at start, takes checkpoints (the state machine above)."""

    def __init__(
        self,
        plan: Plan,
        state_dir: str,
        backend_kind: str,
        interval_s: float,
        from_scratch: bool,
        accept_fallback: bool = False,
        encryption_key: str | None = None,
    ) -> None:
        from millstream.state import CheckpointStore, MemoryBackend, MsgpackCodec, RocksDBBackend
        from millstream.state.encryption import key_source, open_encrypted, require_plain
        from millstream.state.rekey import finish_interrupted_rotation

        self.plan = plan
        #: The job's injected clock (`exec.clock`): the pause, deferral and write-ahead decisions read it
        #: (`monotonic`), and a deferral's gap sleeps on it, so tests can drive them.
        self.clock: Clock = plan.clock
        self.state_dir = state_dir
        self.interval_s = interval_s
        self.accept_fallback = accept_fallback
        #: Set when this run restored a checkpoint older than the newest (`checkpoint_fallback`), else None.
        self.fallback: dict[str, Any] | None = None
        if from_scratch and os.path.exists(state_dir):
            log.warning("--from_scratch: discarding the state in %s", state_dir)
            shutil.rmtree(state_dir)
        # the key source is checked before the store is opened: a bad key file fails before any data is read
        provider = key_source(encryption_key) if encryption_key and backend_kind != "memory" else None
        #: The cipher of an encrypted store (spill area and sinks' spilled epochs use it too), else None.
        self.cipher: Any = None
        if backend_kind == "memory":
            self.backend: Any = MemoryBackend()
        else:
            os.makedirs(os.path.dirname(os.path.abspath(state_dir)) or ".", exist_ok=True)
            finish_interrupted_rotation(state_dir)
            self.backend = RocksDBBackend(state_dir)
            try:
                if provider is not None:
                    self.backend = open_encrypted(self.backend, provider)
                    self.cipher = self.backend.cipher
                else:
                    require_plain(self.backend)
            except BaseException:
                self.backend.close()
                raise
        plan.state_cipher = self.cipher
        self.store_keep = 3
        self.store = CheckpointStore(self.backend, keep=self.store_keep)
        self.refs: dict[str, int] = {}
        self.codec = MsgpackCodec(allow_pickle=True)
        self.step = Step.IDLE
        self.next_id = 1
        self.count = 0
        self.in_flight: InFlight = plan.in_flight
        self.sources: list[Any] = []
        self.sinks: list[Any] = []
        self.stateful: list[Any] = []
        self.finalizing: list[Any] = []
        self._resume = anyio.Event()
        self._resume.set()
        self._paused: set[int] = set()
        self._pause_event = anyio.Event()
        self._pausing = False
        self.crash = _crash_point()
        self.last_duration_s = 0.0
        self.last_stall_s = 0.0
        self.last_checkpoint_wall = 0.0
        for stage in plan.stages:
            for node in stage.nodes:
                if node_layout(node) is not None:
                    self.stateful.append(node)
                if isinstance(node, SinkNode):
                    self.sinks.append(node)
                if isinstance(node, BundleFinalizingNode):
                    self.finalizing.append(node)
            if isinstance(stage.driver, CheckpointedSource):
                self.sources.append(stage.driver)
        self.layout = self._layout()
        self.fingerprint = fingerprint(self.layout)
        # Incremental operator state (`checkpoint.incremental`): per-entry records, bounded memory, spill area.
        from millstream.engine.model.options import MillstreamOptions
        from millstream.engine.runtime.checkpoint.incremental import (
            IncrementalNodes,
            LoopStallMeter,
        )

        cache_entries = plan.options.view_as(MillstreamOptions).state_cache_entries
        self.incremental = IncrementalNodes(
            self.stateful, self.backend, state_dir, backend_kind == "memory", cache_entries, self.cipher
        )
        self.incremental.monotonic = self.monotonic
        self.stall_meter = LoopStallMeter()
        #: Longest event-loop stall during the last checkpoint, and the maxima over all checkpoints.
        self.last_loop_stall_s = 0.0
        self.max_loop_stall_s = 0.0
        self.max_stall_s = 0.0
        self.max_duration_s = 0.0
        budget = plan.options.view_as(MillstreamOptions).checkpoint_pause_budget
        if budget is None or budget < 0:
            raise CheckpointError(
                f"--checkpoint_pause_budget must be a number of seconds >= 0 (0: no bound), got {budget!r}"
            )
        #: Longest time a checkpoint may pause the sources (``--checkpoint_pause_budget``; 0: no bound), and how
        #: long a checkpoint may be deferred while the write-ahead catches up (then it is taken anyway).
        self.pause_budget_s = float(budget)
        self.max_deferral_s = max(MIN_MAX_DEFERRAL_S, interval_s)
        #: Of the last checkpoint: how often and how long at most it paused the sources (step 1 to the
        #: release), how long it was deferred, and the rows written ahead while the sources were paused.
        self.last_pauses = 0
        self.last_pause_s = 0.0
        self.last_deferred_s = 0.0
        self.last_caught_up_rows = 0
        self.max_pause_s = 0.0
        #: Steps 3-6 of the last checkpoint that caught up first (`_reserve_s`).
        self._tail_s = 0.0

    def monotonic(self) -> float:
        """Seconds on the job clock's monotonic reading (`clock`; only differences mean anything)."""
        return self.clock.monotonic_us() / 1e6

    # -- layout and restore ---------------------------------------------------------------------------------
    def _layout(self) -> dict[str, Any]:
        layout: dict[str, Any] = {}
        for node in self.stateful:
            layout[node.label] = node_layout(node)
        for src in self.sources:
            layout[src.label] = {"kind": "source", "source": src.describe()}
        for sink in self.sinks:
            layout[sink.label] = {"kind": "sink", "sink": sink.transform.sink.display_name()}
        return layout

    def _snapshot_key(self, label: str, checkpoint_id: int) -> bytes:
        return snapshot_key(label, checkpoint_id)

    async def restore(self) -> int | None:
        """Restore the latest usable checkpoint into the plan; returns its id (None when starting fresh).

        Each checkpoint's operator snapshots are kept under its own id (the last few checkpoints are
        retained), so when the newest checkpoint is unreadable the previous complete one is restored instead,
        saying so; sinks then discard output committed after it. Likewise when a sink's system committed an
        older checkpoint than the latest (`_sink_committed_manifest`). A run that ended at the end of its
        input is never resumed: the next run computes its output afresh (`_start_afresh`).
        """
        manifest = self.store.latest(allow_fallback=True)
        if manifest is None:
            self.incremental.restore(0)  # purges records of a first checkpoint that died while being written
            for sink in self.sinks:
                await sink.writer.recover(None, None)
            return None
        newest_id = max([manifest.checkpoint_id, *manifest.skipped])
        picked = await self._sink_committed_manifest(manifest)
        if picked is None:
            # No checkpoint of this state was committed by a sink: start afresh (ids keep increasing).
            await self._start_afresh(newest_id)
            return None
        manifest = picked
        meta = manifest.metadata
        if (
            meta.get("final")
            and meta.get("ended") != "drain"
            and self.store.is_committed(manifest.checkpoint_id)
        ):
            log.info(
                "the job in %s completed (end of input) in checkpoint %d: this run computes and writes its "
                "output afresh",
                self.state_dir,
                manifest.checkpoint_id,
            )
            await self._start_afresh(newest_id)
            return None
        self._check_fingerprint(manifest)
        await self._check_fallback(manifest)
        drained = bool(meta.get("final"))
        # After a drain every window has fired: like a new job after a Dataflow drain, operators start empty
        # while sources continue from where the drain stopped them; the windows the drain finalised stay closed.
        self.incremental.restore(manifest.checkpoint_id, empty=drained)
        self._restore_snapshots(manifest, {} if drained else meta.get("state", {}))
        restore_frontiers(self.stateful, meta.get("windows", {}), drained)
        positions = meta.get("sources", {})
        for src in self.sources:
            src.restore(positions.get(src.label))
        records = {} if self.store.is_committed(manifest.checkpoint_id) else meta.get("sinks", {})
        for sink in self.sinks:
            await sink.writer.recover(manifest.checkpoint_id, records.get(sink.label))
        self.next_id = max([newest_id, manifest.checkpoint_id, *manifest.skipped]) + 1
        how = "after a drain (operators start empty, finalised windows stay closed)" if drained else ""
        log.info("restored checkpoint %d from %s %s", manifest.checkpoint_id, self.state_dir, how)
        return manifest.checkpoint_id

    async def _start_afresh(self, newest_id: int) -> None:
        """Discard operator state and source positions, and let sinks remove the earlier run's output."""
        self._wipe()
        for sink in self.sinks:
            await sink.writer.recover(None, None)
        self.next_id = newest_id + 1

    def _check_fingerprint(self, manifest: Any) -> None:
        """Fail, naming the steps, when the stored state was written by a pipeline with other stateful steps."""
        if manifest.fingerprint == self.fingerprint:
            return
        old = manifest.layout
        changed = sorted(
            k for k in set(old) | set(self.layout) if repr(old.get(k)) != repr(self.layout.get(k))
        )
        raise StateMismatchError(
            f"the state in {self.state_dir} (checkpoint {manifest.checkpoint_id}) was written by a pipeline "
            f"whose stateful steps differ from this one: {', '.join(changed)}; "
            "run with --from_scratch to discard it, or use another --state_dir/--job_name"
        )

    async def _check_fallback(self, manifest: Any) -> None:
        """Refuse (unless accepted) to restore a checkpoint older than output the sinks already committed."""
        redone: dict[str, list[str]] = {}
        for sink in self.sinks:
            names = await sink.writer.committed_after(manifest.checkpoint_id)
            if names:
                redone[sink.label] = names
        if not redone and not manifest.skipped:
            return
        fallback = checkpoint_fallback(self.state_dir, manifest, redone)
        if redone and not self.accept_fallback:
            raise CheckpointFallbackError(fallback["message"] + "; " + FALLBACK_HOW_TO)
        self.fallback = fallback
        log.warning(
            "%s; %s",
            fallback["message"],
            "accepted (--accept_checkpoint_fallback): that output is deleted and written again"
            if redone
            else "no committed output is redone",
        )

    def _restore_snapshots(self, manifest: Any, refs: dict[str, int]) -> None:
        """Load the whole-state snapshots `refs` names (steps whose state is not incremental)."""
        from millstream.state import StateCorruptedError

        for node in self.stateful:
            if node.label in self.incremental.labels:
                continue  # restored from its records (`checkpoint.incremental`)
            ref = refs.get(node.label)
            if ref is None:
                continue
            raw = self.backend.get(self._snapshot_key(node.label, ref))
            if raw is None:
                raise StateCorruptedError(
                    self.state_dir,
                    f"checkpoint {manifest.checkpoint_id}: the state of step '{node.label}' is missing",
                )
            try:
                data = self.codec.decode(raw)
            except Exception as e:
                raise StateCorruptedError(
                    self.state_dir,
                    f"checkpoint {manifest.checkpoint_id}: the state of step '{node.label}' "
                    f"cannot be decoded: {e}",
                ) from e
            node.restore_state(data)
        self.refs = dict(refs)

    async def _sink_committed_manifest(self, latest: Any) -> Any:
        """The manifest to restore given what the sinks' external systems committed (`committed_checkpoint`):
        `latest`, or an older retained one when a sink committed only up to it (a crash between the durable
        write of a checkpoint and a sink commit that cannot be finished later, such as a Kafka transaction);
        None when a sink committed no checkpoint of this state at all (then the job starts afresh)."""
        committed: int | None = None
        who = ""
        for sink in self.sinks:
            k = await sink.writer.committed_checkpoint()
            if k is not None and (committed is None or k < committed):
                committed, who = int(k), sink.label
        if committed is None or committed >= latest.checkpoint_id:
            return latest
        if committed <= 0:
            log.warning(
                "sink '%s' committed none of the checkpoints in %s (the latest is %d): starting afresh",
                who,
                self.state_dir,
                latest.checkpoint_id,
            )
            return None
        try:
            manifest = self.store.get(committed)
        except KeyError:
            retained = [m.checkpoint_id for m in self.store.list()]
            raise CheckpointError(
                f"sink '{who}' committed checkpoint {committed}, but {self.state_dir} retains only checkpoints "
                f"{retained}: the state cannot be matched with the committed output; run with --from_scratch "
                "to start over"
            ) from None
        log.warning(
            "restoring checkpoint %d, not the latest (%d): sink '%s' committed only up to %d (the process "
            "died between the durable write and that sink's commit); input after it is read again",
            committed,
            latest.checkpoint_id,
            who,
            committed,
        )
        return manifest

    def _wipe(self) -> None:
        """Delete all operator state (keeps manifests: checkpoint ids keep increasing)."""
        from millstream.state.keys import STATE

        keys = [k for k, _ in self.backend.scan_prefix(STATE)]
        if keys:
            self.backend.write_batch((), keys, sync=True)

    def _retired_snapshots(self, new_refs: dict[str, int]) -> list[bytes]:
        """Snapshot keys no retained manifest refers to any more (deleted with the next checkpoint)."""
        keep_refs = {(label, ref) for label, ref in new_refs.items()}
        manifests = self.store.list()
        for m in manifests[-(self.store_keep - 1) :] if self.store_keep > 1 else []:
            keep_refs.update(m.metadata.get("state", {}).items())
        from millstream.state.keys import decode_u64, key_prefix

        deletes = []
        for node in self.stateful:
            # whole snapshots live under the empty key segment (incremental records elsewhere, except headers)
            for key, _ in self.backend.scan_prefix(key_prefix(node.label, b"")):
                from millstream.state.keys import decode_state_key

                try:
                    _, _, namespace, name = decode_state_key(key)
                except ValueError:
                    continue  # a versioned incremental record (see checkpoint.versioned_store)
                if name == "snapshot" and (node.label, decode_u64(namespace)) not in keep_refs:
                    deletes.append(key)
        return deletes

    # -- the source side of step 1 --------------------------------------------------------------------------
    async def source_boundary(self, source: Any, flush: Callable[[], Awaitable[None]]) -> None:
        """Called by each source at every batch boundary: parks it while a checkpoint is in progress."""
        if not self._pausing:
            return
        await flush()
        self._paused.add(id(source))
        if self._all_paused():
            self._pause_event.set()
        await self._resume.wait()

    def _all_paused(self) -> bool:
        return all(id(s) in self._paused or s.finished for s in self.sources)

    def source_finished(self) -> None:
        """A source ended: it no longer needs to pause."""
        if self._pausing and self._all_paused():
            self._pause_event.set()

    @property
    def holding(self) -> bool:
        """True while timers must not fire (between pause and resume)."""
        return self._pausing

    async def wait_resumed(self) -> None:
        """Wait until a checkpoint in progress has finished."""
        await self._resume.wait()

    async def write_ahead(
        self,
        tick_s: float = 0.1,
        slice_s: float = 0.03,
        idle_tick_s: float = 0.01,
        idle_slice_s: float = 0.09,
        idle_after_s: float = 0.25,
    ) -> None:
        """Between checkpoints, write the state ahead of the next one in slices (at most `slice_s` of every
        `tick_s` on the event loop), so a large checkpoint does not pause the sources for the time it takes to
        write it all (`IncrementalNodes.write_ahead`). While the job is idle (no message sent for `idle_after_s`)
        the slices are `idle_slice_s` long, every `idle_tick_s`: nothing else waits for the loop, and the next
        message waits at most one slice. Runs until cancelled."""
        if self.incremental.memory or not self.incremental.nodes:
            return
        idle = False
        while True:
            await anyio.sleep(idle_tick_s if idle else tick_s)
            idle = False
            if self.step is Step.IDLE and not self._pausing and self.incremental.wants_ahead():
                flight = self.in_flight
                idle = flight.count == 0 and time.monotonic() - flight.last_sent >= idle_after_s
                self.incremental.write_ahead(
                    self.next_id, self.monotonic() + (idle_slice_s if idle else slice_s), self._retained()
                )

    # -- the state machine -----------------------------------------------------------------------------------
    def _enter(self, step: Step) -> None:
        self.step = step
        if self.crash is not None and self.crash == (int(step), self.count):
            log.error("MILLSTREAM_CRASH_AT=%d:%d: killing the process", int(step), self.count)
            os.kill(os.getpid(), signal.SIGKILL)

    async def checkpoint(self, final: bool = False, bounded: bool = True) -> int:
        """Take one checkpoint; with `final`, the job has finished and nothing is running. With `bounded`
        (and a ``--checkpoint_pause_budget``), a large write-ahead backlog is written while the sources are
        paused, for at most the budget at a time, before the state is captured (`_caught_up`)."""
        self.count += 1
        started = self.monotonic()
        cid = self.next_id
        budget = self.pause_budget_s if bounded and not final else 0.0
        self.last_pauses = 0
        self.last_pause_s = self.last_deferred_s = 0.0
        self.last_caught_up_rows = 0
        caught_up = False
        paused_at = started
        try:
            paused_at = await self._pause(final)
            if budget:
                while not await self._caught_up(cid, paused_at, budget):
                    paused_at = await self._defer(cid, paused_at)
                caught_up = True
            ahead = self.incremental.written_ahead(cid)
            if ahead:
                log.info("checkpoint %d: %d rows of spilled state were written ahead", cid, ahead)
            hot = self.incremental.hot_written_ahead(cid)
            if hot:
                log.info("checkpoint %d: %d entries held in memory were written ahead", cid, hot)
            self._enter(Step.SNAPSHOT)
            stall_start = self.monotonic()
            self.stall_meter.start()
            puts = []
            refs = dict(self.refs)
            for node in self.stateful:
                if node.label in self.incremental.labels:
                    continue  # written incrementally below
                if node.state_dirty() or node.label not in refs:
                    puts.append(
                        (self._snapshot_key(node.label, cid), self.codec.encode(node.snapshot_state()))
                    )
                    refs[node.label] = cid
            deletes = self._retired_snapshots(refs)
            # collecting changed entries folds buffers (user CombineFn code) and reads evicted entries: off the
            # loop, like the write (nothing else touches operator state while sources are paused and drained)
            parts = await anyio.to_thread.run_sync(self.incremental.capture, cid, self.store, self.store_keep)
            sources = {s.label: s.checkpoint_state() for s in self.sources}
            sinks = {}
            # a completed bounded run: sinks may give their output its final (Beam batch) names in this commit
            ending = final and self._ended() == "end_of_input"
            for sink in self.sinks:
                writer = sink.writer
                if ending and isinstance(writer, EndOfInputSinkWriter):
                    sinks[sink.label] = await writer.prepare_end_of_input(cid)
                else:
                    sinks[sink.label] = await writer.prepare(cid)
            self._enter(Step.WRITE_DURABLE)
            try:
                # garbage of incremental state is found before anything of this checkpoint is written
                deletes.extend(await anyio.to_thread.run_sync(list, self.incremental.deletes(parts)))
                await anyio.to_thread.run_sync(
                    lambda: self.incremental.released(
                        parts,
                        self.store.commit(
                            cid,
                            # large incremental parts go first in chunks (invisible until this manifest commits)
                            itertools.chain(puts, self.incremental.prewrite(parts, self.backend)),
                            deletes,
                            fingerprint=self.fingerprint,
                            wall_time_micros=time.time_ns() // 1000,
                            layout=self.layout,
                            metadata={
                                "sources": sources,
                                "sinks": sinks,
                                "state": refs,
                                "final": final,
                                "ended": self._ended() if final else None,
                                "windows": capture_frontiers(self.stateful),
                            },
                            sync=True,
                        ),
                    )
                )
            except Exception as e:
                self.incremental.aborted(parts)
                raise CheckpointError(
                    f"checkpoint {cid} could not be written to {self.state_dir}: {e}"
                ) from e
            self.incremental.committed(parts)
            self.last_stall_s = self.monotonic() - stall_start
            self.last_loop_stall_s = self.stall_meter.stop()
            self.max_stall_s = max(self.max_stall_s, self.last_stall_s)
            self.max_loop_stall_s = max(self.max_loop_stall_s, self.last_loop_stall_s)
            self.next_id = cid + 1
            self.refs = refs
            self._enter(Step.COMMIT_SINKS)
            for sink in self.sinks:
                await sink.writer.commit(cid, sinks[sink.label])
            # the final checkpoint of a run without sinks is committed too: otherwise the next run would take the
            # completed run for an interrupted one and resume it (reading nothing, or refusing other steps)
            if self.sinks or final:
                await anyio.to_thread.run_sync(self.store.mark_committed, cid)
            for src in self.sources:
                if src.reader is not None:
                    await src.reader.on_checkpoint_durable(cid)
            # exactly the bundles this checkpoint covers are committed: their callbacks are taken while the
            # sources are paused, and run once they resume
            finalize = [node.take_bundle_callbacks() for node in self.finalizing]
        finally:
            try:
                if final:  # nothing is written after the final checkpoint: release the sinks' connections
                    await self._close_sinks()
            finally:
                self.stall_meter.stop()
                self._enter(Step.RESUME)
                self._release()
                self._paused_for(self.monotonic() - paused_at)
        if caught_up:
            self._tail_s = self.monotonic() - stall_start
        if self.last_deferred_s or self.last_caught_up_rows:
            log.info(
                "checkpoint %d: sources paused %d times, the longest %.3f s (budget %.3f s), deferred %.3f s; "
                "%d rows written while paused before the capture, %d by the capture",
                cid,
                self.last_pauses,
                self.last_pause_s,
                budget,
                self.last_deferred_s,
                self.last_caught_up_rows,
                self.incremental.last_captured,
            )
        self.last_duration_s = self.monotonic() - started
        self.max_duration_s = max(self.max_duration_s, self.last_duration_s)
        self.last_checkpoint_wall = time.time()
        # user callbacks (often a round trip to an external system) run off the loop after RESUME, so they
        # stall neither the loop nor the paused sources; the next checkpoint waits for them (the caller holds
        # the checkpoint lock), so at most one checkpoint's callbacks are in flight
        await anyio.to_thread.run_sync(run_all, finalize)
        return cid

    async def _pause(self, final: bool) -> float:
        """Steps 1 and 2: pause the sources and drain; returns when step 1 began (`monotonic`)."""
        paused_at = self.monotonic()
        self._enter(Step.PAUSE_SOURCES)
        self._pausing = True
        self._paused = set()
        self._resume = anyio.Event()
        self._pause_event = anyio.Event()
        if not final and not self._all_paused():
            await self._pause_event.wait()
        self._enter(Step.DRAIN)
        await self.in_flight.idle.wait()
        pending = [n for s in self.plan.stages for n in s.nodes if isinstance(n, QueueingNode) and n.queue]
        if pending:  # async nodes finish their queued batches before the stage takes its next message
            await anyio.lowlevel.checkpoint()
            await self.in_flight.idle.wait()
        return paused_at

    def _release(self) -> None:
        """Sources and timers continue (step 6, or a deferral)."""
        self.incremental.sources_resumed()
        self._pausing = False
        self._resume.set()
        self.step = Step.IDLE

    def _paused_for(self, seconds: float) -> None:
        """One pause of the sources ended (from step 1 to their release)."""
        self.last_pauses += 1
        self.last_pause_s = max(self.last_pause_s, seconds)
        self.max_pause_s = max(self.max_pause_s, seconds)

    def _reserve_s(self, budget: float) -> float:
        """The part of the pause budget kept for steps 3-6 after a catch-up: 1.5 times what they took after
        the last one, within a quarter and a half of the budget."""
        return min(budget / 2, max(budget / 4, 1.5 * self._tail_s))

    async def _caught_up(self, cid: int, paused_at: float, budget: float) -> bool:
        """Sources paused and drained (step 2): True when the capture may follow within the pause budget,
        because it would write few rows (`IncrementalNodes.unwritten_bound` below `incremental.CATCH_UP_MIN`),
        or because the write-ahead caught up while paused (`IncrementalNodes.catch_up`, in slices that let
        the loop run), or because the checkpoint was deferred long enough (`max_deferral_s`: taken with what
        is left, with a warning), or because deferring would buy nothing (`_deferral_ends`: taken at once,
        writing what is left). False: the budget ran out; the caller defers."""
        if self.incremental.unwritten_bound() < self.incremental.catch_up_min:
            return True
        ends = self._deferral_ends()
        if ends:
            log.info(
                "checkpoint %d: taken without catching up first (%s): up to %d rows to write in this pause",
                cid,
                ends,
                self.incremental.unwritten_bound(),
            )
            return True
        deadline = paused_at + budget - self._reserve_s(budget)
        # sources parked and drained, timers held: from now on nothing changes the state until the release
        quiet = self.monotonic()
        retained = self._retained()
        # at least one slice per pause, so a drain that took the whole budget does not stop all progress
        first = True
        while first or self.monotonic() < deadline:
            done, rows = self.incremental.catch_up(
                cid, min(deadline, self.monotonic() + 0.05), retained, quiet, progress=first
            )
            self.last_caught_up_rows += rows
            if done:
                return True
            first = False
            await anyio.lowlevel.checkpoint()
        if self.last_deferred_s >= self.max_deferral_s:
            log.warning(
                "checkpoint %d: the write-ahead did not catch up within %.3f s pauses over %.1f s of deferral; "
                "taking it with up to %d rows left to write in this pause",
                cid,
                budget,
                self.last_deferred_s,
                self.incremental.unwritten_bound(),
            )
            return True
        return False

    def _deferral_ends(self) -> str:
        """Why a checkpoint must not be deferred (again), or "": the job is stopping, draining or cancelling
        (its end waits for this checkpoint; a drain's timeout would otherwise cancel it), or every source has
        finished (a gap lets no input through)."""
        control = self.plan.control
        if control is not None:
            if control.stop_event.is_set():
                return "the job is stopping"
            if control.drain_requested:
                return "the job is draining"
            if control.state == "CANCELLING":
                return "the job is cancelling"
        if all(s.finished for s in self.sources):
            return "every source has finished"
        return ""

    async def _defer(self, cid: int, paused_at: float) -> float:
        """The write-ahead did not catch up within the budget: resume the sources without a checkpoint (nothing
        was captured; what was written ahead stays as versions of `cid`), let them run as long as they were
        paused (at least `DEFER_GAP_S`), then pause them again (steps 1-2); returns when that pause began."""
        paused = self.monotonic() - paused_at
        self._release()
        self._paused_for(paused)
        gap = max(DEFER_GAP_S, paused)
        log.info(
            "checkpoint %d deferred: sources paused %.3f s while the write-ahead caught up (%d rows so far), "
            "resumed for %.3f s",
            cid,
            paused,
            self.last_caught_up_rows,
            gap,
        )
        await self.clock.sleep_until(self.clock.now_us() + int(gap * 1e6))
        self.last_deferred_s += self.monotonic() - paused_at
        return await self._pause(False)

    def _retained(self) -> int:
        """The oldest checkpoint retained now (the coming one not yet committed): safe to sweep for."""
        return min((m.checkpoint_id for m in self.store.list()[-self.store_keep :]), default=self.next_id)

    def _ended(self) -> str:
        """How the run ended, for its final checkpoint: "drain" or "end_of_input"."""
        control = self.plan.control
        return "drain" if control is not None and control.drain_requested else "end_of_input"

    async def abort_sinks(self) -> None:
        """Discard uncommitted sink output (on cancel or stop), then close the sinks."""
        for sink in self.sinks:
            try:
                await sink.writer.abort()
            except Exception:  # best effort: the next start's recovery discards it anyway
                log.exception("aborting sink %s", sink.label)
        await self._close_sinks()

    async def _close_sinks(self) -> None:
        """`SinkWriter.close` for every sink (best effort), once the job writes nothing more."""
        for sink in self.sinks:
            try:
                await sink.writer.close()
            except Exception:
                log.exception("closing sink %s", sink.label)

    def close(self) -> None:
        """Close the state store (and delete the spill area of incremental state)."""
        self.incremental.close()
        self.backend.close()
