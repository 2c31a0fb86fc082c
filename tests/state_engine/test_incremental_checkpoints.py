"""Incremental checkpoints write only what changed: counted from the manifests of a real RocksDB store.

Reducer level: a reducer with incremental state (`ReducerState` over a `StateTier`) checkpointed the way the
Checkpointer does it. Pipeline level: a running streaming job (watched input file) checkpointed on demand.
"""

from __future__ import annotations

import json
import os
from typing import Any

import millstream as beam
from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.checkpoint.reducer_records import ReducerState
from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier, oldest_retained
from millstream.engine.runtime.windowing.operator import ReducerNode
from millstream.engine.runtime.windowing.reduce_fn_runner import create_reducer
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore, RocksDBBackend
from millstream.state.keys import operator_prefix
from millstream.transforms import window

S = 1_000_000  # one second in µs


class Sum(CombineFn):
    """Sums ints."""

    def create_accumulator(self) -> int:
        return 0

    def add_input(self, acc: int, v: int) -> int:
        return acc + v

    def merge_accumulators(self, accs: Any) -> int:
        return sum(accs)

    def extract_output(self, acc: int) -> int:
        return acc


class Node:
    """A reducer with incremental state in a RocksDB store, checkpointed like the Checkpointer does."""

    def __init__(self, path: str, reducer: Any, bound: int = 0) -> None:
        self.backend = RocksDBBackend(path)
        self.store = CheckpointStore(self.backend, keep=3)
        self.spill = SpillArea(path + ".spill")
        self.tier = StateTier("op", self.backend, self.spill, bound)
        self.reducer = reducer
        self.state = ReducerState(reducer, self.tier)
        self.cid = 0

    def checkpoint(self) -> Any:
        self.cid += 1
        cap = self.state.capture()
        ck = self.tier.checkpoint(
            self.cid,
            oldest_retained(self.store, 3, self.cid),
            cap.header,
            cap.entries,
            cap.deletes,
            cap.encoded,
        )
        manifest = self.store.commit(self.cid, ck.puts(), ck.deletes(), fingerprint="f", wall_time_micros=0)
        self.tier.committed(ck)
        return manifest

    def stored(self) -> int:
        """Physical records of the node in the store (all versions)."""
        return sum(1 for _ in self.backend.scan_prefix(operator_prefix("op")))

    def close(self) -> None:
        self.spill.close()
        self.backend.close()


def feed(r: Any, keys: list[str], t_s: float, v: int = 1) -> list[Any]:
    return r.process_bundle(keys, [v] * len(keys), [int(t_s * S)] * len(keys))


def test_fixed_windows_write_only_changed_entries(tmp_path: Any) -> None:
    node = Node(str(tmp_path / "db"), create_reducer(W.FixedWindows(60), combine_fn=Sum()))
    r = node.reducer
    keys = [f"k{i}" for i in range(1000)]
    feed(r, keys, 10)
    assert node.checkpoint().puts == 1 + 1000  # header + every (slot, key)
    feed(r, keys[:10], 20)
    assert node.checkpoint().puts == 1 + 10  # only the changed entries
    assert node.checkpoint().puts == 1  # nothing changed: the header only
    feed(r, keys[:5], 70)  # the next window: new entries
    assert node.checkpoint().puts == 1 + 5
    panes = r.advance_input_watermark(61 * S)  # the first window fires; its slot dies as a whole
    assert len(panes) == 1000 and {p[2] for p in panes if p[0] in keys[:10]} == {2}
    assert node.checkpoint().puts == 1  # no per-entry deletes for the dead slot
    for _ in range(3):  # once no retained checkpoint lists the slot, it is range-deleted
        node.checkpoint()
    assert node.stored() < 30, node.stored()
    node.close()


def test_superseded_versions_are_swept(tmp_path: Any) -> None:
    """Rewriting the same entries at every checkpoint keeps about the live entries plus what retention needs."""
    node = Node(str(tmp_path / "db"), create_reducer(W.GlobalWindows(), combine_fn=Sum()))
    keys = [f"k{i}" for i in range(500)]
    for step in range(30):
        feed(node.reducer, keys, step)
        assert node.checkpoint().puts == 1 + 500
    # 500 live entries; 3 retained checkpoints keep up to 3 versions each; the sweep trails the writes
    assert node.stored() <= 4 * 500, node.stored()
    node.close()


