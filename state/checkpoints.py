"""Checkpoint manifests, atomic checkpoint commits and manifest retention.

A checkpoint is ONE atomic ``write_batch`` (synced by default) holding

* the state changes of every operator (``puts``/``deletes``), and
* a manifest record at ``META + b"ckpt/" + u64(checkpoint_id)``: the id (strictly increasing), the
  pipeline fingerprint, a per-step state layout dict, the caller's wall time (micros; nothing here
  reads a clock), free metadata (source positions, sinks' pending-commit records, ...), and the
  batch's counts (puts, deletes, bytes).

**Every retained checkpoint is restorable**: the caller keeps the state each retained manifest needs
(operator snapshots under their checkpoint id, incremental records as versions; docs/state.md).
``keep`` (default 3) bounds how many manifest records are retained (older ones are deleted in the same
batch, and the caller deletes the state only they needed).

Corruption, and what is detected where:

* RocksDB batches are atomic (WAL records are CRC-checked; a torn tail is dropped on recovery), so a
  partial checkpoint cannot exist inside the store.
* Damaged files (SST blocks, MANIFEST, CURRENT) are detected by RocksDB's own checksums, on open or
  on the read that touches them, and surface as :class:`StateCorruptedError` naming the path.
* Each manifest record carries a CRC-32 of its body, and its id must match its key. A record that
  fails this (a software bug, or a store edited by hand) is reported as :class:`StateCorruptedError`.
  ``latest()`` raises it; ``latest(allow_fallback=True)`` returns the newest readable manifest and lists
  the skipped ids in ``Manifest.skipped`` (the checkpointer restores it when no committed output would be
  redone, or with ``--accept_checkpoint_fallback``; docs/state.md).
* No digest over the batch's state entries is kept: RocksDB already checksums them, and such a
  digest could be verified only until a later checkpoint overwrites one of the keys.

A manifest with an unknown record version raises :class:`StateFormatError`.
"""

from __future__ import annotations

import builtins
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from .backend import StateBackend
from .codecs import MsgpackCodec
from .encryption import UnreadableValue
from .errors import StateCorruptedError, StateFormatError
from .keys import META, decode_u64, encode_u64

__all__ = ["Manifest", "CheckpointStore", "MANIFEST_PREFIX"]

MANIFEST_PREFIX = META + b"ckpt/"
"""Key prefix of manifest records (followed by the 8-byte big-endian checkpoint id)."""
COMMITTED_PREFIX = META + b"committed/"
"""Key prefix of the records saying a checkpoint's sink output was committed (then the u64 id)."""
MANIFEST_VERSION = 1
_MAX_ID = (1 << 63) - 1
_CODEC = MsgpackCodec(allow_pickle=False)


@dataclass(frozen=True)
class Manifest:
    """One committed checkpoint, as recorded in the store."""

    checkpoint_id: int
    fingerprint: str
    wall_time_micros: int
    layout: dict[str, Any]
    metadata: dict[str, Any]
    puts: int
    deletes: int
    bytes_written: int
    skipped: tuple[int, ...] = field(default=())
    """Newer checkpoint ids whose manifests were unreadable and skipped (``allow_fallback``)."""


def _manifest_key(checkpoint_id: int) -> bytes:
    return MANIFEST_PREFIX + encode_u64(checkpoint_id)


def _encode_manifest(m: Manifest, layout: bytes, metadata: bytes) -> bytes:
    body = msgpack.packb(
        {
            "v": MANIFEST_VERSION,
            "id": m.checkpoint_id,
            "fp": m.fingerprint,
            "wall": m.wall_time_micros,
            "layout": layout,
            "meta": metadata,
            "puts": m.puts,
            "dels": m.deletes,
            "bytes": m.bytes_written,
        },
        use_bin_type=True,
    )
    return msgpack.packb([zlib.crc32(body), body], use_bin_type=True)


