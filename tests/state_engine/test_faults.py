"""Faults in the state store, on real RocksDB files: a corrupted latest checkpoint, a deleted store file and a
full disk (an injected ENOSPC). Each gives a clear typed error naming the path and the cause, nothing is
committed after the fault, and the output is exactly once after recovery."""

from __future__ import annotations

import errno
import glob
import json
import os

import pytest

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore, RocksDBBackend, StateError, StateIOError

N = 3000


def build(p, src, out):
    p | ReadFromJson(src) | beam.Map(lambda e: [e["i"]]) | WriteToJson(out)


def flags(tmp_path):
    return [
        "--streaming",
        f"--state_dir={tmp_path / 'state'}",
        "--batch_size=10",
        "--checkpoint_interval=3600",
    ]


def rows(out):
    return sorted(json.loads(line)[0] for f in glob.glob(out + "*") for line in open(f))


def files(out):
    return sorted(glob.glob(out + "*"))


@pytest.fixture
def data(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(N)))
    return str(src), str(tmp_path / "out" / "rows")


async def stop_after_some(tmp_path, src, out):
    """Run until a few batches were read, then stop (a checkpoint, then exit)."""
    p = beam.Pipeline(options=PipelineOptions(flags(tmp_path)))
    build(p, src, out)
    job = await p.start()
    assert await job.stop() == "STOPPED"


async def finish(tmp_path, src, out, extra=()):
    p = beam.Pipeline(options=PipelineOptions([*flags(tmp_path), *extra]))
    build(p, src, out)
    job = await p.start()
    return await job.wait()


async def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, data, caplog):
    src, out = data
    await stop_after_some(tmp_path, src, out)
    await stop_after_some(tmp_path, src, out)
    backend = RocksDBBackend(str(tmp_path / "state"))
    store = CheckpointStore(backend)
    newest = store.latest()
    assert newest is not None and len(store.list()) >= 2
    from millstream.state.checkpoints import MANIFEST_PREFIX
    from millstream.state.keys import encode_u64

    backend.write_batch([(MANIFEST_PREFIX + encode_u64(newest.checkpoint_id), b"\x93garbage")], sync=True)
    backend.close()
    with caplog.at_level("WARNING"):
        assert await finish(tmp_path, src, out, ["--accept_checkpoint_fallback"]) == "DONE"
    assert f"checkpoint(s) [{newest.checkpoint_id}]" in caplog.text and "falling back" in caplog.text
    assert rows(out) == list(range(N))  # output of the unreadable checkpoint was replaced, not duplicated


async def test_deleted_store_file_refuses_to_start_naming_the_path(tmp_path, data):
    src, out = data
    await stop_after_some(tmp_path, src, out)
    state = tmp_path / "state"
    victims = [f for f in os.listdir(state) if f.endswith(".sst") or f.startswith("MANIFEST")]
    assert victims
    for name in victims:
        os.remove(state / name)
    committed = files(out)
    with pytest.raises(StateError) as info:
        await finish(tmp_path, src, out)
    assert str(state) in str(info.value)
    assert files(out) == committed  # nothing was committed after the fault


async def test_full_disk_fails_the_checkpoint_and_commits_nothing(tmp_path, data, monkeypatch):
    src, out = data
    await stop_after_some(tmp_path, src, out)
    committed = files(out)
    before = rows(out)

    def full(self, puts, deletes=(), sync=False):
        raise StateIOError(self.path, "No space left on device", errno=errno.ENOSPC)

    with monkeypatch.context() as m:
        m.setattr(RocksDBBackend, "write_batch", full)
        p = beam.Pipeline(options=PipelineOptions(flags(tmp_path)))
        build(p, src, out)
        job = await p.start()
        with pytest.raises(Exception) as info:
            await job.wait()
    text = str(info.value)
    assert "No space left on device" in text and str(tmp_path / "state") in text
    assert files(out) == committed and rows(out) == before  # the failed checkpoint committed no output
    assert await finish(tmp_path, src, out) == "DONE"
    assert rows(out) == list(range(N))