def test_sessions_write_changed_keys_and_deletions(tmp_path: Any) -> None:
    node = Node(str(tmp_path / "db"), create_reducer(W.Sessions(10), combine_fn=Sum()))
    r = node.reducer
    keys = [f"k{i}" for i in range(200)]
    feed(r, keys, 0)
    assert node.checkpoint().puts == 1 + 200  # one record per key (its sessions)
    feed(r, keys[:3], 5)
    assert node.checkpoint().puts == 1 + 3
    feed(r, keys[:7], 30)  # new sessions for 7 keys
    panes = r.advance_input_watermark(12 * S)  # the sessions [0, 10) close (3 were extended to [0, 15))
    assert len(panes) == 197
    m = node.checkpoint()
    assert m.puts == 1 + 200  # 7 keys with a new session, the other 193 fired keys deleted
    assert node.checkpoint().puts == 1
    node.close()


def test_general_path_writes_changed_keys(tmp_path: Any) -> None:
    reducer = create_reducer(
        W.FixedWindows(60),
        T.AfterWatermark(early=T.AfterCount(2)),
        T.AccumulationMode.ACCUMULATING,
        combine_fn=Sum(),
    )
    node = Node(str(tmp_path / "db"), reducer)
    keys = [f"k{i}" for i in range(300)]
    feed(reducer, keys, 1)
    assert node.checkpoint().puts == 1 + 300
    feed(reducer, keys[:4], 2)  # the early trigger fires for these 4
    assert node.checkpoint().puts == 1 + 4
    node.close()


def test_restore_with_a_small_memory_bound_reads_entries_lazily(tmp_path: Any) -> None:
    """A restored reducer holds only the header in memory for slots; entries come back when windows fire."""
    path = str(tmp_path / "db")
    node = Node(path, create_reducer(W.FixedWindows(60), combine_fn=Sum()), bound=50)
    keys = [f"k{i}" for i in range(400)]
    feed(node.reducer, keys, 1)
    feed(node.reducer, keys[:100], 2)
    node.state.maybe_evict()
    assert node.state.hot_entries() <= 50
    node.checkpoint()
    node.close()
    node = Node(path, create_reducer(W.FixedWindows(60), combine_fn=Sum()), bound=50)
    header = node.tier.restore(1)
    node.state.restore(header)
    assert node.state.hot_entries() == 0
    feed(node.reducer, keys[:3], 3)  # more for 3 keys: fresh in-memory parts, merged when the window fires
    panes = node.reducer.advance_input_watermark(MAX_MICROS)
    got = {p[0]: p[2] for p in panes}
    assert got == {k: (3 if i < 3 else 2 if i < 100 else 1) for i, k in enumerate(keys)}
    node.close()


# -- pipeline level ---------------------------------------------------------------------------------------


def _pipeline(src: str, out: str, state: str) -> Any:
    opts = PipelineOptions(
        ["--streaming", f"--state_dir={state}", "--checkpoint_interval=100000", "--state_cache_entries=100"]
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
        | beam.Map(lambda kv, w=beam.DoFn.WindowParam: [kv[0], int(w.start), kv[1]])
        | WriteToJson(out)
    )
    return p


async def test_a_running_job_checkpoints_only_changed_keys_and_resumes(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "sums")
    state = str(tmp_path / "state")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(1000)])
    p = _pipeline(src, out, state)
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, ReducerNode))
    await until(lambda: node.elements_in >= 1000, "the input")
    ck = job.plan.coordinator
    await ck.checkpoint()
    store = CheckpointStore(ck.backend)
    first = store.latest()
    assert first is not None and first.puts == 1 + 1000  # the reducer's header and entries (10x its bound)
    assert node.tiered.stats()["hot_entries"] <= 100
    append_jsonl(src, [{"k": f"k{i}", "t": 20, "v": 2} for i in range(5)])
    await until(lambda: node.elements_in >= 1005, "the appended input")
    await ck.checkpoint()
    second = store.latest()
    assert second is not None and second.checkpoint_id > first.checkpoint_id
    assert second.puts == 1 + 5
    loaded = node.tiered.stats()["loaded"]
    await job.stop()
    # a stop ends at its checkpoint: no window fires, no stored entry is read back
    assert node.elements_out == 0 and node.tiered.stats()["loaded"] == loaded
    # a new run restores the checkpoint (entries evicted and stored) and finishes the window correctly
    append_jsonl(src, [{"k": "k0", "t": 30, "v": 4}])
    p = _pipeline(src, out, state)
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, ReducerNode))
    await until(lambda: node.elements_in >= 1, "the new input")
    await job.drain()
    rows = []
    for name in sorted(os.listdir(os.path.dirname(out))):
        if name.startswith("sums"):
            with open(os.path.join(os.path.dirname(out), name)) as f:
                rows.extend(json.loads(line) for line in f)
    expected = {f"k{i}": 1 + (2 if i < 5 else 0) + (4 if i == 0 else 0) for i in range(1000)}
    assert sorted(rows) == sorted([k, 0, v] for k, v in expected.items())
