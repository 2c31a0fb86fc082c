"""The pause budget (``--checkpoint_pause_budget``): a checkpoint that falls due while the input creates state
faster than the write-ahead writes it pauses the sources only for the budget at a time; the backlog is written
over several such pauses, and the capture that ends the last one writes fewer rows than the catch-up
threshold. Real RocksDB store, a running streaming job (watched input file); the output after a restore of
that checkpoint is each key's sum, once. The coordinator's budget decisions read the job's clock
(`Checkpointer.clock`): the tests give it one whose monotonic reading moves only when they move it, and a
catch-up that writes one slice per call and takes a set time, so how many pauses a backlog needs does not
depend on the machine's speed."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import anyio
import pytest

import millstream as beam
from millstream.engine.model import window as W
from millstream.engine.runtime.checkpoint.coordinator import Checkpointer, CheckpointError
from millstream.engine.runtime.checkpoint.incremental import AHEAD_ROWS
from millstream.engine.runtime.checkpoint.versioned_store import live_entries
from millstream.engine.runtime.exec.clock import SystemClock
from millstream.engine.runtime.windowing.operator import ReducerNode
from millstream.engine.runtime.windowing.reduce_fn_runner import create_reducer
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore, MsgpackCodec
from millstream.transforms import window
from tests.state_engine.test_incremental_checkpoints import Node, Sum, feed

KEYS = 100_000
BUDGET = 0.1
#: Rows below which a checkpoint's capture writes them in the pause without catching up first (lowered).
CATCH_UP_MIN = 1000


#: Job-clock time one catch-up slice takes (`_one_slice_per_call`).
SLICE_S = 0.01


class SteppedClock(SystemClock):
    """The system clock, except that its monotonic reading (what the checkpoint coordinator times its pauses
    and deferrals on) moves only when the test moves it; processing time and sleeps stay real."""

    def __init__(self) -> None:
        self.mono_us = 0

    def monotonic_us(self) -> int:
        """The reading the test set."""
        return self.mono_us


async def _stepped(job: Any, until: Any) -> tuple[Checkpointer, SteppedClock]:
    """The job's coordinator, once it runs, given a `SteppedClock` (it and its write-ahead read it)."""
    await until(lambda: job.plan.coordinator is not None, "the coordinator")
    ck = job.plan.coordinator
    assert ck.count == 0  # before its first checkpoint: every time it read comes from the new clock
    clock = SteppedClock()
    ck.clock = clock
    return ck, clock


def _one_slice_per_call(ck: Checkpointer, clock: SteppedClock) -> dict[float, int]:
    """Make each catch-up call write one slice (at most `AHEAD_ROWS` rows) and take `SLICE_S` on `clock`;
    returns the rows written per pause (keyed by when the pause went quiet)."""
    real = ck.incremental.catch_up
    per_pause: dict[float, int] = {}

    def one_slice(
        cid: int, deadline: float, retained: int, quiet_since: float, progress: bool = False
    ) -> tuple[bool, int]:
        # a deadline already reached with `progress`: exactly one slice is written
        done, rows = real(cid, clock.monotonic_us() / 1e6, retained, quiet_since, progress=True)
        clock.mono_us += int(SLICE_S * 1e6)
        per_pause[quiet_since] = per_pause.get(quiet_since, 0) + rows
        return done, rows

    ck.incremental.catch_up = one_slice  # type: ignore[method-assign]
    return per_pause


def _pipeline(
    src: str, out: str, state: str, budget: float = BUDGET, interval: float = 100000, watch: bool = True
) -> Any:
    opts = PipelineOptions(
        [
            "--streaming",
            f"--state_dir={state}",
            f"--checkpoint_interval={interval}",
            "--state_cache_entries=500",
            f"--checkpoint_pause_budget={budget}",
        ]
    )
    p = beam.Pipeline(options=opts)
    (
        p
        | ReadFromJson(
            src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=1000.0, watch=watch, poll_interval=0.02
        )
        | beam.Map(lambda e: (e["k"], e["v"]))
        | beam.WindowInto(window.FixedWindows(3600))
        | beam.CombinePerKey(sum)
        | beam.Map(lambda kv: [kv[0], kv[1]])
        | WriteToJson(out)
    )
    return p


def _reducer(job: Any) -> Any:
    return next(n for n in job.plan.nodes.values() if isinstance(n, ReducerNode))


