"""Incremental operator state: versioned records in the checkpoint store, a spill area for evicted entries.

An *incremental* stateful node keeps its hot state in its own Python structures, bounded in size
(``--state_cache_entries``), and uses one `StateTier` for everything else: it hands cold entries to
`evict`, gets them back with `take` (one entry) or `scan` (a namespace), and at each checkpoint gives
the tier a small header plus the entries it changed since the previous checkpoint (`checkpoint.coordinator`). The
tier turns that into puts and deletes of the checkpointer's ONE atomic write batch.

Durable layout (all under the node's ``operator_prefix``; see `millstream.state.keys`):

* Logical keys are complete ``state_key``\\ s, so no logical key is a prefix of another: the node
  header ``state_key(op, b"", b"", "h")`` and entries ``state_key(op, ns, user key, "")`` where ``ns``
  names a structure of the node (a slot, a window, per-key state) and the user key is msgpack-encoded
  (type-exact, deterministic).
* Each checkpoint writes what it changes as a new *version*: physical key = logical key + the 8-byte
  big-endian checkpoint id, value = ``0x01`` + msgpack payload, or ``0x00`` for a deletion. The
  versions of one logical key are adjacent, oldest first. The entry of checkpoint R is the newest
  version <= R, so every retained checkpoint stays restorable (restore can fall back to an older one
  when the newest manifest is unreadable or a sink committed only an older one). The header is written
  at every checkpoint.
* Superseded versions are garbage once no retained manifest needs them (a version is needed while
  it is the newest one <= some retained checkpoint id). Each checkpoint sweeps a slice of the node's
  range (about twice what it writes) and deletes such versions in the same batch, so stored versions
  stay within about twice the live entries without the node having to remember old versions.
* A namespace that dies as a whole (a slot or window that fired and expired) is not deleted entry by
  entry: the node stops listing it in its header, the tier records it as dead since checkpoint C, and
  once every retained checkpoint is >= C one range delete removes it.
* After a fallback restore, versions written by the skipped (unreadable) checkpoints are purged, and so
  are the versions of a checkpoint that died while being written: a large checkpoint writes its records in
  chunks ahead of its atomic manifest batch (`checkpoint.incremental.IncrementalNodes.prewrite`), header first,
  so such versions are found by their header. The manifest's ``puts`` count only the final batch.

Writing ahead: between checkpoints, `write_ahead` moves spilled rows into the store in small slices as
versions of the *coming* checkpoint (header version first, like a checkpoint's chunks), so the checkpoint
itself only writes what is left. Those versions are invisible to restore until that checkpoint's manifest
commits, and a crash before that purges them (their header version is newer than the restored checkpoint);
reads take them as the stored value, which is what that checkpoint will hold (an entry changed again is
evicted or captured again and its version overwritten). `write_ahead_hot` does the same for changed entries
the node still holds in memory (the node marks them unchanged: evicting one then just drops it, and the
checkpoint writes it again only if it changes again); their sweep is left to later slices (`sweep_debt`).

Spill area: entries evicted while they differ from the last checkpoint are written, unsynced, to a
scratch store (`SpillArea`: ``RocksDBBackend.scratch`` next to the state directory, WAL off, deleted
on open and close) under their logical keys. The spill is never part of a checkpoint by itself: a
checkpoint copies the node's spilled entries into its batch (as new versions), and the spill is
cleared after the batch is durable. After kill -9 the spill is discarded, so exactly-once holds: the
store only holds complete checkpoints. An entry is in at most one of (the node's hot structures, the
spill): `take` removes what it returns from the spill, `evict` is called only with entries the node
drops; the one exception, a deletion spilled for a key that then gets state again, is written to the
batch before the node's entries so the newer entry wins. Reads look in the spill first, then at the
newest durable version.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import msgpack

from millstream.state import MemoryBackend, MsgpackCodec, RocksDBBackend
from millstream.state.encryption import EncryptedBackend, StoreCipher
from millstream.state.keys import key_prefix, operator_prefix, prefix_end, state_key

__all__ = [
    "ABSENT",
    "SpillArea",
    "StateTier",
    "TierCheckpoint",
    "live_entries",
    "oldest_retained",
    "spill_path",
]

_U64 = struct.Struct(">Q")
_I63 = 1 << 63
_TAIL = b"\x00\x01\x00\x01"  # end of the user-key segment, then the empty name segment


class _Packers(threading.local):
    """A msgpack packer per thread (a packer is not thread-safe; keys are encoded by the loop and the writer)."""

    def __init__(self) -> None:
        self.pack = msgpack.Packer(use_bin_type=True).pack


_PACKERS = _Packers()
#: Types msgpack writes natively exactly as the type-exact codec does (ints: within 64 bits).
_PLAIN = frozenset((str, int, float, bytes, bool, type(None)))
_VALUE = b"\x01"
_TOMB = b"\x00"

#: `take` of an entry that does not exist (or was deleted).
ABSENT: Any = object()


class SpillArea:
    """The job's scratch store for evicted, not yet checkpointed entries (opened at first use)."""

    def __init__(self, path: str | None, cipher: StoreCipher | None = None) -> None:
        #: Directory of the RocksDB scratch store; None keeps the spill in memory (memory backend jobs).
        self.path = path
        #: The job's store cipher when its state is encrypted: spilled entries are encrypted the same way.
        self.cipher = cipher
        self._backend: Any = None
        if path is not None and os.path.exists(os.path.join(path, "CURRENT")):
            shutil.rmtree(
                path, ignore_errors=True
            )  # left by a killed run: scratch, never part of a checkpoint

    @property
    def backend(self) -> Any:
        """The scratch backend (a fresh one on first use)."""
        if self._backend is None:
            # small RocksDB buffers: the spill holds recently evicted entries and is cleared every checkpoint
            self._backend = (
                MemoryBackend()
                if self.path is None
                else RocksDBBackend.scratch(self.path, block_cache_bytes=8 << 20, write_buffer_bytes=8 << 20)
            )
            if self.cipher is not None:
                self._backend = EncryptedBackend(self._backend, self.cipher)
        return self._backend

    @property
    def opened(self) -> bool:
        """True once something was spilled."""
        return self._backend is not None

    def close(self) -> None:
        """Close (and, for RocksDB, delete) the scratch store."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


def spill_path(state_dir: str) -> str:
    """Where the spill area of a job with this state directory lives (a sibling directory)."""
    return os.path.abspath(state_dir).rstrip(os.sep) + ".spill"


def _latest(rows: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """Group physical rows (key order) by logical key; yield (logical key, newest tagged value)."""
    last: bytes | None = None
    value = b""
    for pkey, raw in rows:
        lkey = pkey[:-8]
        if lkey != last:
            if last is not None:
                yield last, value
            last = lkey
        value = raw
    if last is not None:
        yield last, value


class TierCheckpoint:
    """What one node contributes to one checkpoint (see `StateTier.checkpoint`)."""

    def __init__(
        self,
        tier: StateTier,
        cid: int,
        oldest: int,
        header: Any,
        entries: list[Any],
        encoded: list[Any],
        deletes: list[bytes],
        dead: list[tuple[bytes, int]],
    ) -> None:
        self.tier = tier
        self.cid = cid
        self.oldest = oldest
        self.header = header
        self.entries = entries
        self.encoded = encoded
        self.entry_deletes = deletes
        self.dead = dead
        #: Records written (header, changed entries, spilled entries, deletions), counted while writing.
        self.written = 0
        #: Superseded versions deleted by this checkpoint's sweep.
        self.swept = 0
        # Sweep about twice what is written: garbage then stays within about the live size.
        #: Rows of this checkpoint the tier wrote ahead (`StateTier.write_ahead`, `write_ahead_hot`), counted
        #: in `written`.
        self.ahead = tier.ahead_rows + tier.ahead_hot if tier.ahead_cid == cid else 0
        moved = tier.ahead_rows if tier.ahead_cid == cid else 0
        # (the slices that wrote rows ahead swept for them already)
        self.sweep_budget = (
            2 * ((len(entries) + len(encoded)) // 3 + len(deletes) + max(0, tier.spill_rows - moved)) + 256
        )
        if self.ahead:
            # a tier that writes ahead sweeps in slices between checkpoints (`write_ahead`): the sweep leaves
            # the pause for them, and they run until it is paid, so garbage stays bounded
            tier.sweep_debt += self.sweep_budget
            self.sweep_budget = 0

    def puts(self) -> Iterator[tuple[bytes, bytes]]:
        """The physical puts (encoding happens here, so it can run in the writer thread)."""
        tier = self.tier
        suffix = _U64.pack(self.cid)
        encode = tier.encode_value
        n = 1 + self.ahead
        yield tier.header_key + suffix, _VALUE + encode({"node": self.header, "dead": self.dead})
        # Spilled entries first: a later put of the same key in a batch wins, and the node's own entries are
        # newer than a deletion it spilled before the key got state again.
        if tier.spilled:
            for lkey, raw in tier.spill.backend.scan_prefix(tier.prefix):
                n += 1
                yield lkey + suffix, raw
        yield from tier.entry_puts(self.entries, self.encoded, suffix)
        n += (len(self.entries) + len(self.encoded)) // 3
        for lkey in self.entry_deletes:
            n += 1
            yield lkey + suffix, _TOMB
        self.written = n

    def deletes(self) -> Iterator[bytes]:
        """Physical deletes: header versions and entry versions no retained checkpoint needs any more."""
        tier = self.tier
        oldest = self.oldest
        versions = sorted(tier.header_versions)
        keep = max((v for v in versions if v <= oldest), default=None)
        for v in versions:
            if keep is not None and v < keep:
                yield tier.header_key + _U64.pack(v)
        yield from tier._sweep(oldest, self.sweep_budget, self)


class _Swept:
    """Counts what a write-ahead slice swept (`StateTier._sweep` reports to a `TierCheckpoint` otherwise)."""

    swept = 0


class StateTier:
    """The durable and spilled part of one incremental node's state (see the module docstring)."""

    def __init__(self, label: str, backend: Any, spill: SpillArea, cache_entries: int) -> None:
        self.label = label
        self.backend = backend
        self.spill = spill
        #: The node's bound on hot entries (0: unbounded).
        self.cache_entries = cache_entries
        self.codec = MsgpackCodec(allow_pickle=True)
        self.prefix = operator_prefix(label)
        self._ns_prefixes: dict[bytes, bytes] = {}
        self.header_key = state_key(label, b"", b"", "h")
        #: True while the spill may hold entries of this node.
        self.spilled = False
        #: Checkpoint ids of the stored header versions.
        self.header_versions: list[int] = []
        #: Dead namespaces awaiting their range delete: (logical prefix, dead since checkpoint id).
        self.dead: list[tuple[bytes, int]] = []
        self._dying: list[bytes] = []
        self._sweep_from = self.prefix
        self.last_written = 0
        #: Rows written to the spill since the last checkpoint (an upper bound of what it holds).
        self.spill_rows = 0
        self.evicted = 0
        """Entries handed to `evict` (clean ones are not, the node just drops them)."""
        self.loaded = 0
        """Entries returned by `take` and `scan`."""
        #: The checkpoint the rows written ahead belong to (0: none), how many, and where the next slice starts.
        self.ahead_cid = 0
        self.ahead_rows = 0
        self._ahead_from = self.prefix
        #: Hot entries (and deletions) of checkpoint `ahead_cid` the node wrote ahead (`write_ahead_hot`).
        self.ahead_hot = 0
        #: Rows a checkpoint left for the write-ahead slices to sweep (see `TierCheckpoint`).
        self.sweep_debt = 0

    # -- keys -------------------------------------------------------------------------------------------
    def encode_key(self, key: Any) -> bytes:
        """The stored form of a user key (the codec's encoding; plain msgpack, faster, for plain scalars)."""
        t = type(key)
        if t in _PLAIN and (t is not int or -_I63 <= key < _I63):
            return _PACKERS.pack(key)  # type: ignore[no-any-return]
        return self.codec.encode(key)

    encode_value = encode_key

    def decode_key(self, data: bytes) -> Any:
        """A user key from its stored form."""
        return self.codec.decode(data)

    def entry_key(self, ns: bytes, ukey: bytes) -> bytes:
        """The logical key of an entry: namespace `ns`, encoded user key `ukey` (``state_key(op, ns, ukey, "")``)."""
        prefix = self._ns_prefixes.get(ns)
        if prefix is None:
            prefix = self._ns_prefixes[ns] = key_prefix(self.label, ns)
            if len(self._ns_prefixes) > 4096:
                self._ns_prefixes.clear()
        return prefix + ukey.replace(b"\x00", b"\x00\xff") + _TAIL

    def ns_prefix(self, ns: bytes) -> bytes:
        """The logical prefix of every entry of namespace `ns`."""
        return key_prefix(self.label, ns)

    def split_key(self, lkey: bytes, prefix_len: int) -> Any:
        """The user key of an entry, given the length of its namespace prefix (from `ns_prefix`)."""
        # the escaped user-key segment sits between the namespace prefix and the two terminators (_TAIL)
        return self.codec.decode(lkey[prefix_len:-4].replace(b"\x00\xff", b"\x00"))

    def entry_puts(
        self, entries: list[Any], encoded: list[Any], suffix: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """Physical puts of flat ``[namespace, user key, value, ...]`` entries (`encoded`: values already
        encoded by `encode_value`) as versions `suffix` (see `checkpoint`)."""
        prefixes: dict[bytes, bytes] = {}
        encode_key = self.encode_key
        encode = self.encode_value
        label = self.label
        for flat, raw in ((entries, False), (encoded, True)):
            it = iter(flat)
            for ns in it:
                key = next(it)
                value = next(it)
                prefix = prefixes.get(ns)
                if prefix is None:
                    prefix = prefixes[ns] = key_prefix(label, ns)
                yield (
                    prefix + encode_key(key).replace(b"\x00", b"\x00\xff") + _TAIL + suffix,
                    _VALUE + (value if raw else encode(value)),
                )

    # -- cold entries ------------------------------------------------------------------------------------
    def evict(self, puts: Iterable[tuple[bytes, Any]], deletes: Iterable[bytes] = ()) -> int:
        """Move changed entries (and deletions) the node drops from memory into the spill area."""
        encode = self.encode_value
        rows = [(lkey, _VALUE + encode(value)) for lkey, value in puts]
        rows.extend((lkey, _TOMB) for lkey in deletes)
        if rows:
            self.spill.backend.write_batch(rows, (), sync=False)
            self.spilled = True
            self.evicted += len(rows)
            self.spill_rows += len(rows)
        return len(rows)

    def _durable(self, lkey: bytes) -> bytes | None:
        """The newest stored version of `lkey` (tagged), or None."""
        newest = None
        for row in self.backend.scan_range(lkey, lkey + b"\xff" * 9):
            newest = row[1]
        return newest

    def take(self, lkey: bytes) -> tuple[Any, bool]:
        """An entry's value (or ABSENT) and whether it differs from the last checkpoint; the node owns it now."""
        if self.spilled:
            spill = self.spill.backend
            raw = spill.get(lkey)
            if raw is not None:
                spill.delete(lkey)
                self.loaded += 1
                return (ABSENT if raw[:1] == _TOMB else self.codec.decode(raw[1:])), True
        raw = self._durable(lkey)
        if raw is None or raw[:1] == _TOMB:
            return ABSENT, False
        self.loaded += 1
        return self.codec.decode(raw[1:]), False

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, Any, bool]]:
        """``(logical key, value, changed since the last checkpoint)`` of every stored entry under `prefix`.

        Reads only; the entries stay where they are (the node decides what to take over).
        """
        durable = _latest(self.backend.scan_prefix(prefix))
        decode = self.codec.decode
        if not self.spilled:
            for lkey, raw in durable:
                if raw[:1] != _TOMB:
                    self.loaded += 1
                    yield lkey, decode(raw[1:]), False
            return
        spill = self.spill.backend.scan_prefix(prefix)
        a = next(spill, None)
        b = next(durable, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a[0] <= b[0]):
                assert a is not None
                if b is not None and a[0] == b[0]:
                    b = next(durable, None)
                if a[1][:1] != _TOMB:
                    self.loaded += 1
                    yield a[0], decode(a[1][1:]), True
                a = next(spill, None)
            else:
                if b[1][:1] != _TOMB:
                    self.loaded += 1
                    yield b[0], decode(b[1][1:]), False
                b = next(durable, None)

    def kill(self, prefix: bytes) -> None:
        """Namespace `prefix` died: its spilled entries go now, its stored ones with a range delete later."""
        if self.spilled:
            self.spill.backend.delete_prefix(prefix)
        self._dying.append(prefix)

    # -- checkpoints -------------------------------------------------------------------------------------
    def write_ahead(self, cid: int, budget: int, retained: int, move: bool = True) -> int:
        """Move up to `budget` spilled rows (none without `move`) into the store as versions of the coming
        checkpoint `cid` (unsynced; see the module docstring), and sweep twice as many stored rows, plus up
        to ``2 * budget`` of the sweep a checkpoint left (`sweep_debt`), for versions that no checkpoint >=
        `retained` (the oldest retained now) needs; returns the rows moved plus the debt paid. Only between
        checkpoints, on the thread that evicts and takes (nothing else may touch the spill meanwhile)."""
        rows: list[tuple[bytes, bytes]] = []
        spill = self.spill.backend if self.spilled else None
        if move and spill is not None and budget > 0:
            # from where the last slice ended: rescanning the deleted rows from the start would cost more each time
            rows = list(itertools.islice(spill.scan_range(self._ahead_from, prefix_end(self.prefix)), budget))
            if len(rows) < budget and self._ahead_from != self.prefix:
                rows += itertools.islice(spill.scan_range(self.prefix, self._ahead_from), budget - len(rows))
        pay = min(self.sweep_debt, 2 * budget)
        self.sweep_debt -= pay
        if not rows and not pay:
            return 0
        suffix = _U64.pack(cid)
        puts = [(lkey + suffix, raw) for lkey, raw in rows]
        if rows:
            self._ahead_header(cid, puts)
        # the sweep a checkpoint does for what it writes, done here for these rows (retained: safe now)
        swept = list(self._sweep(retained, 2 * len(rows) + pay, _Swept()))
        self.backend.write_batch(puts, swept, sync=False)
        if rows:
            assert spill is not None
            spill.write_batch((), [lkey for lkey, _ in rows], sync=False)
            self.ahead_rows += len(rows)
            self._ahead_from = rows[-1][0] + b"\x00"
        return len(rows) + pay

    def _ahead_header(self, cid: int, puts: list[tuple[bytes, bytes]]) -> None:
        """Put the node's header version of `cid` first in `puts` if nothing of `cid` was written ahead yet:
        after a crash, restore finds this unfinished checkpoint by it and purges its versions."""
        if self.ahead_cid != cid:
            suffix = _U64.pack(cid)
            puts.insert(0, (self.header_key + suffix, _VALUE + self.encode_value({"node": None, "dead": []})))
            self.ahead_cid = cid
            self.ahead_rows = self.ahead_hot = 0

    def write_ahead_hot(
        self, cid: int, entries: list[Any], encoded: list[Any], deletes: list[bytes], retained: int
    ) -> int:
        """Write entries the node holds in memory (flat, as for `checkpoint`) and deletions ahead of the coming
        checkpoint `cid`, as its versions (unsynced, header version first, like `write_ahead`); returns the
        rows written. The sweep of twice as many stored rows that goes with them is added to `sweep_debt`:
        the slices pay it once the entries in memory are written (they are what the checkpoint waits for).

        The node has marked them unchanged: the checkpoint writes them again only if they change again (a
        later version of the same id then overwrites this one). Only between checkpoints, on the event loop."""
        suffix = _U64.pack(cid)
        puts = list(self.entry_puts(entries, encoded, suffix))
        puts.extend((lkey + suffix, _TOMB) for lkey in deletes)
        if not puts:
            return 0
        n = len(puts)
        self._ahead_header(cid, puts)
        self.backend.write_batch(puts, (), sync=False)
        self.ahead_hot += n
        self.sweep_debt += 2 * n
        return n

    def checkpoint(
        self,
        cid: int,
        oldest: int,
        header: Any,
        entries: list[Any],
        deletes: list[bytes],
        encoded: list[Any] | None = None,
    ) -> TierCheckpoint:
        """This node's part of checkpoint `cid`; `oldest` is the oldest checkpoint id retained after it.

        `entries` are the node's changed entries in memory, flat: ``[namespace, user key, value, ...]``
        (no tuple per entry: fewer objects for the garbage collector; keys and values are encoded while the
        batch is written); `encoded` likewise with values already encoded by `encode_value`; `deletes` the
        logical keys of deleted entries. The spilled entries are added by the tier. Call `committed` or
        `aborted` once the batch was written.
        """
        dead = self.dead + [(p, cid) for p in self._dying]
        self._dying = []
        return TierCheckpoint(self, cid, oldest, header, entries, encoded or [], deletes, dead)

    def committed(self, ck: TierCheckpoint) -> None:
        """The checkpoint is durable: clear the spill, forget old header versions, range-delete dead namespaces."""
        if self.spilled:
            self.spill.backend.delete_prefix(self.prefix)
            self.spilled = False
        self.spill_rows = 0
        self.ahead_cid = self.ahead_rows = self.ahead_hot = 0
        self._ahead_from = self.prefix
        keep = max((v for v in self.header_versions if v <= ck.oldest), default=None)
        self.header_versions = [v for v in self.header_versions if keep is None or v >= keep] + [ck.cid]
        self.last_written = ck.written
        remaining = []
        for prefix, since in ck.dead:
            if since <= ck.oldest:
                # no retained checkpoint lists the namespace any more; redone after a crash (idempotent)
                self.backend.delete_prefix(prefix)
            else:
                remaining.append((prefix, since))
        self.dead = remaining

    def aborted(self, ck: TierCheckpoint) -> None:
        """The checkpoint was not written: the spill and the dying namespaces stay for the next one."""
        self._dying = [p for p, since in ck.dead if since == ck.cid] + self._dying

    def _sweep(self, oldest: int, budget: int, ck: TierCheckpoint | _Swept) -> Iterator[bytes]:
        """Delete superseded versions in the next `budget` stored rows (continuing where the last sweep ended)."""
        end = prefix_end(self.prefix)
        start = self._sweep_from
        header = self.header_key
        group: list[tuple[int, bytes, bool]] = []
        last: bytes | None = None
        n = 0
        for pkey, raw in self.backend.scan_range(start, end):
            lkey = pkey[:-8]
            if lkey != last:
                if group:
                    for k in _obsolete(group, oldest):
                        ck.swept += 1
                        yield k
                    group = []
                if n >= budget:
                    self._sweep_from = pkey
                    return
                last = lkey
            n += 1
            if lkey != header:
                group.append((_U64.unpack(pkey[-8:])[0], pkey, raw[:1] == _TOMB))
        for k in _obsolete(group, oldest):
            ck.swept += 1
            yield k
        self._sweep_from = self.prefix

    # -- restore -----------------------------------------------------------------------------------------
    def restore(self, cid: int) -> Any:
        """The node header of checkpoint `cid` (None if the node has none there); purges newer versions.

        Versions newer than `cid` exist only when restore fell back past unreadable checkpoints; they
        are deleted now (one scan of the node's range), so reads can take the newest version.
        """
        versions = [
            (_U64.unpack(pkey[-8:])[0], raw) for pkey, raw in self.backend.scan_prefix(self.header_key)
        ]
        usable = [(v, raw) for v, raw in versions if v <= cid]
        if len(usable) < len(versions):
            stale = [
                pkey for pkey, _ in self.backend.scan_prefix(self.prefix) if _U64.unpack(pkey[-8:])[0] > cid
            ]
            self.backend.write_batch((), stale, sync=True)
        self.header_versions = [v for v, _ in usable]
        self._sweep_from = self.prefix
        self.spilled = False
        self.spill_rows = 0
        self.ahead_cid = self.ahead_rows = self.ahead_hot = 0
        self._ahead_from = self.prefix
        self._dying = []
        if not usable:
            self.dead = []
            return None
        stored = self.codec.decode(usable[-1][1][1:])
        self.dead = [(bytes(p), int(s)) for p, s in stored["dead"]]
        return stored["node"]

    def reset(self) -> None:
        """Delete all of the node's records (it starts empty, e.g. after a completed run)."""
        self.backend.delete_prefix(self.prefix)
        self.header_versions = []
        self.dead = []
        self._dying = []
        self._sweep_from = self.prefix

    def stats(self) -> dict[str, int]:
        """Counters for tests and metrics."""
        return {"evicted": self.evicted, "loaded": self.loaded, "last_written": self.last_written}


