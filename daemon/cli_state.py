"""`millstream checkpoints list|inspect` and `millstream state inspect|rotate-key|new-key`: a job's state directory."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
from typing import Any


class EncryptedState(Exception):
    """The state directory is encrypted and no key was given: what can be said without the key."""

    def __init__(self, state_dir: str, header: dict[str, Any]) -> None:
        super().__init__(
            f"{state_dir}: encrypted with key {header['kek']!r} ({header.get('alg')}); pass "
            "--state_encryption_key SOURCE to read it"
        )
        self.header = header


def _open_store(state_dir: str, key: str | None = None) -> Any:
    from millstream.state import CheckpointStore, RocksDBBackend
    from millstream.state.encryption import EncryptedBackend, encryption_header, key_source, unwrap_cipher
    from millstream.state.errors import StateError

    if not os.path.isdir(state_dir):
        raise SystemExit(f"millstream: no state directory at {state_dir}")
    provider = key_source(key) if key else None
    try:
        backend: Any = RocksDBBackend(state_dir, create=False, read_only=True)
    except StateError as e:
        raise SystemExit(f"millstream: {state_dir} is not a job's state directory ({e})") from None
    try:
        header = encryption_header(backend)
        if header is not None:
            if provider is None:
                raise EncryptedState(state_dir, header)
            backend = EncryptedBackend(backend, unwrap_cipher(state_dir, header, provider))
    except StateError as e:
        backend.close()
        raise SystemExit(f"millstream: {e}") from None
    except BaseException:
        backend.close()
        raise
    return backend, CheckpointStore(backend)


def _open_or_say_encrypted(args: argparse.Namespace) -> Any:
    try:
        return _open_store(args.state_dir, getattr(args, "state_encryption_key", None))
    except EncryptedState as e:
        if getattr(args, "json", False):
            print(json.dumps({"encrypted": True, "key": e.header["kek"], "algorithm": e.header.get("alg")}))
        else:
            print(str(e))
        return None


_ENUM_REPR = re.compile(r"<(\w+)\.(\w+): [^<>]*>")


def _readable(value: Any) -> Any:
    """Layout values for people: ``<AccumulationMode.ACCUMULATING: 2>`` (kept so in the fingerprint) reads
    ``AccumulationMode.ACCUMULATING``."""
    if isinstance(value, str):
        return _ENUM_REPR.sub(r"\1.\2", value)
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def _when(micros: int) -> str:
    return datetime.datetime.fromtimestamp(micros / 1e6, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def checkpoints_list(args: argparse.Namespace) -> int:
    """Print the retained checkpoints of a state directory."""
    opened = _open_or_say_encrypted(args)
    if opened is None:
        return 0
    backend, store = opened
    try:
        manifests = store.list()
        bad = store.verify()
    finally:
        backend.close()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": m.checkpoint_id,
                        "time": m.wall_time_micros,
                        "fingerprint": m.fingerprint,
                        "puts": m.puts,
                        "deletes": m.deletes,
                        "bytes": m.bytes_written,
                        "final": bool(m.metadata.get("final")),
                    }
                    for m in manifests
                ]
                + [{"id": i, "error": why} for i, why in bad],
                indent=2,
            )
        )
        return 0
    print(f"{'id':>6}  {'time':<23}  {'fingerprint':<16}  {'writes':>7}  {'bytes':>10}  final")
    for m in manifests:
        print(
            f"{m.checkpoint_id:>6}  {_when(m.wall_time_micros):<23}  {m.fingerprint:<16}  {m.puts:>7}  "
            f"{m.bytes_written:>10}  {'yes' if m.metadata.get('final') else ''}"
        )
    for i, why in bad:
        print(f"{i:>6}  UNREADABLE: {why}")
    return 0


def checkpoints_inspect(args: argparse.Namespace) -> int:
    """Print one checkpoint's manifest: steps, source positions, sink records."""
    opened = _open_or_say_encrypted(args)
    if opened is None:
        return 0
    backend, store = opened
    try:
        m = store.get(args.id) if args.id is not None else store.latest()
    finally:
        backend.close()
    if m is None:
        print("no checkpoint has been committed yet")
        return 1
    doc = {
        "id": m.checkpoint_id,
        "time": _when(m.wall_time_micros),
        "fingerprint": m.fingerprint,
        "steps": _readable(m.layout),
        "sources": m.metadata.get("sources", {}),
        "sinks": m.metadata.get("sinks", {}),
        "state_snapshots": m.metadata.get("state", {}),
        "final": bool(m.metadata.get("final")),
    }
    print(json.dumps(doc, indent=2, default=repr))
    return 0


