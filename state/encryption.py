"""Encryption at rest: a `StateBackend` decorator that encrypts keys and values with a key the customer controls.

Envelope encryption, as Cloud KMS customer-managed keys work: each store has a random 256-bit *data key*
(DEK), kept in the store only *wrapped* (encrypted) by the customer's key (the KEK) through a `KeyProvider`
(a key file, an environment variable, a key ring file with several versions, or Cloud KMS). From the DEK,
HKDF derives two keys:

* **record keys** are encrypted segment by segment with AES-256-SIV (deterministic: equal keys give equal
  ciphertexts, so point reads and prefix scans at segment boundaries of `millstream.state.keys` keep
  working). Only complete segments of the STATE and AUX key spaces are encrypted; what follows the last
  segment of a state key (the 8-byte checkpoint version of `versioned_store`) stays plain, so the versions
  of one logical key stay adjacent and ordered. META keys (format, manifest ids, markers) hold no user
  data and stay plain. Keys under one prefix come back in ciphertext order, not plaintext order.
* **values** are encrypted with AES-256-GCM under a random 96-bit nonce, with the stored (encrypted) key as
  associated data, so a value moved to another key fails its authentication too.

Every value is authenticated on read: a modified record raises `StateCorruptedError` naming the store
and the record (never silent garbage). Manifests that fail are returned as `UnreadableValue` so the
checkpoint store can report them as damaged and fall back to an older checkpoint.

The header record ``META + b"encryption"`` holds the KEK's id and the wrapped DEK; `open_encrypted` reads
it before anything else, so a wrong or revoked key fails before any data is read, naming the key id::

    >>> from millstream.state import MemoryBackend
    >>> provider = LocalKeyProvider({"v1": bytes(32)})
    >>> store = open_encrypted(MemoryBackend(), provider)
    >>> store.put(b"\\x02secret\\x00\\x01", b"value")
    >>> store.get(b"\\x02secret\\x00\\x01")
    b'value'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .backend import ReadView, StateBackend
from .errors import StateCorruptedError, StateError
from .format import FORMAT_KEY
from .keys import AUX, META, STATE, prefix_end

__all__ = [
    "ENCRYPTION_KEY",
    "CloudKmsKeyProvider",
    "EncryptedBackend",
    "KeyProvider",
    "KeySourceError",
    "LocalKeyProvider",
    "StateKeyError",
    "StoreCipher",
    "UnreadableValue",
    "encryption_header",
    "key_source",
    "open_encrypted",
]

ENCRYPTION_KEY = META + b"encryption"
"""The header record: KEK id and wrapped data key (msgpack)."""
_DEK_AAD = b"millstream-state-dek-v1"
_VALUE_V1 = b"\x01"
_NUL = b"\x00"
_ESC = b"\x00\xff"
_END = b"\x00\x01"
_SEGMENTS = {STATE[0]: 4, AUX[0]: 64}


class StateKeyError(StateError):
    """The store cannot be opened with the key given (wrong, revoked, missing, or not encrypted)."""


class KeySourceError(ValueError):
    """A ``--state_encryption_key`` source is malformed or unsafe (names the source and the problem)."""


class UnreadableValue(bytes):
    """A META value that failed authentication: not valid msgpack (0xc1), carrying the reason."""

    reason: str

    def __new__(cls, reason: str) -> UnreadableValue:
        obj = super().__new__(cls, b"\xc1")
        obj.reason = reason
        return obj


# -- key providers -------------------------------------------------------------------------------------------
@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys with the customer's key (a key file, a ring, Cloud KMS)."""

    def primary_key_id(self) -> str:
        """The id of the key that wraps new data keys."""
        ...

    def key_ids(self) -> list[str]:
        """Ids of every key this provider can unwrap with (for error messages)."""
        ...

    def wrap(self, dek: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt `dek` with the primary key; return (key id, wrapped bytes)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a data key wrapped by key `key_id`; `StateKeyError`-worthy failures raise KeyError/ValueError."""
        ...


def key_fingerprint(key: bytes) -> str:
    """A stable, non-secret id of a raw key (HMAC of a constant under the key)."""
    return "k-" + hmac.new(key, b"millstream key id", hashlib.sha256).hexdigest()[:16]


class LocalKeyProvider:
    """Raw 256-bit keys held locally, by id; the last one (or `primary`) wraps, all unwrap (AES-GCM)."""

    def __init__(self, keys: dict[str, bytes], primary: str | None = None) -> None:
        if not keys:
            raise KeySourceError("a key provider needs at least one key")
        for kid, key in keys.items():
            if len(key) != 32:
                raise KeySourceError(f"key {kid!r} has {len(key)} bytes; a key has 32 (256 bits)")
        self.keys = dict(keys)
        self.primary = primary if primary is not None else list(keys)[-1]

    def primary_key_id(self) -> str:
        """The wrapping key's id."""
        return self.primary

    def key_ids(self) -> list[str]:
        """Every key id held."""
        return list(self.keys)

    def wrap(self, dek: bytes, aad: bytes) -> tuple[str, bytes]:
        """AES-GCM under the primary key, nonce first."""
        nonce = secrets.token_bytes(12)
        return self.primary, nonce + AESGCM(self.keys[self.primary]).encrypt(nonce, dek, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """Unwrap with key `key_id` (KeyError if not held, ValueError if it does not authenticate)."""
        key = self.keys[key_id]
        try:
            return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag as exc:
            raise ValueError(f"the wrapped data key does not authenticate under key {key_id!r}") from exc


class KmsClient(Protocol):
    """The two calls of ``google.cloud.kms.KeyManagementServiceClient`` envelope encryption uses."""

    def encrypt(self, request: dict[str, Any]) -> Any:
        """Returns an object with ``.ciphertext``."""
        ...

    def decrypt(self, request: dict[str, Any]) -> Any:
        """Returns an object with ``.plaintext``."""
        ...


class CloudKmsKeyProvider:
    """Cloud KMS wraps the data key (envelope encryption); the key id is the CryptoKey's resource name.

    KMS keeps the key versions: the primary version wraps, any enabled version unwraps, and disabling or
    destroying a version revokes every store wrapped by it. ``client`` defaults to
    ``google.cloud.kms.KeyManagementServiceClient()`` (``pip install google-cloud-kms``).
    """

    def __init__(self, key_name: str, client: KmsClient | None = None) -> None:
        if not key_name.startswith("projects/") or "/cryptoKeys/" not in key_name:
            raise KeySourceError(f"kms:{key_name}: expected projects/P/locations/L/keyRings/R/cryptoKeys/K")
        self.key_name = key_name
        if client is None:
            try:
                from google.cloud import kms  # type: ignore[attr-defined]
            except ImportError as exc:
                raise KeySourceError(
                    "kms: key sources need google-cloud-kms (pip install google-cloud-kms)"
                ) from exc
            client = kms.KeyManagementServiceClient()
        self.client = client

    def primary_key_id(self) -> str:
        """The CryptoKey's resource name."""
        return self.key_name

    def key_ids(self) -> list[str]:
        """The one CryptoKey (its versions live in KMS)."""
        return [self.key_name]

    def wrap(self, dek: bytes, aad: bytes) -> tuple[str, bytes]:
        """KMS Encrypt with the key's primary version."""
        response = self.client.encrypt(
            request={"name": self.key_name, "plaintext": dek, "additional_authenticated_data": aad}
        )
        return self.key_name, bytes(response.ciphertext)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """KMS Decrypt (the ciphertext names its key version)."""
        if key_id != self.key_name:
            raise KeyError(key_id)
        try:
            response = self.client.decrypt(
                request={"name": key_id, "ciphertext": wrapped, "additional_authenticated_data": aad}
            )
        except Exception as exc:  # KMS reports revoked/disabled versions as API errors
            raise ValueError(f"Cloud KMS refused to unwrap with {key_id}: {exc}") from exc
        return bytes(response.plaintext)


def _check_private(path: str, what: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise KeySourceError(f"{what} {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeySourceError(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeySourceError(
            f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    with open(path, "rb") as f:
        return f.read()


def _parse_key(text: bytes, where: str) -> bytes:
    """32 raw bytes, or 64 hex digits, or base64 of 32 bytes."""
    if len(text) == 32:
        return text
    s = text.strip()
    try:
        if len(s) == 64:
            return bytes.fromhex(s.decode())
        raw = base64.b64decode(s, validate=True)
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    raise KeySourceError(
        f"{where}: a key is 32 bytes, 64 hex digits or base64 of 32 bytes "
        "(make one with: millstream state new-key --out FILE)"
    )


def key_source(spec: str) -> KeyProvider:
    """The `KeyProvider` a ``--state_encryption_key`` value names.

    ``file:PATH`` (or a bare path; mode 0600), ``env:NAME``, ``keyring:PATH`` (JSON
    ``{"keys": [{"id": ..., "key": hex}, ...]}``, newest last; mode 0600), ``kms:projects/...``.

    >>> import os; os.environ["DOC_KEY"] = "00" * 32
    >>> key_source("env:DOC_KEY").primary_key_id()
    'k-1687d7f94124a5d5'
    """
    kind, _, rest = spec.partition(":")
    if kind == "env":
        value = os.environ.get(rest)
        if not value:
            raise KeySourceError(f"--state_encryption_key env:{rest}: the environment variable is not set")
        key = _parse_key(value.encode(), f"environment variable {rest}")
        return LocalKeyProvider({key_fingerprint(key): key})
    if kind == "keyring":
        data = _check_private(rest, "key ring file")
        try:
            ring = json.loads(data)
            entries = [
                (str(e["id"]), _parse_key(str(e["key"]).encode(), f"key ring {rest} key {e['id']!r}"))
                for e in ring["keys"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, KeySourceError):
                raise
            raise KeySourceError(
                f'key ring file {rest}: expected {{"keys": [{{"id": ..., "key": ...}}]}} ({exc})'
            ) from exc
        return LocalKeyProvider(dict(entries))
    if kind == "kms":
        return CloudKmsKeyProvider(rest)
    path = rest if kind == "file" else spec
    key = _parse_key(_check_private(path, "key file"), f"key file {path}")
    return LocalKeyProvider({key_fingerprint(key): key})


# -- the cipher ----------------------------------------------------------------------------------------------
def _hkdf(dek: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(dek)


class StoreCipher:
    """Encrypts record keys (AES-SIV per segment) and values (AES-GCM) with keys derived from one data key."""

    def __init__(self, dek: bytes, kek_id: str) -> None:
        self.kek_id = kek_id
        self._siv = AESSIV(_hkdf(dek, b"millstream keys", 64))
        self._gcm = AESGCM(_hkdf(dek, b"millstream values", 32))
        self._enc_cache: dict[tuple[int, bytes], bytes] = {}
        self._dec_cache: dict[tuple[int, bytes], bytes] = {}

    # keys ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _segments(key: bytes, limit: int) -> tuple[list[bytes], int]:
        """Complete escaped segments after the key-space byte (at most `limit`), and where the rest starts."""
        out: list[bytes] = []
        i = 1
        n = len(key)
        while len(out) < limit:
            j = key.find(_NUL, i)
            while j != -1 and j + 1 < n and key[j + 1] == 0xFF:
                j = key.find(_NUL, j + 2)
            if j == -1 or j + 1 >= n or key[j + 1] != 1:
                break
            out.append(key[i:j])
            i = j + 2
        return out, i

    def encrypt_key(self, key: bytes) -> bytes:
        """The stored form of a record key (META keys unchanged)."""
        limit = _SEGMENTS.get(key[0]) if key else None
        if limit is None:
            return key
        segs, rest = self._segments(key, limit)
        parts = [key[:1]]
        space = key[0]
        for index, seg in enumerate(segs):
            cache_key = (space << 8 | index, seg)
            ct = self._enc_cache.get(cache_key) if index in (0, 3) else None
            if ct is None:
                ct = self._siv.encrypt(seg, [bytes((space, index))]).replace(_NUL, _ESC) + _END
                if index in (0, 3) and len(self._enc_cache) < 4096:
                    self._enc_cache[cache_key] = ct
            parts.append(ct)
        parts.append(key[rest:])
        return b"".join(parts)

    def decrypt_key(self, stored: bytes, path: str) -> bytes:
        """Inverse of `encrypt_key`."""
        limit = _SEGMENTS.get(stored[0]) if stored else None
        if limit is None:
            return stored
        segs, rest = self._segments(stored, limit)
        parts = [stored[:1]]
        space = stored[0]
        for index, seg in enumerate(segs):
            cache_key = (space << 8 | index, seg)
            plain = self._dec_cache.get(cache_key) if index in (0, 3) else None
            if plain is None:
                try:
                    plain = self._siv.decrypt(seg.replace(_ESC, _NUL), [bytes((space, index))]) + _END
                except InvalidTag as exc:
                    raise StateCorruptedError(
                        path,
                        "a record key failed authentication (the store's files were modified or "
                        "damaged, or it holds keys of another data key)",
                    ) from exc
                if index in (0, 3) and len(self._dec_cache) < 4096:
                    self._dec_cache[cache_key] = plain
            parts.append(plain)
        parts.append(stored[rest:])
        return b"".join(parts)

    def encrypt_bound(self, bound: bytes | None) -> bytes | None:
        """The stored form of a scan's upper bound (``prefix_end`` of a segment prefix, or key + suffix)."""
        if bound is None:
            return None
        if bound.endswith(b"\x00\x02"):  # prefix_end(P) of a prefix ending with a terminator
            return prefix_end(self.encrypt_key(bound[:-1] + b"\x01"))
        return self.encrypt_key(bound)

    # values -------------------------------------------------------------------------------------------------
    def encrypt_value(self, stored_key: bytes, value: bytes) -> bytes:
        """Version byte, 12-byte nonce, AES-GCM ciphertext bound to the stored key."""
        nonce = secrets.token_bytes(12)
        return _VALUE_V1 + nonce + self._gcm.encrypt(nonce, bytes(value), stored_key)

    def decrypt_value(self, stored_key: bytes, data: bytes, path: str) -> bytes:
        """Authenticate and decrypt a stored value; a META record that fails comes back as `UnreadableValue`."""
        try:
            if data[:1] != _VALUE_V1:
                raise InvalidTag()
            return self._gcm.decrypt(data[1:13], data[13:], stored_key)
        except InvalidTag:
            where = f"record {stored_key[:24]!r}" if stored_key[:1] == META else "a state record"
            reason = (
                f"{where} failed authentication (the store's files were modified or damaged; "
                f"encrypted with key {self.kek_id!r})"
            )
            if stored_key[:1] == META:
                return UnreadableValue(reason)
            raise StateCorruptedError(path, reason) from None

    # files --------------------------------------------------------------------------------------------------
    def seal(self, label: bytes, data: bytes) -> bytes:
        """Encrypt a whole file's contents (e.g. a sink's spilled epoch), bound to `label`."""
        return self.encrypt_value(b"\x03file:" + label, data)

    def open(self, label: bytes, data: bytes, path: str) -> bytes:
        """Inverse of `seal`; raises `StateCorruptedError` naming `path` when the file fails authentication."""
        out = self.decrypt_value(b"\x03file:" + label, data, path)
        return out


# -- the backend decorator -----------------------------------------------------------------------------------
_PLAIN_META = (FORMAT_KEY, ENCRYPTION_KEY)


class _EncryptedView:
    """A snapshot of an `EncryptedBackend`."""

    def __init__(self, owner: EncryptedBackend, view: ReadView) -> None:
        self._owner = owner
        self._view = view

    def get(self, key: bytes) -> bytes | None:
        """The decrypted value of `key` in the view, or None."""
        stored = self._owner.cipher.encrypt_key(key)
        raw = self._view.get(stored)
        return None if raw is None else self._owner._value(stored, raw)

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Decrypted entries under `prefix`."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Decrypted entries in the stored range of [start, end)."""
        c = self._owner.cipher
        return self._owner._rows(self._view.scan_range(c.encrypt_key(start), c.encrypt_bound(end)))

    def close(self) -> None:
        """Release the view."""
        self._view.close()


class EncryptedBackend:
    """A `StateBackend` that stores every key and value of `inner` encrypted by `cipher` (see the module doc)."""

    def __init__(self, inner: StateBackend, cipher: StoreCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    @property
    def path(self) -> str:
        """The inner store's path."""
        return self.inner.path

    def _value(self, stored_key: bytes, raw: bytes) -> bytes:
        if stored_key in _PLAIN_META:
            return raw
        return self.cipher.decrypt_value(stored_key, raw, self.inner.path)

    def _rows(self, rows: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        c = self.cipher
        path = self.inner.path
        for stored, raw in rows:
            if stored in _PLAIN_META:
                yield stored, raw
            else:
                yield c.decrypt_key(stored, path), c.decrypt_value(stored, raw, path)

    def get(self, key: bytes) -> bytes | None:
        """The decrypted value of `key`, or None."""
        stored = self.cipher.encrypt_key(key)
        raw = self.inner.get(stored)
        return None if raw is None else self._value(stored, raw)

    def put(self, key: bytes, value: bytes) -> None:
        """Store one encrypted record."""
        stored = self.cipher.encrypt_key(key)
        self.inner.put(stored, self.cipher.encrypt_value(stored, value))

    def delete(self, key: bytes) -> None:
        """Remove one record."""
        self.inner.delete(self.cipher.encrypt_key(key))

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Decrypted entries under `prefix` (segment-aligned prefixes; in ciphertext order)."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Decrypted entries between the stored forms of `start` and `end`."""
        c = self.cipher
        return self._rows(self.inner.scan_range(c.encrypt_key(start), c.encrypt_bound(end)))

    def delete_prefix(self, prefix: bytes) -> None:
        """Remove every record under a segment-aligned `prefix`."""
        stored = self.cipher.encrypt_key(prefix)
        if stored == prefix and prefix[:1] in (STATE, AUX) and len(prefix) > 1:
            raise ValueError(
                f"delete_prefix of an encrypted store needs a segment-aligned prefix: {prefix!r}"
            )
        self.inner.delete_prefix(stored)

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), sync: bool = False
    ) -> None:
        """Encrypt and apply one atomic batch (encryption runs as the inner backend consumes the iterables)."""
        c = self.cipher
        ek = c.encrypt_key
        ev = c.encrypt_value

        def enc_puts() -> Iterator[tuple[bytes, bytes]]:
            for key, value in puts:
                stored = ek(key)
                yield stored, ev(stored, value)

        self.inner.write_batch(enc_puts(), (ek(k) for k in deletes), sync=sync)

    def snapshot(self) -> _EncryptedView:
        """A decrypting view of a snapshot of the inner store."""
        return _EncryptedView(self, self.inner.snapshot())

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()

    def __enter__(self) -> EncryptedBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- opening -------------------------------------------------------------------------------------------------
def encryption_header(inner: StateBackend) -> dict[str, Any] | None:
    """The store's encryption header (``{"kek": key id, "alg": ...}``), or None for a plaintext store."""
    raw = inner.get(ENCRYPTION_KEY)
    if raw is None:
        return None
    try:
        header = msgpack.unpackb(raw, raw=False)
        if not isinstance(header, dict) or header.get("v") != 1:
            raise ValueError(f"unknown header {header!r}")
        return header
    except Exception as exc:
        raise StateCorruptedError(inner.path, f"unreadable encryption header ({exc})") from exc


def _has_data(inner: StateBackend) -> bool:
    for key, _ in inner.scan_range(b"", None):
        if key not in _PLAIN_META:
            return True
    return False


def new_cipher(provider: KeyProvider) -> tuple[StoreCipher, bytes]:
    """A fresh data key wrapped by `provider`'s primary key: (cipher, header record)."""
    dek = secrets.token_bytes(32)
    kek_id, wrapped = provider.wrap(dek, _DEK_AAD)
    header = msgpack.packb(
        {"v": 1, "kek": kek_id, "wrapped": wrapped, "alg": "AES-256-SIV keys, AES-256-GCM values"},
        use_bin_type=True,
    )
    return StoreCipher(dek, kek_id), header


def unwrap_cipher(path: str, header: dict[str, Any], provider: KeyProvider) -> StoreCipher:
    """The store's cipher from its header; `StateKeyError` naming the key id when the key cannot unwrap it."""
    kek_id = str(header["kek"])
    try:
        dek = provider.unwrap(kek_id, bytes(header["wrapped"]), _DEK_AAD)
    except KeyError:
        raise StateKeyError(
            path,
            f"the state is encrypted with key {kek_id!r}, which the key given does not provide "
            f"(it has {', '.join(map(repr, provider.key_ids()))}): a wrong or revoked key",
        ) from None
    except ValueError as exc:
        raise StateKeyError(path, f"key {kek_id!r} cannot unwrap the state's data key: {exc}") from None
    return StoreCipher(dek, kek_id)


def rewrapped_header(
    path: str, header: dict[str, Any], old: KeyProvider, new: KeyProvider
) -> tuple[str, bytes]:
    """The header record with the same data key wrapped by `new`'s primary key: (new key id, record).

    `StateKeyError` (naming the key id) when `old` cannot unwrap the data key.
    """
    kek_id = str(header["kek"])
    try:
        dek = old.unwrap(kek_id, bytes(header["wrapped"]), _DEK_AAD)
    except KeyError:
        raise StateKeyError(
            path,
            f"the state is encrypted with key {kek_id!r}, which the key given does not provide "
            f"(it has {', '.join(map(repr, old.key_ids()))}): a wrong or revoked key",
        ) from None
    except ValueError as exc:
        raise StateKeyError(path, f"key {kek_id!r} cannot unwrap the state's data key: {exc}") from None
    new_id, wrapped = new.wrap(dek, _DEK_AAD)
    record = msgpack.packb({**header, "kek": new_id, "wrapped": wrapped}, use_bin_type=True)
    return new_id, record


def open_encrypted(inner: StateBackend, provider: KeyProvider) -> EncryptedBackend:
    """Wrap an open store: read (or, for an empty store, create) its encryption header, before any data.

    A plaintext store with data in it is refused (`StateKeyError`): encrypt it with
    ``millstream state rotate-key``.
    """
    header = encryption_header(inner)
    if header is None:
        if _has_data(inner):
            raise StateKeyError(
                inner.path,
                "the state is not encrypted; encrypt it first with: millstream state rotate-key "
                f"--state_dir {inner.path} --new_key SOURCE (or start with --from_scratch)",
            )
        cipher, record = new_cipher(provider)
        inner.write_batch([(ENCRYPTION_KEY, record)], sync=True)
        return EncryptedBackend(inner, cipher)
    return EncryptedBackend(inner, unwrap_cipher(inner.path, header, provider))


def require_plain(inner: StateBackend) -> None:
    """Refuse to open an encrypted store without a key (names the key id the store needs)."""
    header = encryption_header(inner)
    if header is not None:
        raise StateKeyError(
            inner.path, f"the state is encrypted with key {header['kek']!r}; pass --state_encryption_key"
        )
