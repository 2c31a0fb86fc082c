"""A job with --state_encryption_key: no marker of its records is anywhere under its state directory (or the
spill area beside it), it restores with the key, refuses a wrong key or none naming the key id, `state
inspect` says "encrypted" without the key, and `state rotate-key` survives kill -9 at random crash points.
Real jobs, real RocksDB, real subprocesses."""

from __future__ import annotations

import json
import random
import secrets
from pathlib import Path
from typing import Any

import msgpack
import pytest

import millstream as beam
from millstream.connectors.pubsub.sink import PubSubSinkWriter
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.state import CheckpointStore, RocksDBBackend
from millstream.state.encryption import StateKeyError, key_source, open_encrypted
from millstream.state.keys import state_key
from millstream.state.rekey import finish_interrupted_rotation

from support.jobs import cli

MARK_K = "KEYMARKERzq"
MARK_V = "VALUEMARKERzq"


def _key_file(path: Path) -> str:
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    return f"file:{path}"


def _start(tmp_path: Path, *extra: str) -> Any:
    opts = [
        "--streaming",
        f"--state_dir={tmp_path / 'state'}",
        "--checkpoint_interval=3600",
        "--state_cache_entries=16",
        *extra,
    ]
    p = beam.Pipeline(options=PipelineOptions(opts))
    (
        p
        | ReadFromJson(str(tmp_path / "in" / "*.jsonl"), watch=True, poll_interval=0.02)
        | beam.Map(lambda e: beam.window.TimestampedValue((e["k"], e["v"]), e["t"]))
        | beam.WindowInto(beam.window.FixedWindows(3600))
        | beam.GroupByKey()
        | beam.MapTuple(lambda k, vs: [k, sorted(vs)])
        | WriteToJson(str(tmp_path / "out" / "rows"))
    )
    return p.start()


def _bytes_under(*roots: Path) -> bytes:
    return b"".join(p.read_bytes() for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def _read(job: Any) -> int:
    return sum(n.elements_out for n in job.plan.nodes.values() if n.label.startswith("ReadFromJson"))


def _write_input(tmp_path: Path, n: int = 300) -> None:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.jsonl").write_text(
        "".join(json.dumps({"k": f"{MARK_K}{i}", "v": f"{MARK_V}{i}", "t": 100 + i}) + "\n" for i in range(n))
    )


async def _stopped_job(tmp_path: Path, until: Any, *extra: str) -> None:
    _write_input(tmp_path)
    job = await _start(tmp_path, *extra)
    await until(lambda: _read(job) >= 300, "input read")
    assert await job.stop() == "STOPPED"


@pytest.mark.parametrize("encrypted", [False, True])
async def test_marker_scan_of_everything_under_the_state_dir(
    tmp_path: Path, until: Any, encrypted: bool
) -> None:
    extra = [f"--state_encryption_key={_key_file(tmp_path / 'key')}"] if encrypted else []
    await _stopped_job(tmp_path, until, *extra)
    state = tmp_path / "state"
    on_disk = _bytes_under(state, Path(str(state) + ".spill"), Path(str(state) + ".pubsub"))
    assert len(on_disk) > 10_000
    found = MARK_K.encode() in on_disk or MARK_V.encode() in on_disk
    # without encryption the markers are there (so the scan can fail); with it, nowhere
    assert found is not encrypted
    if encrypted:
        job = await _start(tmp_path, *extra)  # restores with the key; the drain fires every window
        assert await job.drain() == "DONE"
        rows = [json.loads(line) for f in (tmp_path / "out").glob("rows-c*") for line in f.open()]
        assert sorted(rows) == sorted([f"{MARK_K}{i}", [f"{MARK_V}{i}"]] for i in range(300))


async def test_wrong_key_or_no_key_fails_before_reading_naming_the_key_id(tmp_path: Path, until: Any) -> None:
    source = _key_file(tmp_path / "key")
    await _stopped_job(tmp_path, until, f"--state_encryption_key={source}")
    key_id = key_source(source).primary_key_id()
    for extra in ([f"--state_encryption_key={_key_file(tmp_path / 'other')}"], []):
        job = await _start(tmp_path, *extra)
        with pytest.raises(StateKeyError, match=key_id) as err:
            await job.wait()
        assert str(tmp_path / "state") in str(err.value)
        assert _read(job) == 0