def state_inspect(args: argparse.Namespace) -> int:
    """Print, per step, the stored state's size, keys and (key, window) pairs still open."""
    from millstream.engine.runtime.checkpoint.coordinator import snapshot_key
    from millstream.state import MsgpackCodec

    opened = _open_or_say_encrypted(args)
    if opened is None:
        return 0
    backend, store = opened
    codec = MsgpackCodec(allow_pickle=True)
    try:
        m = store.latest(allow_fallback=True)
        if m is None:
            print("no checkpoint has been committed yet")
            return 1
        refs = m.metadata.get("state", {})
        rows: list[dict[str, Any]] = []
        for label, ref in refs.items():
            value = backend.get(snapshot_key(label, ref))
            if value is None:
                continue
            data = codec.decode(value)
            rows.append(
                {
                    "step": label,
                    "bytes": len(value),
                    "keys": _count(data, "keys"),
                    "open_windows": _count(data, "windows"),
                }
            )
        for label in sorted(set(m.layout) - set(refs)):
            row = _incremental_row(backend, codec, label, m.checkpoint_id)
            if row is not None:
                rows.append(row)
    finally:
        backend.close()
    rows.sort(key=lambda r: str(r["step"]))
    if args.json:
        print(json.dumps({"checkpoint": m.checkpoint_id, "steps": rows}, indent=2))
        return 0
    print(f"checkpoint {m.checkpoint_id}")
    print(f"{'step':<40}  {'bytes':>10}  {'keys':>8}  {'open windows':>12}")
    for r in rows:
        print(
            f"{r['step']:<40}  {r['bytes']:>10}  {r['keys'] if r['keys'] is not None else '-':>8}  "
            f"{r['open_windows'] if r['open_windows'] is not None else '-':>12}"
        )
    return 0


def _incremental_row(backend: Any, codec: Any, label: str, cid: int) -> dict[str, Any] | None:
    """The row of a step whose state is stored incrementally (per-entry records), or None if it has none.

    Open windows count (key, window) pairs with state: slot/bucket entries of the windowed fast paths,
    the windows and open sessions in per-key records, the (key, window) entries of user state; fired
    windows kept only for late data do not count.
    """
    from millstream.engine.runtime.checkpoint.versioned_store import live_entries

    header, entries = live_entries(backend, label, cid)
    if header is None:
        return None
    keys = set()
    size = 0
    windows = 0
    for ns, ukey, payload in entries:
        size += len(ukey) + len(payload)
        key = codec.decode(ukey)
        if ns == b"kw":  # user state: (key, window start, window end)
            keys.add(_hashable(key[0]))
            windows += 1
            continue
        keys.add(_hashable(key))
        kind = ns[:1]
        if kind in (b"s", b"b"):
            windows += 1
        elif kind == b"k":
            general, sessions = codec.decode(payload)[:2]
            windows += (len(general[0]) if general else 0) + len(sessions or ())
    return {"step": label, "bytes": size, "keys": len(keys), "open_windows": windows}


def _hashable(key: Any) -> Any:
    """A user key as a set member (msgpack gives lists for some tuples' contents)."""
    try:
        hash(key)
        return key
    except TypeError:
        return repr(key)


def _count(data: Any, what: str) -> int | None:
    """Keys or open windows in an operator snapshot, when its shape says."""
    if not isinstance(data, dict):
        return None
    if what == "keys":
        for field in ("keys", "accs"):
            if isinstance(data.get(field), (list, dict)):
                return len(data[field])
        return None
    windows = data.get("windows")
    if isinstance(windows, (list, dict)):
        return len(windows)
    keys = data.get("keys")
    if isinstance(keys, (list, dict)):
        items = keys.values() if isinstance(keys, dict) else keys
        total = 0
        for k in items:
            w = (
                k.get("windows")
                if isinstance(k, dict)
                else (k[1] if isinstance(k, (list, tuple)) and len(k) > 1 else None)
            )
            if isinstance(w, (list, dict)):
                total += len(w)
        return total
    return None


