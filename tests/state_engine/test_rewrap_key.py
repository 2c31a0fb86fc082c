"""`millstream state rotate-key --rewrap-only`: the data key is wrapped by a new key in one atomic write.

Real RocksDB stores, real key files, the real command in subprocesses killed with SIGKILL at each crash point.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import msgpack
import pytest

from millstream.connectors.pubsub.sink import PubSubSinkWriter
from millstream.state import CheckpointStore, RocksDBBackend
from millstream.state.encryption import StateKeyError, key_source, open_encrypted
from millstream.state.keys import state_key
from millstream.state.rekey import rewrap_key

from support.jobs import cli

MARK = "SPILLEDMARKERzq"


def _key_file(path: Path) -> str:
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    return f"file:{path}"


def _records(state_dir: str, source: str) -> dict[bytes, bytes]:
    store = open_encrypted(RocksDBBackend(state_dir), key_source(source))
    try:
        return dict(store.scan_range(b"\x01", None))
    finally:
        store.close()


def _opens(state_dir: str, source: str) -> bool:
    try:
        _records(state_dir, source)
    except StateKeyError:
        return False
    return True


def _raw(state_dir: str) -> dict[bytes, bytes]:
    inner = RocksDBBackend(state_dir)
    try:
        return {k: bytes(v) for k, v in inner.scan_range(b"\x01", None)}
    finally:
        inner.close()


def _encrypted_state(tmp_path: Path, old: str) -> tuple[str, Path]:
    state_dir = str(tmp_path / "state")
    store = open_encrypted(RocksDBBackend(state_dir), key_source(old))
    CheckpointStore(store).commit(
        1,
        [(state_key("s", b"k%05d" % i, b"", ""), b"v%d" % i) for i in range(2_000)],
        fingerprint="fp",
        wall_time_micros=1,
    )
    sealed = tmp_path / "state.pubsub" / "sink"
    sealed.mkdir(parents=True)
    PubSubSinkWriter._spill(str(sealed), "00000001-run.msgpack", [MARK], store.cipher)
    store.close()
    return state_dir, sealed / "00000001-run.msgpack"


def test_rewrap_changes_only_the_header_and_survives_kill_9_at_each_point(tmp_path: Path) -> None:
    old, new = _key_file(tmp_path / "old"), _key_file(tmp_path / "new")
    state_dir, epoch = _encrypted_state(tmp_path, old)
    expected, raw_before, epoch_before = _records(state_dir, old), _raw(state_dir), epoch.read_bytes()
    cmd = [
        "state",
        "rotate-key",
        "--rewrap-only",
        "--state_dir",
        state_dir,
        "--state_encryption_key",
        old,
        "--new_key",
        new,
    ]
    for at, opened_by in ((1, old), (2, new)):  # before the header write, after it
        run = cli(*cmd, env_extra={"MILLSTREAM_REKEY_CRASH_AT": str(at)}, timeout=120)
        assert run.returncode == -9, run.stderr
        assert [_opens(state_dir, k) for k in (old, new)] == [opened_by == old, opened_by == new], (
            f"point {at}"
        )
        assert _records(state_dir, opened_by) == expected
        if opened_by == new:  # put it back for the uninterrupted run below
            rewrap_key(state_dir, key_source(new), key_source(old))
    run = cli(*cmd, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"to key {key_source(new).primary_key_id()!r}" in run.stdout
    assert _records(state_dir, new) == expected
    with pytest.raises(StateKeyError, match=key_source(new).primary_key_id()):
        _records(state_dir, old)
    # the cheap operation: not one record nor spilled file was rewritten, and the spill opens under the new key
    assert _raw(state_dir) == raw_before and epoch.read_bytes() == epoch_before
    store: Any = open_encrypted(RocksDBBackend(state_dir), key_source(new))
    try:
        assert msgpack.unpackb(store.cipher.open(epoch.name.encode(), epoch.read_bytes(), str(epoch))) == [
            MARK
        ]
    finally:
        store.close()


def test_rewrap_refuses_a_wrong_key_a_plaintext_store_and_a_missing_current_key(tmp_path: Path) -> None:
    old, new, other = (_key_file(tmp_path / n) for n in ("old", "new", "other"))
    state_dir, _ = _encrypted_state(tmp_path, old)
    with pytest.raises(StateKeyError, match=key_source(old).primary_key_id()):
        rewrap_key(state_dir, key_source(other), key_source(new))
    assert _opens(state_dir, old)
    plain = str(tmp_path / "plain")
    RocksDBBackend(plain).close()
    with pytest.raises(StateKeyError, match="not encrypted"):
        rewrap_key(plain, key_source(old), key_source(new))
    run = cli("state", "rotate-key", "--rewrap-only", "--state_dir", state_dir, "--new_key", new, timeout=120)
    assert run.returncode != 0 and "needs --state_encryption_key" in run.stderr