async def test_a_backlog_over_the_budget_is_written_in_pauses_within_it(
    tmp_path: Any, append_jsonl: Any, until: Any, monkeypatch: Any
) -> None:
    # no write-ahead between checkpoints: the whole backlog is left to the checkpoint's pauses
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_HOT_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_CATCH_UP_MIN", str(CATCH_UP_MIN))
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "sums")
    state = str(tmp_path / "state")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(KEYS)])
    job = await _pipeline(src, out, state).start()
    ck, clock = await _stepped(job, until)
    per_pause = _one_slice_per_call(ck, clock)
    node = _reducer(job)
    # due while the input flows: half of it read, the rest still coming
    await until(lambda: node.elements_in >= KEYS // 2, "half of the input")
    await ck.checkpoint()
    taken = node.elements_in
    # a pause begins slices until 3/4 of the budget (the rest is kept for the capture): 8 slices, fewer rows
    # than the ~50k spilled ones, so the checkpoint was deferred at least once, and no pause wrote more
    slices = 8
    assert (slices - 1) * SLICE_S < BUDGET * 3 / 4 <= slices * SLICE_S
    assert ck.last_pauses >= 2 and ck.last_deferred_s > 0
    assert len(per_pause) >= 2
    assert max(per_pause.values()) <= slices * AHEAD_ROWS
    assert ck.last_caught_up_rows == sum(per_pause.values()) >= KEYS // 2
    # the capture in the last pause wrote less than the catch-up threshold: the header alone after a quiet
    # pass, or (no catch-up needed) the few entries changed since the last pass began, bounded below it
    assert ck.incremental.last_captured < CATCH_UP_MIN
    assert ck.incremental.last_written >= taken  # every entry taken so far is in the checkpoint
    # the pause bound itself, on the coordinator's clock
    assert ck.last_pause_s <= BUDGET
    await job.cancel()  # nothing after that checkpoint is kept
    # a new run restores it, reads the rest of the input again and fires the window: every key's sum once
    job = await _pipeline(src, out, state).start()
    await until(lambda: _reducer(job).elements_in >= KEYS - taken, "the rest of the input")
    await job.drain()
    rows = []
    for name in sorted(os.listdir(os.path.dirname(out))):
        if name.startswith("sums"):
            with open(os.path.join(os.path.dirname(out), name)) as f:
                rows.extend(json.loads(line) for line in f)
    assert sorted(rows) == sorted([f"k{i}", 1] for i in range(KEYS))


async def test_a_checkpoint_deferred_to_its_bound_is_taken_with_what_is_left(
    tmp_path: Any, append_jsonl: Any, until: Any, monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_HOT_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_CATCH_UP_MIN", str(CATCH_UP_MIN))
    src = str(tmp_path / "in.jsonl")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(KEYS // 2)])
    job = await _pipeline(src, str(tmp_path / "out" / "sums"), str(tmp_path / "state"), budget=0.001).start()
    node = _reducer(job)
    await until(lambda: node.elements_in >= KEYS // 2, "the input")
    ck = job.plan.coordinator
    ck.max_deferral_s = 0.0  # no deferral at all: the first pause that does not catch up takes it anyway
    with caplog.at_level(logging.WARNING, logger="millstream.checkpoint"):
        cid = await ck.checkpoint()
    assert "did not catch up" in caplog.text
    # one pause, whose slice (at least one per pause) did not write the ~50k spilled rows: the capture did
    assert ck.last_pauses == 1 and ck.last_deferred_s == 0
    assert 0 < ck.last_caught_up_rows < KEYS // 2
    assert ck.incremental.last_captured > 1
    assert ck.incremental.last_written >= KEYS // 2
    assert CheckpointStore(ck.backend).latest().checkpoint_id == cid
    await job.cancel()


async def test_a_negative_budget_is_refused(tmp_path: Any, append_jsonl: Any) -> None:
    src = str(tmp_path / "in.jsonl")
    append_jsonl(src, [{"k": "k", "t": 10, "v": 1}])
    p = _pipeline(src, str(tmp_path / "out" / "sums"), str(tmp_path / "state"), budget=-1)
    with pytest.raises(CheckpointError, match="--checkpoint_pause_budget"):
        job = await p.start()
        await job.wait()


def _checkpoint_holds(node: Any) -> list[Any]:
    codec = MsgpackCodec(allow_pickle=True)
    _, entries = live_entries(node.backend, "op", node.cid)
    return sorted((ns, codec.decode(k), codec.decode(v)) for ns, k, v in entries)


def _quiet_pass(node: Any) -> int:
    """What `IncrementalNodes.catch_up` does for one node: its spilled rows moved, then a quiet pass, written
    ahead of the next checkpoint; returns the rows written."""
    rows = node.tier.write_ahead(node.cid + 1, 100_000, 1, True)
    state = node.state
    assert state.ahead_begin(quiet=True) > 0
    while (part := state.ahead_take(64)) is not None:
        rows += node.tier.write_ahead_hot(node.cid + 1, *part, 1)
    return rows


def test_a_quiet_pass_leaves_the_capture_nothing_and_the_same_checkpoint(tmp_path: Any) -> None:
    # two reducers fed alike with a small memory bound (evicted slots: stored parts are merged in); one is
    # checkpointed by its capture alone, the other after a quiet pass wrote its changes ahead
    nodes = [
        Node(str(tmp_path / name), create_reducer(W.FixedWindows(60), combine_fn=Sum()), bound=200)
        for name in ("capture", "quiet")
    ]
    first = [f"k{i}" for i in range(1000)]
    again = first[:300] + [f"k{i}" for i in range(1000, 1100)]
    for node in nodes:
        feed(node.reducer, first, 10)
        node.state.maybe_evict()
        node.checkpoint()
        feed(node.reducer, again, 20, v=2)
        node.state.maybe_evict()
    reference, quiet = nodes
    assert _quiet_pass(quiet) == 400  # the 300 keys changed again (their stored parts merged) and 100 new
    assert quiet.checkpoint().puts == 1  # its batch: the header, no changed entry, no spilled row
    assert reference.checkpoint().puts == 1 + 400
    assert _checkpoint_holds(quiet) == _checkpoint_holds(reference)
    # once the sources resume, changes are captured again
    for node in nodes:
        node.state.sources_resumed()
        feed(node.reducer, first[:5], 30, v=7)
        node.state.maybe_evict()
        node.checkpoint()
    assert _checkpoint_holds(quiet) == _checkpoint_holds(reference)
    for node in nodes:
        node.close()


def _stalled(clock: SteppedClock) -> Any:
    """A catch-up that spends the pause's budget on `clock` writing nothing (a store far too slow)."""

    def stalled(
        cid: int, deadline: float, retained: int, quiet_since: float, progress: bool = False
    ) -> tuple[bool, int]:
        clock.mono_us = max(clock.mono_us, math.ceil(deadline * 1e6))
        return False, 0

    return stalled


def _sums(out: str) -> list[Any]:
    """The rows the job wrote (every file of its output)."""
    rows = []
    for name in sorted(os.listdir(os.path.dirname(out))):
        if name.startswith("sums"):
            with open(os.path.join(os.path.dirname(out), name)) as f:
                rows.extend(json.loads(line) for line in f)
    return rows


async def test_a_drain_during_a_deferred_checkpoint_ends_it_at_once(
    tmp_path: Any, append_jsonl: Any, until: Any, monkeypatch: Any, caplog: Any
) -> None:
    # a periodic checkpoint that cannot catch up (every pause spends its budget writing nothing) and may be
    # deferred for an hour: the drain takes it at once, with what is left, then ends with its output complete
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_HOT_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_CATCH_UP_MIN", str(CATCH_UP_MIN))
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "sums")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(KEYS)])
    job = await _pipeline(src, out, str(tmp_path / "state"), interval=0.5).start()
    ck, clock = await _stepped(job, until)
    ck.max_deferral_s = 3600.0
    ck.incremental.catch_up = _stalled(clock)  # type: ignore[method-assign]
    node = _reducer(job)
    await until(lambda: node.elements_in >= KEYS and ck.last_deferred_s > 0, "the input, a deferral")
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="millstream.checkpoint"):
        assert await job.drain(timeout=30) == "DONE"  # (a timeout cancels the job)
    assert "the job is draining" in caplog.text
    assert time.monotonic() - began < 30
    assert sorted(_sums(out)) == sorted([f"k{i}", 1] for i in range(KEYS))


async def test_a_deferral_ends_once_every_source_has_finished(
    tmp_path: Any, append_jsonl: Any, until: Any, monkeypatch: Any, caplog: Any
) -> None:
    # a bounded input read while a periodic checkpoint is deferred (it cannot catch up, and may be deferred
    # for an hour): once the source has finished, a gap lets no input through, so it is taken at once and
    # the job ends at the end of its input
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_WRITE_AHEAD_HOT_MIN", str(10**12))
    monkeypatch.setenv("MILLSTREAM_CATCH_UP_MIN", str(CATCH_UP_MIN))
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "sums")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(KEYS)])
    job = await _pipeline(src, out, str(tmp_path / "state"), interval=0.1, watch=False).start()
    ck, clock = await _stepped(job, until)
    ck.max_deferral_s = 3600.0
    ck.incremental.catch_up = _stalled(clock)  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="millstream.checkpoint"), anyio.fail_after(30):
        assert await job.wait() == "DONE"
    assert "deferred" in caplog.text  # (the input outlasted the first periodic checkpoint)
    assert "every source has finished" in caplog.text
    assert sorted(_sums(out)) == sorted([f"k{i}", 1] for i in range(KEYS))
