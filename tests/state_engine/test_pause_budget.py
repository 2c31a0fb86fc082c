"""The pause budget (``--checkpoint_pause_budget``): a checkpoint that falls due while the input creates state
faster than the write-ahead writes it pauses the sources only for the budget at a time; the backlog is written
over several such pauses, and the capture that ends the last one writes fewer rows than the catch-up
threshold. Real RocksDB store, a running streaming job (watched input file); the output after a restore of
that checkpoint is each key's sum, once."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model import window as W
from millstream.engine.runtime.checkpoint.coordinator import CheckpointError
from millstream.engine.runtime.checkpoint.versioned_store import live_entries
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


def _pipeline(src: str, out: str, state: str, budget: float = BUDGET) -> Any:
    opts = PipelineOptions(
        [
            "--streaming",
            f"--state_dir={state}",
            "--checkpoint_interval=100000",
            "--state_cache_entries=500",
            f"--checkpoint_pause_budget={budget}",
        ]
    )
    p = beam.Pipeline(options=opts)
    (
        p
        | ReadFromJson(
            src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=1000.0, watch=True, poll_interval=0.02
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
    node = _reducer(job)
    # due while the input flows: half of it read, the rest still coming
    await until(lambda: node.elements_in >= KEYS // 2, "half of the input")
    ck = job.plan.coordinator
    await ck.checkpoint()
    taken = node.elements_in
    # more than one pause could write in its budget (~50k spilled rows in 75 ms): deferred at least once
    assert ck.last_pauses >= 2 and ck.last_deferred_s > 0
    assert ck.last_caught_up_rows >= KEYS // 2
    # the capture in the last pause wrote less than the catch-up threshold: the header alone after a quiet
    # pass, or (no catch-up needed) the few entries changed since the last pass began, bounded below it
    assert ck.incremental.last_captured < CATCH_UP_MIN
    assert ck.incremental.last_written >= taken  # every entry taken so far is in the checkpoint
    # the pause bound itself, as the coordinator measured it (a wide margin: a loaded machine)
    assert ck.last_pause_s < BUDGET + 0.5
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