class CheckpointStore:
    """Commits checkpoints atomically into ``backend`` and reads their manifests back.

    The backend must be written only through :meth:`commit` (that is what makes it hold complete
    checkpoints only); reading it directly is fine.
    """

    def __init__(self, backend: StateBackend, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self._backend = backend
        self._keep = keep

    @property
    def path(self) -> str:
        """The backend's path."""
        return self._backend.path

    def _ids(self) -> builtins.list[int]:
        cut = len(MANIFEST_PREFIX)
        ids = []
        for key, _ in self._backend.scan_prefix(MANIFEST_PREFIX):
            if len(key) != cut + 8:
                raise StateCorruptedError(self.path, f"malformed manifest key {key!r}")
            ids.append(decode_u64(key[cut:]))
        return ids

    def commit(
        self,
        checkpoint_id: int,
        puts: Iterable[tuple[bytes, bytes]] = (),
        deletes: Iterable[bytes] = (),
        *,
        fingerprint: str,
        wall_time_micros: int,
        layout: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        sync: bool = True,
    ) -> Manifest:
        """Write the state changes and the manifest in one atomic batch; return the manifest.

        ``checkpoint_id`` must exceed every id committed before. ``layout`` and ``metadata`` must
        be encodable by msgpack (plus tuples, sets and big ints; no pickle). Keys in the reserved
        META space are rejected. Nothing is written if any input fails.
        """
        if not isinstance(checkpoint_id, int) or not 0 <= checkpoint_id <= _MAX_ID:
            raise ValueError(f"checkpoint id must be an int in [0, 2**63): {checkpoint_id!r}")
        ids = self._ids()
        if ids and checkpoint_id <= ids[-1]:
            raise ValueError(f"checkpoint ids must increase: {checkpoint_id} after {ids[-1]}")
        layout_dict = dict(layout or {})
        metadata_dict = dict(metadata or {})
        layout_bytes = _CODEC.encode(layout_dict)
        metadata_bytes = _CODEC.encode(metadata_dict)
        dels = list(deletes)
        for key in dels:
            if key[:1] == META:
                raise ValueError(f"key {key!r} is in the reserved META key space")
        retired = ids[: max(0, len(ids) + 1 - self._keep)]
        result: builtins.list[Manifest] = []

        def stream() -> Iterator[tuple[bytes, bytes]]:
            count = 0
            size = 0
            for key, value in puts:
                if key[:1] == META:
                    raise ValueError(f"key {key!r} is in the reserved META key space")
                count += 1
                size += len(key) + len(value)
                yield key, value
            manifest = Manifest(
                checkpoint_id=checkpoint_id,
                fingerprint=fingerprint,
                wall_time_micros=wall_time_micros,
                layout=layout_dict,
                metadata=metadata_dict,
                puts=count,
                deletes=len(dels),
                bytes_written=size + sum(map(len, dels)),
            )
            result.append(manifest)
            yield _manifest_key(checkpoint_id), _encode_manifest(manifest, layout_bytes, metadata_bytes)

        self._backend.write_batch(stream(), dels + [_manifest_key(i) for i in retired], sync=sync)
        return result[0]

    def _decode(self, key_id: int, raw: bytes) -> Manifest:
        def bad(why: str) -> StateCorruptedError:
            return StateCorruptedError(self.path, f"checkpoint {key_id} manifest {why}")

        if isinstance(raw, UnreadableValue):
            raise bad(raw.reason)
        try:
            outer = msgpack.unpackb(raw, raw=False)
        except Exception as exc:
            raise bad(f"is not decodable ({exc})") from exc
        if not (isinstance(outer, list) and len(outer) == 2 and isinstance(outer[1], bytes)):
            raise bad("has an unexpected shape")
        crc, body = outer
        if zlib.crc32(body) != crc:
            raise bad("fails its checksum")
        try:
            fields = msgpack.unpackb(body, raw=False)
            version = fields["v"]
        except Exception as exc:
            raise bad(f"body is not decodable ({exc})") from exc
        if version != MANIFEST_VERSION:
            raise StateFormatError(
                self.path,
                f"checkpoint {key_id} manifest has version {version!r}; this millstream reads "
                f"version {MANIFEST_VERSION}",
                found=version if isinstance(version, int) else None,
                supported=(MANIFEST_VERSION,),
            )
        try:
            manifest = Manifest(
                checkpoint_id=fields["id"],
                fingerprint=fields["fp"],
                wall_time_micros=fields["wall"],
                layout=_CODEC.decode(fields["layout"]),
                metadata=_CODEC.decode(fields["meta"]),
                puts=fields["puts"],
                deletes=fields["dels"],
                bytes_written=fields["bytes"],
            )
        except Exception as exc:
            raise bad(f"body is incomplete ({exc})") from exc
        if manifest.checkpoint_id != key_id:
            raise bad(f"records id {manifest.checkpoint_id}")
        return manifest

    def get(self, checkpoint_id: int) -> Manifest:
        """The manifest of ``checkpoint_id``; KeyError if not retained, StateCorruptedError if bad."""
        raw = self._backend.get(_manifest_key(checkpoint_id))
        if raw is None:
            raise KeyError(checkpoint_id)
        return self._decode(checkpoint_id, raw)

    def _records(self) -> builtins.list[tuple[int, bytes]]:
        cut = len(MANIFEST_PREFIX)
        out = []
        for key, raw in self._backend.scan_prefix(MANIFEST_PREFIX):
            if len(key) != cut + 8:
                raise StateCorruptedError(self.path, f"malformed manifest key {key!r}")
            out.append((decode_u64(key[cut:]), raw))
        return out

    def latest(self, *, allow_fallback: bool = False) -> Manifest | None:
        """The newest manifest (the restorable checkpoint), or None if none was committed.

        If the newest record is unreadable this raises :class:`StateCorruptedError`, unless
        ``allow_fallback``: then the newest readable one is returned with ``skipped`` set.
        """
        skipped: builtins.list[int] = []
        first_error: StateCorruptedError | None = None
        for checkpoint_id, raw in reversed(self._records()):
            try:
                manifest = self._decode(checkpoint_id, raw)
            except StateCorruptedError as exc:
                if not allow_fallback:
                    raise StateCorruptedError(
                        self.path,
                        f"{exc.cause}; the stored state belongs to checkpoint {checkpoint_id}, so an "
                        "older manifest cannot be restored safely (output could be duplicated or "
                        "lost). Pass allow_fallback=True to restore the newest readable manifest "
                        "anyway, or remove the store to start over",
                    ) from exc
                first_error = first_error or exc
                skipped.append(checkpoint_id)
                continue
            return replace(manifest, skipped=tuple(skipped)) if skipped else manifest
        if first_error is not None:
            raise StateCorruptedError(
                self.path,
                f"no readable checkpoint manifest (unreadable: {skipped}; first: {first_error.cause})",
            )
        return None

    def list(self) -> builtins.list[Manifest]:
        """The retained, readable manifests, oldest first (see :meth:`verify` for bad ones)."""
        out = []
        for checkpoint_id, raw in self._records():
            try:
                out.append(self._decode(checkpoint_id, raw))
            except StateCorruptedError:
                continue
        return out

    def verify(self) -> builtins.list[tuple[int, str]]:
        """``(checkpoint id, problem)`` for every retained manifest that fails validation."""
        problems = []
        for checkpoint_id, raw in self._records():
            try:
                self._decode(checkpoint_id, raw)
            except (StateCorruptedError, StateFormatError) as exc:
                problems.append((checkpoint_id, exc.cause))
        return problems

    def mark_committed(self, checkpoint_id: int) -> None:
        """Record that every sink committed the output of ``checkpoint_id``, so recovery need not commit it
        again (its files may since have been moved or deleted by their users). Markers of checkpoints no
        longer retained are deleted. Not synced: the next checkpoint's synced batch persists it, and a lost
        marker only means committing again, which is idempotent while the output is in place."""
        retained = set(self._ids())
        stale = [
            k
            for k, _ in self._backend.scan_prefix(COMMITTED_PREFIX)
            if decode_u64(k[len(COMMITTED_PREFIX) :]) not in retained
        ]
        self._backend.write_batch([(COMMITTED_PREFIX + encode_u64(checkpoint_id), b"")], stale, sync=False)

    def is_committed(self, checkpoint_id: int) -> bool:
        """True when `mark_committed(checkpoint_id)` was recorded."""
        return self._backend.get(COMMITTED_PREFIX + encode_u64(checkpoint_id)) is not None

    def next_id(self) -> int:
        """One more than the newest retained checkpoint id (1 for an empty store)."""
        ids = self._ids()
        return ids[-1] + 1 if ids else 1