async def test_state_inspect_says_encrypted_without_the_key(tmp_path: Path, until: Any) -> None:
    source = _key_file(tmp_path / "key")
    await _stopped_job(tmp_path, until, f"--state_encryption_key={source}")
    inspect = ["state", "inspect", "--state_dir", str(tmp_path / "state")]
    without = cli(*inspect)
    assert without.returncode == 0 and "encrypted with key" in without.stdout
    assert key_source(source).primary_key_id() in without.stdout
    withkey = cli(*inspect, "--state_encryption_key", source)
    assert withkey.returncode == 0, withkey.stderr
    assert "GroupByKey" in withkey.stdout and "checkpoint" in withkey.stdout


def _records(state_dir: str, source: str | None) -> dict[bytes, bytes]:
    inner = RocksDBBackend(state_dir)
    store: Any = open_encrypted(inner, key_source(source)) if source else inner
    try:
        return {k: v for k, v in store.scan_range(b"\x01", None)}
    finally:
        store.close()


def test_rotate_key_survives_kill_9_at_random_points(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "state")
    old, new = _key_file(tmp_path / "old"), _key_file(tmp_path / "new")
    store = open_encrypted(RocksDBBackend(state_dir), key_source(old))
    CheckpointStore(store).commit(
        1,
        [(state_key("s", b"k%05d" % i, b"", ""), b"v%d" % i) for i in range(25_000)],
        fingerprint="fp",
        wall_time_micros=1,
    )
    # a Pub/Sub sink's spilled epoch, sealed as the sink does (re-sealed by the rotation)
    sealed = tmp_path / "state.pubsub" / "sink"
    sealed.mkdir(parents=True)
    PubSubSinkWriter._spill(str(sealed), "00000001-run.msgpack", [MARK_V], store.cipher)
    epoch = sealed / "00000001-run.msgpack"
    assert MARK_V.encode() not in epoch.read_bytes()
    store.close()
    expected = _records(state_dir, old)
    rotate = [
        "state",
        "rotate-key",
        "--state_dir",
        state_dir,
        "--state_encryption_key",
        old,
        "--new_key",
        new,
    ]
    rng = random.Random(16)
    points = list(range(1, 7))  # 2 chunk writes + header, 2 renames, + the end
    killed = 0
    for at in rng.sample(points, 4):
        run = cli(*rotate, env_extra={"MILLSTREAM_REKEY_CRASH_AT": str(at)}, timeout=120)
        if run.returncode == 0:
            # it finished before that point: the state is under the new key; rotate back for the next round
            assert _records(state_dir, new) == expected
            back = cli(*rotate[:-4], "--state_encryption_key", new, "--new_key", old, timeout=120)
            assert back.returncode == 0, back.stderr
            continue
        assert run.returncode == -9, run.stderr
        killed += 1
        finish_interrupted_rotation(state_dir)  # what the next job start or rotation does first
        opened = []
        for source in (old, new):
            try:
                opened.append(_records(state_dir, source))
            except StateKeyError:
                continue
        assert opened == [expected], f"crash point {at}: exactly one key opens the complete state"
        if _records_opens(state_dir, new):
            back = cli(*rotate[:-4], "--state_encryption_key", new, "--new_key", old, timeout=120)
            assert back.returncode == 0, back.stderr
    assert killed >= 3
    done = cli(*rotate, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _records(state_dir, new) == expected
    with pytest.raises(StateKeyError, match=key_source(new).primary_key_id()):
        _records(state_dir, old)
    assert not list(tmp_path.glob("state.rekey-*"))
    store = open_encrypted(RocksDBBackend(state_dir), key_source(new))
    opened = store.cipher.open(epoch.name.encode(), epoch.read_bytes(), str(epoch))
    store.close()
    assert msgpack.unpackb(opened) == [MARK_V] and list(sealed.iterdir()) == [epoch]


def _records_opens(state_dir: str, source: str) -> bool:
    try:
        _records(state_dir, source)
        return True
    except StateKeyError:
        return False
