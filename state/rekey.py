"""Key rotation of a stopped job's state directory: a fresh data key wrapped by a new key, crash-safe.

`rotate_key` copies every record of the store, decrypted with the old key (or plaintext, to encrypt an
existing store), into a new store beside it (``<state_dir>.rekey-new``) under a fresh data key wrapped by
the new key; the header is written last, in a synced batch. Then two renames swap the stores
(``<state_dir>`` -> ``<state_dir>.rekey-old``, ``.rekey-new`` -> ``<state_dir>``), spilled sink epochs
re-sealed beside their originals (``*.rekey``) replace them, and the old store is deleted.

`rewrap_key` is the cheap rotation, for when the key that wraps the data key is retired but the data key
itself was not exposed: the same data key, wrapped by the new key, replaces the header in one synced write.
No record or spilled file changes, so it takes the same time for any size of state, and a kill at any
instant leaves the header either wrapped by the old key or by the new one (RocksDB writes a key atomically).

Whatever instant a kill -9 hits, `finish_interrupted_rotation` (run by the next rotation and by every job
start) leaves exactly one complete store: while ``.rekey-old`` does not exist the old store is the state
(a partial new store and ``*.rekey`` files are deleted); once it exists the new store is complete, so the
swap is finished. The old key opens the state before the first rename, the new key after it.

    >>> import tempfile, os
    >>> from millstream.state.encryption import LocalKeyProvider
    >>> d = os.path.join(tempfile.mkdtemp(), "job")
    >>> RocksDBBackend(d).close()
    >>> rotate_key(d, None, LocalKeyProvider({"v1": bytes(32)}))["kek"]
    'v1'
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from typing import Any

from .backend import StateBackend
from .encryption import (
    ENCRYPTION_KEY,
    EncryptedBackend,
    KeyProvider,
    StateKeyError,
    StoreCipher,
    encryption_header,
    new_cipher,
    require_plain,
    rewrapped_header,
    unwrap_cipher,
)
from .format import FORMAT_KEY
from .rocks import RocksDBBackend

__all__ = ["rotate_key", "rewrap_key", "finish_interrupted_rotation"]

_CHUNK = 10_000
_SEALED_SUFFIX = ".msgpack"


def _crash_point(n: list[int]) -> None:
    """Test hook: MILLSTREAM_REKEY_CRASH_AT=k kills the process (SIGKILL) at the k-th crash point."""
    at = os.environ.get("MILLSTREAM_REKEY_CRASH_AT")
    n[0] += 1
    if at and int(at) == n[0]:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sealed_files(state_dir: str) -> Iterator[str]:
    """Spilled sink epochs beside the state directory (``<state_dir>.pubsub/<sink>/*.msgpack``)."""
    root = os.path.abspath(state_dir).rstrip(os.sep) + ".pubsub"
    if not os.path.isdir(root):
        return
    for sink in sorted(os.listdir(root)):
        folder = os.path.join(root, sink)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                yield os.path.join(folder, name)


def finish_interrupted_rotation(state_dir: str) -> None:
    """Complete or undo a rotation a kill interrupted (a no-op when there was none)."""
    base = os.path.abspath(state_dir).rstrip(os.sep)
    new, old = base + ".rekey-new", base + ".rekey-old"
    if os.path.isdir(old):
        if not os.path.isdir(base):
            os.rename(new, base)
            _fsync_dir(os.path.dirname(base))
        for path in _sealed_files(base):
            if path.endswith(".rekey"):
                os.replace(path, path[: -len(".rekey")])
        shutil.rmtree(old)
        return
    if os.path.isdir(new):
        shutil.rmtree(new)
    for path in _sealed_files(base):
        if path.endswith(".rekey"):
            os.remove(path)


def _reseal(state_dir: str, old: StoreCipher | None, new: StoreCipher, crash: list[int]) -> int:
    count = 0
    for path in list(_sealed_files(state_dir)):
        if not path.endswith(_SEALED_SUFFIX):
            continue
        label = os.path.basename(path).encode()
        with open(path, "rb") as f:
            data = f.read()
        if old is not None:
            data = old.open(label, data, path)
        with open(path + ".rekey", "wb") as f:
            f.write(new.seal(label, data))
            f.flush()
            os.fsync(f.fileno())
        count += 1
        _crash_point(crash)
    return count


def rotate_key(state_dir: str, old_key: KeyProvider | None, new_key: KeyProvider) -> dict[str, Any]:
    """Re-encrypt a stopped job's state under a fresh data key wrapped by `new_key`'s primary key.

    `old_key` None encrypts a plaintext store. Returns ``{"kek": new key id, "records": n, "files": n}``.
    A wrong or revoked `old_key` raises `StateKeyError` before anything is written.
    """
    crash = [0]
    finish_interrupted_rotation(state_dir)
    base = os.path.abspath(state_dir).rstrip(os.sep)
    new_dir, old_dir = base + ".rekey-new", base + ".rekey-old"
    source_inner = RocksDBBackend(base, create=False)
    try:
        header = encryption_header(source_inner)
        old_cipher: StoreCipher | None = None
        source: StateBackend = source_inner
        if old_key is None:
            require_plain(source_inner)
        else:
            if header is None:
                old_key = None  # a plaintext store: nothing to decrypt
            else:
                old_cipher = unwrap_cipher(base, header, old_key)
                source = EncryptedBackend(source_inner, old_cipher)
        cipher, record = new_cipher(new_key)
        records = 0
        target_inner = RocksDBBackend(new_dir)
        try:
            target = EncryptedBackend(target_inner, cipher)
            chunk: list[tuple[bytes, bytes]] = []
            for key, value in source.scan_range(b"", None):
                if key in (FORMAT_KEY, ENCRYPTION_KEY):
                    continue
                chunk.append((key, bytes(value)))
                if len(chunk) >= _CHUNK:
                    target.write_batch(chunk)
                    records += len(chunk)
                    chunk = []
                    _crash_point(crash)
            records += len(chunk)
            # the header last, with the rest, synced: a store with a header is a complete copy
            target.write_batch(chunk)
            target_inner.write_batch([(ENCRYPTION_KEY, record)], sync=True)
            _crash_point(crash)
        finally:
            target_inner.close()
        files = _reseal(base, old_cipher, cipher, crash)
    finally:
        source_inner.close()
    os.rename(base, old_dir)
    _fsync_dir(os.path.dirname(base))
    _crash_point(crash)
    os.rename(new_dir, base)
    _fsync_dir(os.path.dirname(base))
    _crash_point(crash)
    finish_interrupted_rotation(base)
    return {"kek": cipher.kek_id, "records": records, "files": files}


def rewrap_key(state_dir: str, old_key: KeyProvider, new_key: KeyProvider) -> dict[str, Any]:
    """Wrap a stopped job's data key by `new_key`'s primary key; records and spilled epochs stay as they are.

    Returns ``{"kek": new key id, "previous": old key id}``. A plaintext store, or an `old_key` that cannot
    unwrap the data key, raises `StateKeyError` before anything is written.

        >>> import tempfile, os
        >>> from millstream.state.encryption import LocalKeyProvider
        >>> d = os.path.join(tempfile.mkdtemp(), "job")
        >>> RocksDBBackend(d).close()
        >>> _ = rotate_key(d, None, LocalKeyProvider({"v1": bytes(32)}))
        >>> rewrap_key(d, LocalKeyProvider({"v1": bytes(32)}), LocalKeyProvider({"v2": b"2" * 32}))
        {'kek': 'v2', 'previous': 'v1'}
    """
    crash = [0]
    finish_interrupted_rotation(state_dir)  # a rotation a kill interrupted decides which store is the state
    base = os.path.abspath(state_dir).rstrip(os.sep)
    inner = RocksDBBackend(base, create=False)
    try:
        header = encryption_header(inner)
        if header is None:
            raise StateKeyError(
                base,
                "the state is not encrypted: there is no data key to re-wrap; encrypt it "
                "with: millstream state rotate-key (without --rewrap-only)",
            )
        kek_id, record = rewrapped_header(base, header, old_key, new_key)
        _crash_point(crash)
        inner.write_batch([(ENCRYPTION_KEY, record)], sync=True)
        _crash_point(crash)
    finally:
        inner.close()
    return {"kek": kek_id, "previous": str(header["kek"])}
