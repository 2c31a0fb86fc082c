"""A damaged newest checkpoint whose output was already committed: by default the job refuses to start,
naming the damaged checkpoint, the committed output that would be redone and how to proceed; with
--accept_checkpoint_fallback it restores the older checkpoint, logs a WARNING, shows the fallback in
`status()` and /metrics, and the final output is exact. Real RocksDB stores and files."""

from __future__ import annotations

import glob
import json
from typing import Any

import pytest

import millstream as beam
from millstream.daemon.metrics import JobCollector, Sampler
from millstream.engine.runtime.checkpoint.coordinator import CheckpointFallbackError
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore, RocksDBBackend
from millstream.state.checkpoints import MANIFEST_PREFIX
from millstream.state.keys import encode_u64


def _start(tmp_path: Any, *extra: str) -> Any:
    opts = ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=3600", *extra]
    p = beam.Pipeline(options=PipelineOptions(opts))
    (
        p
        | ReadFromJson(str(tmp_path / "in" / "*.jsonl"), watch=True, poll_interval=0.02)
        | beam.Map(lambda e: [e["i"]])
        | WriteToJson(str(tmp_path / "out" / "rows"))
    )
    return p.start()


def _rows(tmp_path: Any) -> list[int]:
    return sorted(
        json.loads(line)[0] for f in glob.glob(str(tmp_path / "out" / "rows-c*")) for line in open(f)
    )


async def _run_and_stop(tmp_path: Any, until: Any, name: str, ids: range) -> None:
    (tmp_path / "in" / name).write_text("".join(json.dumps({"i": i}) + "\n" for i in ids))
    job = await _start(tmp_path)
    await until(lambda: len(_rows(tmp_path)) >= ids.stop or _read(job) >= len(ids), f"{name} read")
    assert await job.stop() == "STOPPED"


def _read(job: Any) -> int:
    return sum(n.elements_out for n in job.plan.nodes.values() if n.label.startswith("ReadFromJson"))


def _damage_newest(tmp_path: Any, how: str) -> int:
    """Scribble over the newest manifest, or lose it as a truncated log loses its last batch."""
    backend = RocksDBBackend(str(tmp_path / "state"))
    newest = CheckpointStore(backend).latest()
    assert newest is not None
    key = MANIFEST_PREFIX + encode_u64(newest.checkpoint_id)
    if how == "scribbled":
        backend.write_batch([(key, b"\x93garbage")], sync=True)
    else:
        backend.write_batch([], [key], sync=True)
    backend.close()
    return int(newest.checkpoint_id)


@pytest.mark.parametrize("how", ["scribbled", "lost"])
async def test_a_fallback_over_committed_output_is_refused_unless_accepted(
    tmp_path: Any, until: Any, caplog: Any, how: str
) -> None:
    (tmp_path / "in").mkdir()
    await _run_and_stop(tmp_path, until, "a.jsonl", range(0, 50))
    await _run_and_stop(tmp_path, until, "b.jsonl", range(50, 100))
    assert _rows(tmp_path) == list(range(100))
    damaged = _damage_newest(tmp_path, how)
    committed = sorted(glob.glob(str(tmp_path / "out" / f"rows-c{damaged:08d}*")))
    assert committed, "the damaged checkpoint had committed output"

    job = await _start(tmp_path)
    with pytest.raises(CheckpointFallbackError) as refused:
        await job.wait()
    message = str(refused.value)
    assert f"falling back to checkpoint {damaged - 1}" in message
    assert committed[0] in message and "--accept_checkpoint_fallback" in message
    assert sorted(glob.glob(str(tmp_path / "out" / "rows-c*"))) != [] and _rows(tmp_path) == list(range(100))

    with caplog.at_level("WARNING", logger="millstream.checkpoint"):
        job = await _start(tmp_path, "--accept_checkpoint_fallback")
        await until(lambda: job.plan.coordinator is not None and _read(job) >= 50, "file b read again")
    assert any(r.levelname == "WARNING" and "falling back" in r.getMessage() for r in caplog.records)
    fallback = job.status()["checkpoints"]["fallback"]
    assert fallback["restored"] == damaged - 1 and fallback["redone_outputs"] == committed
    metrics = {
        m.name: m.samples[0].value
        for m in JobCollector(job, Sampler(job), {}).collect()
        if m.name.startswith("millstream_checkpoint_fallback")
    }
    assert metrics == {
        "millstream_checkpoint_fallback": 1,
        "millstream_checkpoint_fallback_outputs_redone": 1,
    }
    assert await job.drain() == "DONE"
    assert _rows(tmp_path) == list(range(100))
