"""The checkpointer's side of incremental operator state: one `StateTier` per incremental node, and a meter
of how long a checkpoint blocks the event loop.

A stateful node is *incremental* when it is an `IncrementalStateNode` (`graph.capabilities`: the windowed
`ReducerNode`, the stateful ParDo): its state is written as per-entry records (`checkpoint.versioned_store`),
and only those; the other stateful nodes (global combines, side inputs) give whole snapshots. The job-wide
``--state_cache_entries`` is split evenly between the incremental nodes: each keeps at most its share of
entries in memory and evicts the rest to the spill area / store. The protocol is in docs/state.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from millstream.engine.runtime.checkpoint.versioned_store import (
    SpillArea,
    StateTier,
    TierCheckpoint,
    oldest_retained,
    spill_path,
)
from millstream.engine.runtime.graph.capabilities import IncrementalStateNode

__all__ = ["IncrementalNodes", "LoopStallMeter", "is_incremental"]

log = logging.getLogger("millstream.checkpoint")

#: Records per write of a large checkpoint's incremental part (see `IncrementalNodes.prewrite`).
CHUNK = 100_000

#: Spilled rows a tier must hold before they are written ahead of the next checkpoint (fewer: left to it).
AHEAD_MIN = 20_000
#: Rows per write-ahead slice (one unsynced RocksDB batch).
AHEAD_ROWS = 4096

#: Entries a node must hold in memory before they are written ahead of the next checkpoint too (fewer: the
#: checkpoint writes its changed ones in well under a second).
AHEAD_HOT_MIN = 200_000
#: Seconds between the end of a write-ahead pass over a node's entries in memory and the start of the next:
#: as long as the pass took, within these bounds (an entry that keeps changing is written about once per
#: pass; the pause writes what changed since its pass reached it, so passes must not wait long).
AHEAD_HOT_GAP_S = (0.5, 2.0)

#: A checkpoint whose capture would write fewer rows than this (`IncrementalNodes.unwritten_bound`) is taken
#: at once; with more, the write-ahead catches up first while the sources are paused (`catch_up`). The tests
#: lower it (``MILLSTREAM_CATCH_UP_MIN``).
CATCH_UP_MIN = 20_000

#: Default of ``--state_cache_entries``: entries of incremental state kept in memory, job-wide.
DEFAULT_CACHE_ENTRIES = 1_000_000


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off: capturing and restoring allocate many objects and no cycles, and
    the collector's passes over a large heap cost as much as the work (sources are paused meanwhile)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def is_incremental(node: Any) -> bool:
    """True for nodes that keep their state incrementally in a `StateTier`."""
    return isinstance(node, IncrementalStateNode)


class IncrementalNodes:
    """The incremental nodes of a job, their tiers and the shared spill area."""

    def __init__(
        self,
        nodes: list[Any],
        backend: Any,
        state_dir: str,
        memory: bool,
        cache_entries: int,
        cipher: Any = None,
    ) -> None:
        self.nodes = [n for n in nodes if is_incremental(n)]
        self.labels = {n.label for n in self.nodes}
        self.memory = memory
        # the kill tests lower it to write ahead with small state (the production value is the constant)
        self.ahead_min = int(os.environ.get("MILLSTREAM_WRITE_AHEAD_MIN") or AHEAD_MIN)
        self.ahead_hot_min = int(os.environ.get("MILLSTREAM_WRITE_AHEAD_HOT_MIN") or AHEAD_HOT_MIN)
        self.catch_up_min = int(os.environ.get("MILLSTREAM_CATCH_UP_MIN") or CATCH_UP_MIN)
        #: Seconds on a monotonic clock: every deadline and pass time here is read on it. The checkpointer
        #: sets it to read the job's injected clock (`Checkpointer.monotonic`), so tests can drive it.
        self.monotonic: Callable[[], float] = time.monotonic
        #: label -> when the node's write-ahead pass over its entries in memory began, and when the next one
        #: may begin (see `AHEAD_HOT_GAP_S`); `_passing`: the labels whose pass is still going.
        self._pass_began: dict[str, float] = {}
        self._pass_next: dict[str, float] = {}
        self._passing: set[str] = set()
        #: label -> when the last write-ahead pass that reached its end began (`catch_up`), and the node's
        #: `elements_in` as of which its changes in memory are all written (the last capture, or the start of
        #: the last pass that reached its end); `_pass_mark`: its `elements_in` when the current pass began.
        self._ended_began: dict[str, float] = {}
        self._clean_mark: dict[str, int] = {}
        self._pass_mark: dict[str, int] = {}
        self.spill = SpillArea(None if memory else spill_path(state_dir), cipher)
        share = max(16, cache_entries // max(1, len(self.nodes))) if cache_entries > 0 else 0
        self.tiers: dict[str, StateTier] = {}
        for node in self.nodes:
            tier = StateTier(node.label, backend, self.spill, share)
            self.tiers[node.label] = tier
            node.attach_state_tier(tier)
        #: Records written by the last checkpoint (headers, changed entries, spilled entries, deletions), and
        #: those of them its capture wrote (the others were written ahead).
        self.last_written = 0
        self.last_captured = 0
        self.last_swept = 0
        self._stats: dict[str, Any] = {}

    def restore(self, checkpoint_id: int, empty: bool = False) -> None:
        """Load checkpoint `checkpoint_id` into every incremental node that has state there; with `empty`
        (the run completed: operators start empty) delete their records instead."""
        with _no_gc():
            for node in self.nodes:
                tier = self.tiers[node.label]
                if empty:
                    tier.reset()
                    continue
                header = tier.restore(checkpoint_id)
                if header is not None:
                    node.restore_incremental(header)

    def capture(self, cid: int, store: Any, keep: int) -> list[tuple[TierCheckpoint, Any]]:
        """Each node's part of checkpoint `cid` (SNAPSHOT step): changed entries are collected (buffers folded,
        per-key records encoded), the rest is encoded while the batch is written. The checkpointer runs this
        in a worker thread: sources are paused and channels drained, so nothing else touches the state."""
        oldest = oldest_retained(store, keep, cid)
        out = []
        self.checkpoint_taken()
        with _no_gc():
            for node in self.nodes:
                cap = node.capture_incremental()
                tier = self.tiers[node.label]
                out.append(
                    (tier.checkpoint(cid, oldest, cap.header, cap.entries, cap.deletes, cap.encoded), cap)
                )
        return out

    def wants_ahead(self) -> bool:
        """True when some node has enough spilled rows or entries in memory to write ahead (see `write_ahead`)."""
        if self.memory:
            return False
        if any(self._to_move(t) or t.sweep_debt for t in self.tiers.values()):
            return True
        now = self.monotonic()
        return any(self._hot_due(n, now) for n in self.nodes)

    def _to_move(self, tier: StateTier) -> bool:
        return tier.spilled and tier.spill_rows - tier.ahead_rows >= self.ahead_min

    def _hot_due(self, node: Any, now: float) -> bool:
        """True when `node`'s write-ahead pass over its entries in memory goes on or may begin: it holds at
        least `ahead_hot_min` of them and the gap after the last pass is over."""
        if node.label in self._passing:
            return True
        tiered = getattr(node, "tiered", None)
        if tiered is None or not hasattr(tiered, "ahead_begin") or tiered.hot_estimate() < self.ahead_hot_min:
            return False
        return now >= self._pass_next.get(node.label, 0.0)

    def checkpoint_taken(self) -> None:
        """A checkpoint captured every node (its capture ended the write-ahead passes): the next may begin now."""
        self._passing.clear()
        self._pass_next.clear()
        self._ended_began.clear()
        for node in self.nodes:
            self._clean_mark[node.label] = node.elements_in

    def unwritten_bound(self) -> int:
        """An upper bound on the rows a capture now would write beyond the header, fired windows and the walk
        over unchanged entries: spilled rows not moved yet, plus per node what `changed_bound` gives for the
        elements it took since its changes in memory were last all written."""
        if self.memory:
            return 0
        rows = sum(max(0, t.spill_rows - t.ahead_rows) for t in self.tiers.values() if t.spilled)
        for node in self.nodes:
            tiered = getattr(node, "tiered", None)
            if tiered is not None and hasattr(tiered, "changed_bound"):
                since = node.elements_in - self._clean_mark.get(node.label, 0)
                rows += tiered.changed_bound(since)
        return rows

    def catch_up(
        self, cid: int, deadline: float, retained: int, quiet_since: float, progress: bool = False
    ) -> tuple[bool, int]:
        """Write ahead of checkpoint `cid` while the sources are paused and drained (nothing changes the state
        from `quiet_since`, `monotonic`, until they are released), until `deadline`: every spilled row,
        then per node a write-ahead pass that begins after `quiet_since` (a pass begun before it may have
        passed entries that changed since; the new one lists every entry in memory). Returns (done, rows
        written): done when all of that is written, so the capture that follows writes no changed entry in
        memory and no spilled row (only the header and fired windows, after a walk over the unchanged ones).
        With `progress`, one slice is written even past `deadline`."""
        if self.memory:
            return True, 0
        done = 0
        for tier in self.tiers.values():
            while tier.spilled and tier.spill_rows > tier.ahead_rows:
                if not progress and self.monotonic() >= deadline:
                    return False, done
                progress = False
                before = tier.ahead_rows if tier.ahead_cid == cid else 0
                done += tier.write_ahead(cid, AHEAD_ROWS, retained, True)
                if tier.ahead_rows - before < AHEAD_ROWS:
                    tier.spill_rows = tier.ahead_rows  # the spill is empty (as in `write_ahead`)
        for node in self.nodes:
            label = node.label
            if not hasattr(getattr(node, "tiered", None), "ahead_begin"):
                continue
            if label in self._passing and self._pass_began[label] < quiet_since:
                self._passing.discard(label)  # stale: the new pass lists every key it would still visit
            if label not in self._passing and self._ended_began.get(label, -1.0) >= quiet_since:
                continue
            if not progress and self.monotonic() >= deadline:
                return False, done  # (a pass begun now would only list its keys)
            done += self._write_hot_ahead(node, cid, deadline, retained, force=True, progress=progress)
            progress = False
            if label in self._passing or self._ended_began.get(label, -1.0) < quiet_since:
                return False, done
        return True, done

    def write_ahead(self, cid: int, deadline: float, retained: int) -> int:
        """Write spilled rows ahead of checkpoint `cid` in slices until `deadline` (`monotonic`) or until
        each tier has fewer than `AHEAD_MIN` left and no sweep left over by a checkpoint; returns the rows
        written and swept. Runs on the event loop between
        checkpoints (`Checkpointer.write_ahead`), so the spill is the loop's alone; `retained` is the oldest
        checkpoint id the store retains now; see `versioned_store.StateTier.write_ahead`."""
        if self.memory:
            return 0  # the spill is in memory too: nothing to win
        done = 0
        # spilled rows, then the entries in memory, then the sweep left over (by a checkpoint or by those)
        for tier in self.tiers.values():
            while self.monotonic() < deadline and self._to_move(tier):
                before = tier.ahead_rows if tier.ahead_cid == cid else 0
                done += tier.write_ahead(cid, AHEAD_ROWS, retained, True)
                if tier.ahead_rows - before < AHEAD_ROWS:
                    tier.spill_rows = (
                        tier.ahead_rows
                    )  # the spill is empty: nothing pending until the next eviction
        for node in self.nodes:
            if self.monotonic() >= deadline:
                return done
            done += self._write_hot_ahead(node, cid, deadline, retained)
        if self._passing:
            return done
        for tier in self.tiers.values():
            while self.monotonic() < deadline and tier.sweep_debt:
                done += tier.write_ahead(cid, AHEAD_ROWS, retained, False)
        return done

    def _write_hot_ahead(
        self,
        node: Any,
        cid: int,
        deadline: float,
        retained: int,
        force: bool = False,
        progress: bool = False,
    ) -> int:
        """Write `node`'s changed entries in memory ahead of checkpoint `cid` in slices of `AHEAD_ROWS` until
        `deadline`, continuing (or beginning) its pass over them; the node marks what is written unchanged,
        so the checkpoint writes only what changes again (docs/state.md, "Writing ahead"). With `force`, a
        pass begins whatever the node's size and the gap since the last (`catch_up`); with `progress`, one
        slice is written even past `deadline`."""
        now = self.monotonic()
        label = node.label
        if not force and not self._hot_due(node, now):
            return 0
        tiered = node.tiered
        if label not in self._passing:
            self._pass_began[label] = now
            self._pass_next[label] = now + AHEAD_HOT_GAP_S[0]
            self._pass_mark[label] = node.elements_in
            if not (tiered.ahead_begin(quiet=True) if force else tiered.ahead_begin()):
                self._pass_ended(label)
                return 0
            self._passing.add(label)
        tier = self.tiers[label]
        done = 0
        with _no_gc():
            while progress or self.monotonic() < deadline:
                progress = False
                part = tiered.ahead_take(AHEAD_ROWS)
                if part is None:
                    self._passing.discard(label)
                    self._pass_ended(label)
                    end = self.monotonic()
                    lo, hi = AHEAD_HOT_GAP_S
                    self._pass_next[label] = end + min(hi, max(lo, end - self._pass_began[label]))
                    break
                entries, encoded, deletes = part
                done += tier.write_ahead_hot(cid, entries, encoded, deletes, retained)
        return done

    def _pass_ended(self, label: str) -> None:
        """The pass over `label`'s entries reached its end: what changed before it began is written."""
        self._ended_began[label] = self._pass_began[label]
        self._clean_mark[label] = max(self._clean_mark.get(label, 0), self._pass_mark.get(label, 0))

    def sources_resumed(self) -> None:
        """The sources were released: what a pass during the pause saw may change again."""
        for node in self.nodes:
            resumed = getattr(getattr(node, "tiered", None), "sources_resumed", None)
            if resumed is not None:
                resumed()

    def written_ahead(self, cid: int) -> int:
        """Spilled rows of checkpoint `cid` written ahead so far."""
        return sum(t.ahead_rows for t in self.tiers.values() if t.ahead_cid == cid)

    def hot_written_ahead(self, cid: int) -> int:
        """Entries in memory (and deletions) of checkpoint `cid` written ahead so far."""
        return sum(t.ahead_hot for t in self.tiers.values() if t.ahead_cid == cid)

    @staticmethod
    def puts(parts: list[tuple[TierCheckpoint, Any]]) -> Iterator[tuple[bytes, bytes]]:
        """All physical puts of the parts."""
        return itertools.chain.from_iterable(ck.puts() for ck, _ in parts)

    def prewrite(self, parts: list[tuple[TierCheckpoint, Any]], backend: Any) -> list[tuple[bytes, bytes]]:
        """Write the parts' puts in chunks of `CHUNK` records (unsynced) and return the last, partial chunk,
        which belongs in the checkpoint's atomic batch.

        Bounds the memory of a large checkpoint and the time RocksDB holds the GIL per write. The records
        are new versions, invisible to restore until the manifest of their checkpoint is committed (the
        final, synced batch also makes these writes durable); after a crash before that, restore finds the
        node header of the unfinished checkpoint (written first) and purges its versions (`StateTier.restore`).
        """
        it = self.puts(parts)
        with _no_gc():
            while True:
                chunk = list(itertools.islice(it, CHUNK))
                if len(chunk) < CHUNK:
                    return chunk
                backend.write_batch(chunk, (), sync=False)

    @staticmethod
    def deletes(parts: list[tuple[TierCheckpoint, Any]]) -> Iterator[bytes]:
        """All physical deletes of the parts."""
        return itertools.chain.from_iterable(ck.deletes() for ck, _ in parts)

    @staticmethod
    def released(parts: list[tuple[TierCheckpoint, Any]], result: Any) -> Any:
        """Drop the captured entries once written (returns `result`): freeing millions of objects takes a
        while, better in the writer thread than on the event loop."""
        for ck, cap in parts:
            ck.entries.clear()
            ck.encoded.clear()
            cap.release()
        return result

    def committed(self, parts: list[tuple[TierCheckpoint, Any]]) -> None:
        """The batch is durable."""
        self.last_written = sum(ck.written for ck, _ in parts)
        self.last_captured = sum(ck.written - ck.ahead for ck, _ in parts)
        self.last_swept = sum(ck.swept for ck, _ in parts)
        for ck, _ in parts:
            ck.tier.committed(ck)

    def aborted(self, parts: list[tuple[TierCheckpoint, Any]]) -> None:
        """The batch was not written: everything captured stays to be written."""
        for ck, cap in parts:
            ck.tier.aborted(ck)
            cap.aborted()

    def stats(self) -> dict[str, Any]:
        """Per-node counters (entries in memory, evicted, loaded)."""
        try:
            self._stats = {n.label: n.tiered.stats() for n in self.nodes}
        except RuntimeError:  # a checkpoint's worker thread is changing a structure being counted: as before
            pass
        return self._stats

    def close(self) -> None:
        """Close (delete) the spill area; log what eviction did."""
        for label, stats in self.stats().items():
            if stats["evicted"] or stats["loaded"]:
                log.info(
                    "incremental state of step '%s': %d entries evicted (%d written to the spill area), "
                    "%d loaded back, %d in memory",
                    label,
                    stats["evicted"],
                    stats["spilled"],
                    stats["loaded"],
                    stats["hot_entries"],
                )
        self.spill.close()


class LoopStallMeter:
    """Measures the longest time the event loop could not run a callback while the meter is on.

    A callback re-arms itself every `period_s` and records how late it ran; work that holds the loop (or
    the GIL, from a thread) delays it. Needs an asyncio loop (uvloop included); a no-op otherwise.
    """

    def __init__(self, period_s: float = 0.001) -> None:
        self.period_s = period_s
        self.longest_s = 0.0
        self._handle: Any = None
        self._loop: Any = None
        self._due = 0.0

    def start(self) -> None:
        """Start measuring (resets the longest stall)."""
        self.longest_s = 0.0
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
            return
        self._arm()

    def _arm(self) -> None:
        self._due = time.monotonic() + self.period_s
        self._handle = self._loop.call_later(self.period_s, self._tick)

    def _tick(self) -> None:
        late = time.monotonic() - self._due
        if late > self.longest_s:
            self.longest_s = late
        self._arm()

    def stop(self) -> float:
        """Stop; returns the longest stall seen (including the time since the last tick)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            late = time.monotonic() - self._due
            if late > self.longest_s:
                self.longest_s = late
        return self.longest_s
