"""Records made writable by every text-based sink: bytes become text, or base64 where they are not UTF-8.

Dead-letter records carry the undecodable input as ``raw`` bytes (and Kafka's ``key`` and ``headers``); JSON
and CSV have no bytes type. `portable` rewrites a record so that a dict's bytes field ``f`` holds text and a
sibling ``f_encoding`` says how to get the bytes back (``"utf-8"`` or ``"base64"``); bytes inside a list
become text, or ``{"base64": ...}`` when they are not UTF-8. Exception types (Beam's dead-letter error
triple) become their qualified names, exceptions their repr.
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["has_bytes", "portable", "portable_bytes"]


def portable_bytes(data: bytes | bytearray | memoryview) -> tuple[str, str]:
    """`data` as (text, encoding): UTF-8 text where it decodes, else base64."""
    raw = bytes(data)
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def has_bytes(record: dict[Any, Any]) -> bool:
    """Whether any field of `record` holds bytes (the cheap test before `portable`)."""
    return any(isinstance(v, (bytes, bytearray, memoryview)) for v in record.values())


def portable(value: Any) -> Any:
    """`value` with bytes, exception types and exceptions turned into JSON-friendly values (see the module)."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(v, (bytes, bytearray, memoryview)):
                out[k], out[f"{k}_encoding"] = portable_bytes(v)
            else:
                out[k] = portable(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_portable_item(v) for v in value]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, BaseException):
        return repr(value)
    return value


def _portable_item(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        text, encoding = portable_bytes(value)
        return text if encoding == "utf-8" else {"base64": text}
    return portable(value)
