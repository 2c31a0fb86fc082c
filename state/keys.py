"""Key encoding: how (operator, key, namespace, name) becomes one sortable byte string.

Layout
------
Every key starts with one *key-space* byte, followed by escaped, terminated segments::

    0x00 ...                          META: reserved for millstream.state (format record, manifests)
    0x01 seg(op) seg(key) seg(ns) seg(name)   STATE: operator state (:func:`state_key`)
    0x02 seg(...)...                  AUX: free for the engine (e.g. per-operator bookkeeping)

``seg(s)`` is the segment's bytes with every ``0x00`` written as ``0x00 0xFF``, followed by the
terminator ``0x00 0x01`` (the FoundationDB tuple-layer trick). Hence

* a complete segment is never a prefix of a different segment, so ``operator_prefix("a")`` does not
  match the state of operator ``"ab"`` or ``"a\\x00b"``: all state of one operator, of one
  (operator, key), or of one (operator, key, namespace) is one contiguous prefix range;
* escaped segments compare like the raw bytes, so keys sort by operator, then key bytes, then
  namespace bytes, then name: fixed-width big-endian namespaces (:func:`encode_i64`) scan in
  numeric order, e.g. a key's windows by end time;
* a segment may be cut short on purpose (:func:`partial_prefix`) to scan, say, all keys whose
  key bytes start with some bytes.

Operator ids and names are ``str`` (UTF-8); user keys and namespaces are ``bytes`` the engine
encodes (msgpack of the user key, :func:`encode_i64` of window bounds, ...). Decoding returns the
same four parts. Everything here is pure and allocation-light: one ``replace`` and one ``join``
per segment.
"""

from __future__ import annotations

import struct

__all__ = [
    "META",
    "STATE",
    "AUX",
    "encode_segments",
    "decode_segments",
    "state_key",
    "decode_state_key",
    "operator_prefix",
    "key_prefix",
    "namespace_prefix",
    "partial_prefix",
    "aux_key",
    "prefix_end",
    "encode_i64",
    "decode_i64",
    "encode_u64",
    "decode_u64",
]

META = b"\x00"
"""Key space reserved for ``millstream.state`` itself; never write keys starting with it."""
STATE = b"\x01"
"""Key space of operator state (:func:`state_key`)."""
AUX = b"\x02"
"""Key space free for the engine's own records (:func:`aux_key`)."""

_NUL = b"\x00"
_ESC = b"\x00\xff"
_END = b"\x00\x01"
_I64 = struct.Struct(">Q")
_SIGN = 1 << 63


def _seg(data: bytes) -> bytes:
    return data.replace(_NUL, _ESC) + _END


def encode_segments(*segments: bytes) -> bytes:
    """Escape and terminate each segment and concatenate them (no key-space byte)."""
    return b"".join([s.replace(_NUL, _ESC) + _END for s in segments])


def decode_segments(data: bytes) -> list[bytes]:
    """Inverse of :func:`encode_segments`; raises ``ValueError`` on a malformed encoding."""
    if not data:
        return []
    if not data.endswith(_END):
        raise ValueError(f"malformed key segments (no terminator): {data!r}")
    # A content 0x00 is always followed by 0xFF, so every 00 01 pair is a terminator.
    parts = data[:-2].split(_END)
    out = []
    for part in parts:
        if b"\x00" in part.replace(_ESC, b""):
            raise ValueError(f"malformed key segments (bad escape): {data!r}")
        out.append(part.replace(_ESC, _NUL))
    return out


def state_key(operator: str, key: bytes, namespace: bytes, name: str) -> bytes:
    """The key of one state cell: ``STATE seg(operator) seg(key) seg(namespace) seg(name)``."""
    return b"".join(
        (
            STATE,
            operator.encode().replace(_NUL, _ESC),
            _END,
            key.replace(_NUL, _ESC),
            _END,
            namespace.replace(_NUL, _ESC),
            _END,
            name.encode().replace(_NUL, _ESC),
            _END,
        )
    )


def decode_state_key(data: bytes) -> tuple[str, bytes, bytes, str]:
    """Split a :func:`state_key` back into ``(operator, key, namespace, name)``."""
    if data[:1] != STATE:
        raise ValueError(f"not a state key: {data!r}")
    parts = decode_segments(data[1:])
    if len(parts) != 4:
        raise ValueError(f"state key has {len(parts)} segments, expected 4: {data!r}")
    return parts[0].decode(), parts[1], parts[2], parts[3].decode()


def operator_prefix(operator: str) -> bytes:
    """Prefix of all state of one operator."""
    return STATE + _seg(operator.encode())


def key_prefix(operator: str, key: bytes) -> bytes:
    """Prefix of all state of one (operator, key), across namespaces and names."""
    return STATE + _seg(operator.encode()) + _seg(key)


def namespace_prefix(operator: str, key: bytes, namespace: bytes) -> bytes:
    """Prefix of all state of one (operator, key, namespace), across names."""
    return STATE + _seg(operator.encode()) + _seg(key) + _seg(namespace)


def partial_prefix(complete: bytes, partial_segment: bytes) -> bytes:
    """``complete`` (a prefix ending at a segment boundary) plus an unterminated segment start.

    Matches every key whose next segment begins with ``partial_segment``.
    """
    return complete + partial_segment.replace(_NUL, _ESC)


def aux_key(*segments: bytes) -> bytes:
    """A key in the engine's free AUX key space."""
    return AUX + encode_segments(*segments)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def encode_i64(value: int) -> bytes:
    """Order-preserving 8-byte encoding of a signed 64-bit int (e.g. window bounds in micros)."""
    return _I64.pack(value + _SIGN)


def decode_i64(data: bytes) -> int:
    """Inverse of :func:`encode_i64`."""
    return int(_I64.unpack(data)[0]) - _SIGN


def encode_u64(value: int) -> bytes:
    """Big-endian 8-byte encoding of an unsigned 64-bit int (sorts numerically)."""
    return _I64.pack(value)


def decode_u64(data: bytes) -> int:
    """Inverse of :func:`encode_u64`."""
    return int(_I64.unpack(data)[0])