def live_entries(backend: Any, label: str, cid: int) -> tuple[Any, list[tuple[bytes, bytes, bytes]]]:
    """What checkpoint `cid` holds of the incremental node `label`, read-only (for inspection): its node
    header (None if it has none) and its live entries as ``(namespace, encoded user key, payload)``."""
    from millstream.state.keys import decode_state_key

    codec = MsgpackCodec(allow_pickle=True)
    header_key = state_key(label, b"", b"", "h")
    rows = (
        (pkey, raw)
        for pkey, raw in backend.scan_prefix(operator_prefix(label))
        if _U64.unpack(pkey[-8:])[0] <= cid
    )
    header = None
    entries = []
    for lkey, raw in _latest(rows):
        if raw[:1] == _TOMB:
            continue
        if lkey == header_key:
            header = codec.decode(raw[1:])
            continue
        entries.append((lkey, raw[1:]))
    if header is None:
        return None, []
    dead = [bytes(p) for p, since in header["dead"] if since <= cid]
    out = []
    for lkey, payload in entries:
        if not any(lkey.startswith(p) for p in dead):
            _, ns, ukey, _ = decode_state_key(lkey)
            out.append((ns, ukey, payload))
    return header["node"], out


def oldest_retained(store: Any, keep: int, cid: int) -> int:
    """The oldest checkpoint id the store retains once checkpoint `cid` is committed (readable manifests;
    an unreadable one cannot be restored, and counting only readable ones errs towards keeping more)."""
    ids = [m.checkpoint_id for m in store.list()]
    kept = (ids[-(keep - 1) :] if keep > 1 else []) + [cid]
    return min(kept)


def _obsolete(group: list[tuple[int, bytes, bool]], oldest: int) -> list[bytes]:
    """Versions of one logical key that no checkpoint >= `oldest` can read."""
    j = -1
    for i, (v, _, _) in enumerate(group):
        if v <= oldest:
            j = i
    if j < 0:
        return []
    out = [pkey for _, pkey, _ in group[:j]]
    if group[j][2]:  # the newest needed version is a deletion: nothing of the key is needed
        out.append(group[j][1])
    return out
