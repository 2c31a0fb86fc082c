"""The on-disk format record: which layout a store was written with.

Every store holds one record at ``META + b"format"`` (msgpack map ``{"magic": "millstream-state",
"version": N}``), written when the store is created. Opening checks it:

* no record in an empty store: a new store, the current record is written;
* no record in a non-empty store, a record without our magic, or one that cannot be decoded:
  :class:`StateFormatError` (the directory is not a millstream state store);
* a version not in :data:`SUPPORTED_VERSIONS` (e.g. written by a newer millstream):
  :class:`StateFormatError` naming the path, the version found and the versions supported.

Version history: 1 = keys as in :mod:`millstream.state.keys`, manifests as in
:mod:`millstream.state.checkpoints`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack

from .errors import StateFormatError
from .keys import META

__all__ = ["FORMAT_KEY", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "MAGIC", "format_record", "check_format"]

FORMAT_KEY = META + b"format"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
MAGIC = "millstream-state"


def format_record(version: int = FORMAT_VERSION) -> bytes:
    """The value stored under :data:`FORMAT_KEY`."""
    return msgpack.packb({"magic": MAGIC, "version": version})


def check_format(path: str, record: bytes | None, store_is_empty: Callable[[], bool]) -> bool:
    """Validate a store's format record; return True when the record must be written (new store).

    Raises :class:`StateFormatError` when the store is foreign or its version is unsupported.
    """
    if record is None:
        if store_is_empty():
            return True
        raise StateFormatError(
            path,
            "not a millstream state store (data present but no format record)",
            supported=SUPPORTED_VERSIONS,
        )
    try:
        decoded = msgpack.unpackb(record, raw=False)
    except Exception as exc:  # any decoding failure means the record is not ours
        raise StateFormatError(
            path, f"unreadable format record ({exc})", supported=SUPPORTED_VERSIONS
        ) from exc
    if not isinstance(decoded, dict) or decoded.get("magic") != MAGIC:
        raise StateFormatError(
            path, f"not a millstream state store (format record {decoded!r})", supported=SUPPORTED_VERSIONS
        )
    version = decoded.get("version")
    if not isinstance(version, int) or version not in SUPPORTED_VERSIONS:
        newer = isinstance(version, int) and version > max(SUPPORTED_VERSIONS)
        hint = " (written by a newer millstream?)" if newer else ""
        raise StateFormatError(
            path,
            f"unsupported state format version {version!r}{hint}; this millstream reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}",
            found=version if isinstance(version, int) else None,
            supported=SUPPORTED_VERSIONS,
        )
    return False
