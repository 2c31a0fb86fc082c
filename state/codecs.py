"""Value codecs: Python values <-> bytes for the state store.

``MsgpackCodec`` (name ``"msgpack"``) is the general codec and is *type-exact*: what goes in comes
back with the same types, which user CombineFns rely on (``acc == (0, 0)``, tuple keys of dicts):

* None, bool, float (incl. nan/inf), str, bytes, list, dict: native msgpack;
* int: native within [-2**63, 2**64); beyond that an ext record (signed big-endian bytes), so sums
  that outgrow 64 bits still round-trip;
* tuple, set, frozenset: ext records holding a packed list (a tuple comes back as a tuple, also as
  a dict key or set element; a list comes back as a list);
* anything else (dataclasses, namedtuples, bytearray, datetime, int/str subclasses): a pickle ext
  record when ``allow_pickle`` (the default), else ``TypeError``. Pickled values depend on the class
  keeping its import path; prefer plain types for long-lived state.

Tuples cost a Python callback each (about 3x a plain list); the hot-accumulator codecs avoid that:

* ``StructCodec(fmt)`` (name ``"struct:<fmt>"``): fixed-shape numeric tuples, e.g. ``"<qq"`` for a
  (count, sum) of int64s: ``pack(*value)`` / ``unpack`` back to a tuple (``scalar=True`` for one
  field). Fastest both ways; out-of-range values raise ``struct.error``.
* ``OrjsonCodec`` (name ``"orjson"``): JSON-shaped values. Lossy by JSON's rules: tuples come back
  as lists, dict keys must be str, ints beyond 64 bits raise, nan/inf become null. Only for values
  known to be plain JSON.
* ``RawCodec`` (name ``"raw"``): bytes unchanged.

Measured costs are printed by ``bench/state_micro.py``. :func:`codec_from_name` rebuilds a codec
from its ``name`` (recorded in checkpoint manifests). A codec instance is safe to share between
threads (packers are per thread).
"""

from __future__ import annotations

import pickle
import struct
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import msgpack
import orjson

__all__ = [
    "Codec",
    "MsgpackCodec",
    "StructCodec",
    "OrjsonCodec",
    "RawCodec",
    "MSGPACK",
    "RAW",
    "codec_from_name",
]

T = TypeVar("T")

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_BIGINT = 4
EXT_PICKLE = 127

_unpackb = msgpack.unpackb


class Codec(Protocol[T]):
    """Encodes values of one kind to bytes and back; ``name`` identifies the encoding."""

    @property
    def name(self) -> str:
        """Stable identifier recorded in manifests (``codec_from_name`` rebuilds the codec)."""
        ...

    def encode(self, value: T) -> bytes:
        """Serialise ``value``."""
        ...

    def decode(self, data: bytes) -> T:
        """Deserialise bytes produced by :meth:`encode`."""
        ...


def _ext_header(code: int, size: int) -> bytes:
    """msgpack ext header for ``size`` bytes of payload (fixext 1/2/4/8/16, ext 8/16/32)."""
    fixed = _FIXEXT.get(size)
    if fixed is not None:
        return bytes((fixed, code))
    if size < 0x100:
        return bytes((0xC7, size, code))
    if size < 0x10000:
        return b"\xc8" + size.to_bytes(2, "big") + bytes((code,))
    return b"\xc9" + size.to_bytes(4, "big") + bytes((code,))


_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
_FIXEXT_SIZE = {v: k for k, v in _FIXEXT.items()}
_TUPLE_HEADERS = [_ext_header(EXT_TUPLE, n) for n in range(0x100)]  # building one costs ~0.3 us


class _PackerStack(threading.local):
    """Per-thread packers, one per nesting depth: a packer is not re-entrant, and ``default``
    packs the items of a tuple/set while the packer one level up is still busy."""

    def __init__(self, make: Callable[[], msgpack.Packer]) -> None:
        self.make = make
        self.packers: list[msgpack.Packer] = [make()]
        self.depth = 0


