"""Offset metadata: which checkpoint (and which transaction) committed a consumer offset
(``millstream/1 ckpt=<id>``)."""

from __future__ import annotations

import re
import socket

_META = re.compile(r"^millstream/1 (.*)$")


def format_offset_metadata(checkpoint_id: int, txn: str | None = None, seq: int | None = None) -> str:
    """The metadata stored with offsets committed for a checkpoint."""
    parts = ["millstream/1"]
    if txn is not None:
        parts.append(f"txn={txn}")
    if seq is not None:
        parts.append(f"seq={seq}")
    parts.append(f"ckpt={checkpoint_id}")
    parts.append(f"host={socket.gethostname()}:{_pid()}")
    return " ".join(parts)


def _pid() -> int:
    import os

    return os.getpid()


def parse_offset_metadata(metadata: str | None) -> dict[str, str] | None:
    """The fields of millstream's offset metadata, or None for anything else."""
    m = _META.match(metadata or "")
    if m is None:
        return None
    out = {}
    for token in m.group(1).split():
        key, sep, value = token.partition("=")
        if sep:
            out[key] = value
    return out
