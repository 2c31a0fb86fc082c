"""Encryption at rest in the state layer: real RocksDB stores, real key files, keys generated in the test."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from millstream.state import CheckpointStore, RocksDBBackend, StateCorruptedError
from millstream.state.checkpoints import MANIFEST_PREFIX
from millstream.state.encryption import (
    ENCRYPTION_KEY,
    CloudKmsKeyProvider,
    EncryptedBackend,
    KeySourceError,
    LocalKeyProvider,
    StateKeyError,
    key_source,
    open_encrypted,
)
from millstream.state.keys import encode_u64, key_prefix, operator_prefix, state_key

MARK_K = b"PLAINKEYMARKER"
MARK_V = b"PLAINVALUEMARKER"


def _bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def _fill(store: Any, n: int = 200) -> dict[bytes, bytes]:
    puts = {
        state_key("Count", MARK_K + b"%d" % i, b"ns", "") + encode_u64(7): MARK_V + b"%d" % i
        for i in range(n)
    }
    CheckpointStore(store).commit(
        1,
        puts.items(),
        fingerprint="fp",
        wall_time_micros=1,
        metadata={"sink": (MARK_V + b"-in-manifest").decode()},
    )
    return puts


def test_no_plaintext_on_disk_and_everything_reads_back(tmp_path: Path) -> None:
    provider = LocalKeyProvider({"v1": secrets.token_bytes(32)})
    plain_dir, enc_dir = tmp_path / "plain", tmp_path / "enc"
    with RocksDBBackend(str(plain_dir)) as plain:
        _fill(plain)
    store = open_encrypted(RocksDBBackend(str(enc_dir)), provider)
    puts = _fill(store)
    store.close()
    # the same writes unencrypted leave the markers on disk: the scan below can fail
    assert MARK_K in _bytes_under(plain_dir) and MARK_V in _bytes_under(plain_dir)
    on_disk = _bytes_under(enc_dir)
    assert MARK_K not in on_disk and MARK_V not in on_disk
    store = open_encrypted(RocksDBBackend(str(enc_dir)), provider)
    try:
        assert dict(store.scan_prefix(operator_prefix("Count"))) == puts
        one = state_key("Count", MARK_K + b"5", b"ns", "")
        assert list(store.scan_prefix(key_prefix("Count", MARK_K + b"5"))) == [
            (one + encode_u64(7), MARK_V + b"5")
        ]
        latest = CheckpointStore(store).latest()
        assert latest is not None and latest.metadata["sink"] == "PLAINVALUEMARKER-in-manifest"
    finally:
        store.close()


def test_a_modified_record_is_an_error_naming_the_store(tmp_path: Path) -> None:
    provider = LocalKeyProvider({"v1": secrets.token_bytes(32)})
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), provider)
    key = state_key("Count", b"k", b"", "")
    store.put(key, b"value")
    inner = store.inner
    stored_key, raw = next((k, v) for k, v in inner.scan_range(b"\x01", None))
    flipped = raw[:-1] + bytes((raw[-1] ^ 1,))
    inner.put(stored_key, flipped)
    with pytest.raises(StateCorruptedError) as err:
        store.get(key)
    assert str(tmp_path / "db") in str(err.value) and "failed authentication" in str(err.value)
    with pytest.raises(StateCorruptedError):
        list(store.scan_prefix(operator_prefix("Count")))
    store.close()


def test_a_modified_manifest_falls_back_to_the_previous_checkpoint(tmp_path: Path) -> None:
    provider = LocalKeyProvider({"v1": secrets.token_bytes(32)})
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), provider)
    ck = CheckpointStore(store)
    ck.commit(1, [(state_key("s", b"a", b"", ""), b"1")], fingerprint="fp", wall_time_micros=1)
    ck.commit(2, [(state_key("s", b"a", b"", ""), b"2")], fingerprint="fp", wall_time_micros=2)
    key = MANIFEST_PREFIX + encode_u64(2)
    raw = store.inner.get(key)
    assert raw is not None
    store.inner.put(key, raw[:20] + bytes((raw[20] ^ 0x40,)) + raw[21:])
    with pytest.raises(StateCorruptedError, match="checkpoint 2 manifest .*failed authentication"):
        ck.latest()
    fallback = ck.latest(allow_fallback=True)
    assert fallback is not None and fallback.checkpoint_id == 1 and fallback.skipped == (2,)
    assert [cid for cid, _ in ck.verify()] == [2]
    store.close()


def test_a_flipped_byte_in_a_table_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    provider = LocalKeyProvider({"v1": secrets.token_bytes(32)})
    path = tmp_path / "db"
    store = open_encrypted(RocksDBBackend(str(path)), provider)
    store.write_batch([(state_key("s", b"k%d" % i, b"", ""), b"v" * 100) for i in range(500)], sync=True)
    store.inner._live().flush()  # noqa: SLF001 - make RocksDB write a table file
    store.close()
    sst = sorted(path.glob("*.sst"))[0]
    data = bytearray(sst.read_bytes())
    data[len(data) // 3] ^= 0xFF
    sst.write_bytes(bytes(data))
    with pytest.raises(StateCorruptedError) as err:
        store = open_encrypted(RocksDBBackend(str(path)), provider)
        try:
            list(store.scan_prefix(operator_prefix("s")))
        finally:
            store.close()
    assert sst.name in str(err.value) or "failed authentication" in str(err.value)


def test_wrong_or_revoked_key_fails_before_reading_naming_the_key_id(tmp_path: Path) -> None:
    good = LocalKeyProvider({"v1": secrets.token_bytes(32)})
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), good)
    store.put(state_key("s", b"k", b"", ""), b"v")
    store.close()
    for provider in (
        LocalKeyProvider({"v2": secrets.token_bytes(32)}),
        LocalKeyProvider({"v1": secrets.token_bytes(32)}),
    ):
        inner = RocksDBBackend(str(tmp_path / "db"))
        with pytest.raises(StateKeyError, match="'v1'"):
            open_encrypted(inner, provider)
        inner.close()


def test_plaintext_store_with_data_is_refused(tmp_path: Path) -> None:
    with RocksDBBackend(str(tmp_path / "db")) as plain:
        plain.put(state_key("s", b"k", b"", ""), b"v")
    inner = RocksDBBackend(str(tmp_path / "db"))
    with pytest.raises(StateKeyError, match="not encrypted.*rotate-key"):
        open_encrypted(inner, LocalKeyProvider({"v1": bytes(32)}))
    inner.close()


def test_key_ring_newest_wraps_all_unwrap(tmp_path: Path) -> None:
    ring = tmp_path / "ring.json"
    k1, k2 = secrets.token_hex(32), secrets.token_hex(32)
    ring.write_text(json.dumps({"keys": [{"id": "v1", "key": k1}]}))
    ring.chmod(0o600)
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), key_source(f"keyring:{ring}"))
    store.put(state_key("s", b"k", b"", ""), b"v")
    store.close()
    ring.write_text(json.dumps({"keys": [{"id": "v1", "key": k1}, {"id": "v2", "key": k2}]}))
    provider = key_source(f"keyring:{ring}")
    assert provider.primary_key_id() == "v2"
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), provider)
    assert store.get(state_key("s", b"k", b"", "")) == b"v"
    assert store.cipher.kek_id == "v1"
    store.close()


def test_key_sources_refuse_unsafe_or_malformed_keys(tmp_path: Path, monkeypatch: Any) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(secrets.token_hex(32))
    key_file.chmod(0o644)
    with pytest.raises(
        KeySourceError, match=f"key file {key_file} is accessible by group or others.*chmod 600"
    ):
        key_source(f"file:{key_file}")
    key_file.chmod(0o600)
    assert key_source(f"file:{key_file}").primary_key_id().startswith("k-")
    key_file.write_text("too short")
    with pytest.raises(KeySourceError, match="a key is 32 bytes"):
        key_source(str(key_file))
    monkeypatch.delenv("MS_TEST_KEY", raising=False)
    with pytest.raises(KeySourceError, match="MS_TEST_KEY: the environment variable is not set"):
        key_source("env:MS_TEST_KEY")
    with pytest.raises(KeySourceError, match="cryptoKeys"):
        key_source("kms:not-a-key-name")


class LocalKms:
    """A local stand-in for Cloud KMS (no emulator is reachable): AES-GCM under per-version keys; a disabled
    version refuses to decrypt, as KMS does."""

    def __init__(self) -> None:
        self.versions = {1: secrets.token_bytes(32)}
        self.primary = 1
        self.disabled: set[int] = set()

    def encrypt(self, request: dict[str, Any]) -> Any:
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self.versions[self.primary]).encrypt(
            nonce, request["plaintext"], request["additional_authenticated_data"]
        )
        return type("R", (), {"ciphertext": bytes((self.primary,)) + nonce + ct})()

    def decrypt(self, request: dict[str, Any]) -> Any:
        blob = request["ciphertext"]
        if blob[0] in self.disabled:
            raise PermissionError(f"FAILED_PRECONDITION: cryptoKeyVersions/{blob[0]} is not enabled")
        plain = AESGCM(self.versions[blob[0]]).decrypt(
            blob[1:13], blob[13:], request["additional_authenticated_data"]
        )
        return type("R", (), {"plaintext": plain})()


def test_cloud_kms_envelope_unwrap_and_revocation(tmp_path: Path) -> None:
    kms = LocalKms()
    name = "projects/p/locations/l/keyRings/r/cryptoKeys/state"
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), CloudKmsKeyProvider(name, kms))
    store.put(state_key("s", b"k", b"", ""), b"v")
    store.close()
    kms.versions[2] = secrets.token_bytes(32)
    kms.primary = 2  # a new primary version: stores wrapped by version 1 still open
    store = open_encrypted(RocksDBBackend(str(tmp_path / "db")), CloudKmsKeyProvider(name, kms))
    assert store.get(state_key("s", b"k", b"", "")) == b"v"
    store.close()
    kms.disabled.add(1)
    inner = RocksDBBackend(str(tmp_path / "db"))
    with pytest.raises(StateKeyError, match=f"key '{name}' cannot unwrap.*not enabled"):
        open_encrypted(inner, CloudKmsKeyProvider(name, kms))
    assert inner.get(ENCRYPTION_KEY) is not None
    inner.close()


def test_decorator_keeps_prefix_scans_deletes_and_snapshots(tmp_path: Path) -> None:
    store = EncryptedBackend(
        RocksDBBackend(str(tmp_path / "db")),
        open_encrypted(RocksDBBackend(str(tmp_path / "h")), LocalKeyProvider({"v": bytes(32)})).cipher,
    )
    for ns in (b"w1", b"w2"):
        for k in range(3):
            store.put(state_key("op", b"key%d" % k, ns, ""), ns)
    store.put(state_key("other", b"key0", b"w1", ""), b"x")
    snap = store.snapshot()
    store.delete_prefix(key_prefix("op", b"key1"))
    assert sorted(k for k, _ in store.scan_prefix(operator_prefix("op"))) == sorted(
        state_key("op", b"key%d" % k, ns, "") for ns in (b"w1", b"w2") for k in (0, 2)
    )
    assert len(list(snap.scan_prefix(operator_prefix("op")))) == 6
    assert snap.get(state_key("op", b"key1", b"w2", "")) == b"w2"
    snap.close()
    store.close()