def add_commands(sub: Any) -> None:
    """Register the `checkpoints` and `state` commands."""
    ck = sub.add_parser("checkpoints", help="list or inspect a job's checkpoints")
    ck_sub = ck.add_subparsers(dest="action", required=True)
    lst = ck_sub.add_parser("list", help="the retained checkpoints")
    lst.add_argument("--state_dir", required=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=checkpoints_list)
    ins = ck_sub.add_parser("inspect", help="one checkpoint's manifest (default: the latest)")
    ins.add_argument("id", nargs="?", type=int)
    ins.add_argument("--state_dir", required=True)
    ins.set_defaults(handler=checkpoints_inspect)
    st = sub.add_parser("state", help="inspect a job's stored state")
    st_sub = st.add_subparsers(dest="action", required=True)
    si = st_sub.add_parser("inspect", help="state size, keys and open windows per step")
    si.add_argument("--state_dir", required=True)
    si.add_argument("--json", action="store_true")
    si.set_defaults(handler=state_inspect)
    for parser in (lst, ins, si):
        parser.add_argument(
            "--state_encryption_key",
            default=None,
            metavar="SOURCE",
            help="the key of an encrypted state directory (docs/security.md)",
        )
    rk = st_sub.add_parser("rotate-key", help="re-encrypt a stopped job's state under a new key (crash-safe)")
    rk.add_argument("--state_dir", required=True)
    rk.add_argument(
        "--state_encryption_key",
        default=None,
        metavar="SOURCE",
        help="the current key (omit to encrypt a plaintext state directory)",
    )
    rk.add_argument(
        "--new_key", required=True, metavar="SOURCE", help="the new key (its newest version wraps)"
    )
    rk.add_argument(
        "--rewrap-only",
        "--rewrap_only",
        dest="rewrap_only",
        action="store_true",
        help="keep the data key and the records; only wrap the data key by the new key (one atomic "
        "write, instant for any size; needs --state_encryption_key)",
    )
    rk.set_defaults(handler=state_rotate_key)
    nk = st_sub.add_parser("new-key", help="write a random 256-bit key to a new file (mode 0600)")
    nk.add_argument("--out", required=True)
    nk.set_defaults(handler=state_new_key)


def state_rotate_key(args: argparse.Namespace) -> int:
    """`millstream state rotate-key`: a fresh data key wrapped by the new key; the job must be stopped."""
    from millstream.state.encryption import KeySourceError, key_source
    from millstream.state.errors import StateError
    from millstream.state.rekey import rewrap_key, rotate_key

    if not os.path.isdir(args.state_dir):
        raise SystemExit(f"millstream: no state directory at {args.state_dir}")
    if args.rewrap_only and not args.state_encryption_key:
        raise SystemExit(
            "millstream: state rotate-key --rewrap-only needs --state_encryption_key: the current "
            "key must unwrap the data key"
        )
    try:
        old = key_source(args.state_encryption_key) if args.state_encryption_key else None
        new = key_source(args.new_key)
        if args.rewrap_only:
            assert old is not None
            done = rewrap_key(args.state_dir, old, new)
            print(
                f"{args.state_dir}: data key re-wrapped from key {done['previous']!r} to key {done['kek']!r} "
                "(records and spilled files unchanged)"
            )
            return 0
        result = rotate_key(args.state_dir, old, new)
    except (KeySourceError, StateError) as e:
        raise SystemExit(f"millstream: {e}") from None
    print(
        f"{args.state_dir}: re-encrypted {result['records']} records and {result['files']} spilled files "
        f"under key {result['kek']!r}"
    )
    return 0


def state_new_key(args: argparse.Namespace) -> int:
    """`millstream state new-key --out FILE`: 32 random bytes as hex, in a file only its owner can read."""
    import secrets

    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise SystemExit(f"millstream: cannot create key file {args.out}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    from millstream.state.encryption import key_source

    print(f"wrote a new key to {args.out} (id {key_source('file:' + args.out).primary_key_id()})")
    return 0
