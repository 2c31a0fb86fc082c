"""Side inputs survive a restore: a side source that finished before a checkpoint replays nothing after a
restart, so the ParDo's side-input elements (and main input waiting for them) are part of the checkpoint."""

from __future__ import annotations

import glob
import json

import pytest

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms.userstate import CombiningValueStateSpec


def build(p, src, out):
    names = p | "Names" >> beam.Create([("a", "alpha"), ("b", "beta")])
    (
        p
        | ReadFromJson(src)
        | beam.Map(lambda e, table: [e["i"], table.get(e["k"], "MISSING")], beam.pvalue.AsDict(names))
        | WriteToJson(out)
    )


async def _stop_then_finish(tmp_path, builder):
    """Run the pipeline `builder` makes, stop it once its side source finished, start it again to the end;
    the rows the stopped and the finished run committed."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"i": i, "k": "ab"[i % 2]}) + "\n" for i in range(2000)))
    out = str(tmp_path / "out" / "rows")
    flags = [
        "--streaming",
        f"--state_dir={tmp_path / 'state'}",
        "--batch_size=10",
        "--checkpoint_interval=3600",
    ]

    p = beam.Pipeline(options=PipelineOptions(flags))
    builder(p, str(src), out)
    job = await p.start()
    assert await job.stop() == "STOPPED"  # a checkpoint after the side source finished, then exit
    first = [json.loads(line) for f in glob.glob(out + "*") for line in open(f)]

    p = beam.Pipeline(options=PipelineOptions(flags))
    builder(p, str(src), out)
    job = await p.start()
    assert await job.wait() == "DONE"
    rows = [json.loads(line) for f in glob.glob(out + "*") for line in open(f)]
    return first, rows


async def test_side_input_elements_are_restored_after_a_stop(tmp_path):
    first, rows = await _stop_then_finish(tmp_path, build)
    assert len(first) < 2000
    assert sorted(r[0] for r in rows) == list(range(2000))
    assert {r[1] for r in rows} == {"alpha", "beta"}, "side input lost after the restore"


class _CountPerKey(beam.DoFn):
    """A stateful DoFn (a count per key) that also reads a side input."""

    COUNT = CombiningValueStateSpec("n", sum)

    def process(self, kv, table, n=beam.DoFn.StateParam(COUNT)):
        n.add(1)
        yield [kv[1]["i"], table.get(kv[1]["k"], "MISSING")]


def build_stateful(p, src, out):
    names = p | "Names" >> beam.Create([("a", "alpha"), ("b", "beta")])
    (
        p
        | ReadFromJson(src)
        | beam.Map(lambda e: (e["k"], e))
        | beam.ParDo(_CountPerKey(), beam.pvalue.AsDict(names))
        | WriteToJson(out)
    )


async def test_side_inputs_of_a_stateful_dofn_are_restored_after_a_stop(tmp_path):
    """A stateful DoFn checkpoints its side inputs beside its user state: a restored run sees them."""
    first, rows = await _stop_then_finish(tmp_path, build_stateful)
    assert len(first) < 2000
    assert sorted(r[0] for r in rows) == list(range(2000))
    assert {r[1] for r in rows} == {"alpha", "beta"}, "side input lost after the restore"


def _build_big_side(p, src, out, names):
    table = p | "Names" >> beam.Create([(f"k{i}", "v" * 100 + str(i)) for i in range(names)])
    (
        p
        | ReadFromJson(src, watch=True, poll_interval=0.02)
        | beam.Map(lambda e: (e["k"], e))
        | beam.ParDo(_CountPerKey(), beam.pvalue.AsDict(table))
        | WriteToJson(out)
    )


async def test_a_stateful_dofns_side_input_is_written_once_not_at_every_checkpoint(tmp_path, until):
    """On the incremental (RocksDB) path a checkpoint with nothing changed writes no side input, and
    a run started again from such checkpoints still sees the whole side input."""
    from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
    from millstream.state import CheckpointStore

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"i": i, "k": f"k{i}"}) + "\n" for i in range(10)))
    out = str(tmp_path / "out" / "rows")
    flags = ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=3600"]
    side_bytes = 5000 * 100

    p = beam.Pipeline(options=PipelineOptions(flags))
    _build_big_side(p, str(src), out, 5000)
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_out >= 10, "the first rows")
    ck = job.plan.coordinator
    store = CheckpointStore(ck.backend)
    await ck.checkpoint()
    assert store.latest().bytes_written > side_bytes  # the first checkpoint after the side input completed
    await ck.checkpoint()
    await ck.checkpoint()
    assert store.latest().bytes_written < side_bytes / 10, "the side input was written again"
    assert await job.stop() == "STOPPED"

    with open(src, "a") as f:
        f.write("".join(json.dumps({"i": i, "k": f"k{i}"}) + "\n" for i in range(10, 20)))
    p = beam.Pipeline(options=PipelineOptions(flags))
    _build_big_side(p, str(src), out, 5000)
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_out >= 10, "the rows after the restart")
    assert await job.drain() == "DONE"
    rows = [json.loads(line) for f in glob.glob(out + "*") for line in open(f)]
    assert sorted(rows) == sorted([i, "v" * 100 + str(i)] for i in range(20))


_WINDOWS = 200  # fixed windows of 10 s over the main input's timestamps 0..1999 s


def _side_rows() -> list[tuple[str, str, int]]:
    """Per 10 s window and key, a value naming both (key, value, timestamp in the window)."""
    return [(k, f"{k}@{w}", w * 10 + 3) for w in range(_WINDOWS) for k in "ab"]


def build_windowed(p, src, out, stateful):
    """A FixedWindows(10) side input read per main window, by a plain Map (its side inputs are a whole
    snapshot) or by a stateful DoFn (its side inputs are in its incremental records)."""
    names = (
        p
        | "Names" >> beam.Create(_side_rows())
        | "StampSide" >> beam.MapTuple(lambda k, v, t: beam.window.TimestampedValue((k, v), t))
        | "SideWindows" >> beam.WindowInto(beam.window.FixedWindows(10))
    )
    main = (
        p
        | ReadFromJson(src)
        | "StampMain" >> beam.Map(lambda e: beam.window.TimestampedValue(e, e["i"]))
        | "MainWindows" >> beam.WindowInto(beam.window.FixedWindows(10))
    )
    if stateful:
        joined = (
            main | beam.Map(lambda e: (e["k"], e)) | beam.ParDo(_CountPerKey(), beam.pvalue.AsDict(names))
        )
    else:
        joined = main | beam.Map(
            lambda e, table: [e["i"], table.get(e["k"], "MISSING")], beam.pvalue.AsDict(names)
        )
    joined | WriteToJson(out)


def _rows(out):
    return sorted(json.loads(line) for f in glob.glob(out + "*") for line in open(f))


@pytest.mark.parametrize("stateful", [False, True], ids=["whole-snapshot", "incremental"])
async def test_a_windowed_side_input_is_restored_with_its_windows(tmp_path, stateful):
    """A windowed side input's elements come back in their windows after a restore, on both state paths:
    each main window still sees its own side window, as in an uninterrupted run."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"i": i, "k": "ab"[i % 2]}) + "\n" for i in range(2000)))

    def flags(name):
        return [
            "--streaming",
            f"--state_dir={tmp_path / name}",
            "--batch_size=10",
            "--checkpoint_interval=3600",
        ]

    whole = str(tmp_path / "whole" / "rows")
    p = beam.Pipeline(options=PipelineOptions(flags("state-whole")))
    build_windowed(p, str(src), whole, stateful)
    assert await (await p.start()).wait() == "DONE"

    out = str(tmp_path / "out" / "rows")
    p = beam.Pipeline(options=PipelineOptions(flags("state")))
    build_windowed(p, str(src), out, stateful)
    job = await p.start()
    assert await job.stop() == "STOPPED"  # a checkpoint after the side source finished, then exit
    assert len(_rows(out)) < 2000

    p = beam.Pipeline(options=PipelineOptions(flags("state")))
    build_windowed(p, str(src), out, stateful)
    job = await p.start()
    assert await job.wait() == "DONE"
    rows = _rows(out)
    expected = sorted([i, f"{'ab'[i % 2]}@{i // 10}"] for i in range(2000))
    assert rows == expected, "a main window saw the wrong side window after the restore"
    assert rows == _rows(whole)