class MsgpackCodec:
    """General, type-exact msgpack codec (see the module docstring for the type rules)."""

    def __init__(self, *, allow_pickle: bool = True) -> None:
        self._allow_pickle = allow_pickle
        self._stack = _PackerStack(self._new_packer)
        self._hook = self._ext_hook  # bound once: the C unpacker calls it per ext record
        self.name = "msgpack" if allow_pickle else "msgpack-nopickle"

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(use_bin_type=True, strict_types=True, default=self._default)

    def _pack_nested(self, obj: Any) -> bytes:
        stack = self._stack
        depth = stack.depth + 1
        packers = stack.packers
        if len(packers) <= depth:
            packers.append(stack.make())
        stack.depth = depth
        try:
            packed: bytes = packers[depth].pack(obj)
            return packed
        finally:
            stack.depth = depth - 1

    def _default(self, obj: Any) -> msgpack.ExtType:
        t = type(obj)
        if t is tuple:
            return msgpack.ExtType(EXT_TUPLE, self._pack_nested(list(obj)))
        if t is int:
            return msgpack.ExtType(EXT_BIGINT, obj.to_bytes((obj.bit_length() + 8) // 8, "big", signed=True))
        if t is set:
            return msgpack.ExtType(EXT_SET, self._pack_nested(list(obj)))
        if t is frozenset:
            return msgpack.ExtType(EXT_FROZENSET, self._pack_nested(list(obj)))
        if self._allow_pickle:
            return msgpack.ExtType(EXT_PICKLE, pickle.dumps(obj, protocol=5))
        raise TypeError(f"MsgpackCodec(allow_pickle=False) cannot encode {t.__qualname__}")

    def _unpackb(self, data: bytes) -> Any:
        # Keyword call straight to the C function: ~20% faster than a functools.partial.
        return _unpackb(data, raw=False, strict_map_key=False, ext_hook=self._hook)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_TUPLE:
            return tuple(_unpackb(data, raw=False, strict_map_key=False, ext_hook=self._hook))
        if code == EXT_BIGINT:
            return int.from_bytes(data, "big", signed=True)
        if code == EXT_SET:
            return set(self._unpackb(data))
        if code == EXT_FROZENSET:
            return frozenset(self._unpackb(data))
        if code == EXT_PICKLE:
            if not self._allow_pickle:
                raise ValueError("pickled value found but the codec does not allow pickle")
            return pickle.loads(data)
        return msgpack.ExtType(code, data)

    def encode(self, value: Any) -> bytes:
        """Serialise ``value`` (type-exact; see the module docstring)."""
        stack = self._stack
        if stack.depth:
            # Called from inside our own `default` (e.g. a pickled object that encodes itself).
            return self._pack_nested(value)
        packer = stack.packers[0]
        if type(value) is tuple:
            # Top-level tuples (the common accumulator shape) skip the `default` round trip: the
            # ext header is written here and the items are packed by the idle top-level packer.
            body: bytes = packer.pack(list(value))
            size = len(body)
            return (_TUPLE_HEADERS[size] if size < 0x100 else _ext_header(EXT_TUPLE, size)) + body
        packed: bytes = packer.pack(value)
        return packed

    def decode(self, data: bytes) -> Any:
        """Deserialise bytes produced by :meth:`encode`."""
        # Top-level tuples skip the ext-hook round trip (mirror of the fast path in `encode`).
        if len(data) > 2:
            first = data[0]
            if first == 0xC7 and data[2] == EXT_TUPLE and data[1] == len(data) - 3:
                return tuple(_unpackb(data[3:], raw=False, strict_map_key=False, ext_hook=self._hook))
            if first in _FIXEXT_SIZE and data[1] == EXT_TUPLE and _FIXEXT_SIZE[first] == len(data) - 2:
                return tuple(_unpackb(data[2:], raw=False, strict_map_key=False, ext_hook=self._hook))
        return _unpackb(data, raw=False, strict_map_key=False, ext_hook=self._hook)


class StructCodec:
    """Fixed-shape numeric values via ``struct``: tuples (or one scalar with ``scalar=True``)."""

    def __init__(self, fmt: str, *, scalar: bool = False) -> None:
        self._struct = struct.Struct(fmt)
        if scalar and len(self._struct.unpack(bytes(self._struct.size))) != 1:
            raise ValueError(f"scalar=True needs a one-field format, got {fmt!r}")
        self._scalar = scalar
        self.name = f"struct:{fmt}" + (":scalar" if scalar else "")
        self._pack = self._struct.pack
        self._unpack = self._struct.unpack

    def encode(self, value: Any) -> bytes:
        """Pack the tuple's fields (or the scalar)."""
        return self._pack(value) if self._scalar else self._pack(*value)

    def decode(self, data: bytes) -> Any:
        """Unpack to a tuple (or the scalar)."""
        fields = self._unpack(data)
        return fields[0] if self._scalar else fields


class OrjsonCodec:
    """JSON-shaped values via orjson (lossy: tuples -> lists, str keys only, 64-bit ints)."""

    name = "orjson"

    def encode(self, value: Any) -> bytes:
        """Serialise with ``orjson.dumps``."""
        return orjson.dumps(value)

    def decode(self, data: bytes) -> Any:
        """Deserialise with ``orjson.loads``."""
        return orjson.loads(data)


class RawCodec(Generic[T]):
    """Identity codec for values that already are bytes."""

    name = "raw"

    def encode(self, value: bytes) -> bytes:
        """Return ``value`` unchanged."""
        return value

    def decode(self, data: bytes) -> bytes:
        """Return ``data`` unchanged."""
        return data


MSGPACK = MsgpackCodec()
"""Shared general codec."""
RAW: RawCodec[bytes] = RawCodec()
"""Shared identity codec."""


def codec_from_name(name: str) -> Codec[Any]:
    """Rebuild a codec from its ``name`` (``msgpack``, ``msgpack-nopickle``, ``orjson``, ``raw``,
    ``struct:<fmt>[:scalar]``)."""
    if name == "msgpack":
        return MsgpackCodec()
    if name == "msgpack-nopickle":
        return MsgpackCodec(allow_pickle=False)
    if name == "orjson":
        return OrjsonCodec()
    if name == "raw":
        return RawCodec()
    if name.startswith("struct:"):
        spec = name[len("struct:") :]
        if spec.endswith(":scalar"):
            return StructCodec(spec[: -len(":scalar")], scalar=True)
        return StructCodec(spec)
    raise ValueError(f"unknown codec name {name!r}")
