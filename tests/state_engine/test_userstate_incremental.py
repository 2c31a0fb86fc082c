"""User state and timers are checkpointed incrementally: a checkpoint writes only the (key, window)s changed
since the previous one (counted from the manifests of a real RocksDB store), and a new run restores state
and timers from those records and finishes correctly."""

from __future__ import annotations

import glob
import json
from typing import Any

import millstream as beam
from millstream.daemon.jobs_cli import parse_metrics, summarize
from millstream.daemon.metrics import JobCollector, Sampler, make_registry, render
from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer

DoFn = beam.DoFn


class TotalAtTheEnd(DoFn):
    """Sums each key's values in a value cell and keeps them in a bag; an event-time timer 500 s after the
    key's latest element emits ``[key, total, sorted values]`` and clears the state."""

    TOTAL = ReadModifyWriteStateSpec("total", None)
    VALUES = BagStateSpec("values", None)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        t: Any = DoFn.TimestampParam,
        total: Any = DoFn.StateParam(TOTAL),
        values: Any = DoFn.StateParam(VALUES),
        end: Any = DoFn.TimerParam(END),
    ) -> Any:
        total.write((total.read() or 0) + element[1])
        values.add(element[1])
        end.set(t + 500)
        return []

    @on_timer(END)
    def emit(
        self,
        key: Any = DoFn.KeyParam,
        total: Any = DoFn.StateParam(TOTAL),
        values: Any = DoFn.StateParam(VALUES),
    ) -> Any:
        yield [key, total.read(), sorted(values.read())]
        total.clear()
        values.clear()


def _pipeline(src: str, out: str, state: str) -> Any:
    opts = PipelineOptions(["--streaming", f"--state_dir={state}", "--checkpoint_interval=100000"])
    p = beam.Pipeline(options=opts)
    (
        p
        | ReadFromJson(
            src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=10_000.0, watch=True, poll_interval=0.02
        )
        | beam.Map(lambda e: (e["k"], e["v"]))
        | beam.ParDo(TotalAtTheEnd())
        | WriteToJson(out)
    )
    return p


async def test_checkpoints_write_only_changed_keys_and_a_new_run_resumes(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "totals")
    state = str(tmp_path / "state")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(1000)])
    job = await _pipeline(src, out, state).start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 1000, "the input")
    ck = job.plan.coordinator
    await ck.checkpoint()
    store = CheckpointStore(ck.backend)
    first = store.latest()
    assert first is not None and first.puts == 1 + 1000  # the node's header and one entry per key
    status = job.status()["checkpoints"]
    assert status["last_records_written"] == 1 + 1000
    assert status["state"][node.label]["hot_entries"] == 1000
    assert status["max_loop_stall_s"] >= status["last_loop_stall_s"] >= 0
    exposition = render(make_registry(JobCollector(job, Sampler(job), {}))).decode()
    assert f'millstream_state_entries_in_memory{{step="{node.label}"}} 1000.0' in exposition
    assert "millstream_checkpoint_records_written 1001.0" in exposition
    summary = summarize(parse_metrics(exposition))  # what `millstream jobs describe` shows
    assert summary["checkpoints"]["last_records_written"] == 1001
    assert summary["checkpoints"]["last_loop_stall_s"] == status["last_loop_stall_s"]
    assert {s["step"]: s for s in summary["steps"]}[node.label]["state_entries_in_memory"] == 1000
    append_jsonl(src, [{"k": f"k{i}", "t": 20, "v": 2} for i in range(5)])
    await until(lambda: node.elements_in >= 1005, "the appended input")
    await ck.checkpoint()
    second = store.latest()
    assert second is not None and second.puts == 1 + 5
    await ck.checkpoint()
    third = store.latest()
    assert third is not None and third.puts <= 1  # nothing changed: at most the header
    await job.stop()
    assert node.elements_out == 0 and not glob.glob(out + "-c*"), "a stop fired timers"

    # a new run restores cells and timers from the records; the drain fires every timer once
    append_jsonl(src, [{"k": "k0", "t": 30, "v": 4}])
    job = await _pipeline(src, out, state).start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 1, "the new input")
    assert len(node.key_windows) == 1000 and node.n_timers == 1000
    await job.drain()
    rows = []
    for name in sorted(glob.glob(out + "-c*")):
        with open(name) as f:
            rows.extend(json.loads(line) for line in f)
    expected = []
    for i in range(1000):
        values = [1] + ([2] if i < 5 else []) + ([4] if i == 0 else [])
        expected.append([f"k{i}", sum(values), values])
    assert sorted(rows) == sorted(expected)


async def test_state_cleared_by_a_timer_is_deleted_from_the_store(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "totals")
    state = str(tmp_path / "state")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(50)])
    job = await _pipeline(src, out, state).start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 50, "the input")
    ck = job.plan.coordinator
    await ck.checkpoint()
    # t=12000 moves the watermark to 2000 (out of orderness 10000 s): the 50 timers (at 510) fire and clear
    append_jsonl(src, [{"k": "last", "t": 12_000, "v": 7}])
    await until(lambda: len(node.key_windows) == 1, "the timers to fire")
    await ck.checkpoint()
    second = CheckpointStore(ck.backend).latest()
    assert second is not None and second.puts == 1 + 50 + 1  # header, 50 deletions, the new key
    await job.stop()
    append_jsonl(src, [{"k": "next", "t": 12_001, "v": 1}])
    job = await _pipeline(src, out, state).start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 1, "the new input")
    assert (
        sorted(key_window_id[0] for key_window_id in node.key_windows) == ["last", "next"]
        and node.n_timers == 2
    )
    await job.cancel()


async def test_a_whole_snapshot_is_migrated_by_writing_everything(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    """State restored from a whole snapshot (the format before user state was incremental) is written in
    full by the next checkpoint, then incrementally."""
    src = str(tmp_path / "in.jsonl")
    append_jsonl(src, [{"k": f"k{i}", "t": 10, "v": 1} for i in range(20)])
    job = await _pipeline(src, str(tmp_path / "out" / "totals"), str(tmp_path / "state")).start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 20, "the input")
    ck = job.plan.coordinator
    await ck.checkpoint()
    node.restore_state(node.snapshot_state())  # synchronously, between two steps of the idle job
    await ck.checkpoint()
    store = CheckpointStore(ck.backend)
    latest = store.latest()
    assert latest is not None and latest.puts == 1 + 20
    await ck.checkpoint()
    latest = store.latest()
    assert latest is not None and latest.puts <= 1
    assert len(node.key_windows) == 20 and node.n_timers == 20
    await job.cancel()
