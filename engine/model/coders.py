"""Beam's coders: how values become bytes. millstream stores state with its own codecs, so a coder given to a
state spec or an IO is accepted and used where bytes are asked for (`encode`/`decode`), as in Beam."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable
from typing import Any


class Coder:
    """Encodes values of one type to bytes and back."""

    def encode(self, value: Any) -> bytes:
        """The bytes of `value`."""
        raise NotImplementedError(f"{type(self).__name__}.encode")

    def decode(self, encoded: bytes) -> Any:
        """The value `encoded` holds."""
        raise NotImplementedError(f"{type(self).__name__}.decode")

    def is_deterministic(self) -> bool:
        """Whether equal values always encode to equal bytes (needed for keys)."""
        return False

    def to_type_hint(self) -> Any:
        """The Python type this coder encodes."""
        return Any

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PickleCoder(Coder):
    """Any picklable value, with pickle."""

    def encode(self, value: Any) -> bytes:
        """Pickle the value with the highest protocol (Beam's Coder.encode)."""
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        """Unpickle the value (Beam's Coder.decode)."""
        return pickle.loads(encoded)


class FastPrimitivesCoder(PickleCoder):
    """Beam's default coder for Python values (here: pickle, which handles every primitive)."""

    def is_deterministic(self) -> bool:
        """Declared deterministic, so it may encode keys (Beam's Coder.is_deterministic)."""
        return True


class BytesCoder(Coder):
    """`bytes` as themselves."""

    def encode(self, value: bytes) -> bytes:
        """The bytes unchanged; anything but bytes is refused (Beam's Coder.encode)."""
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"BytesCoder encodes bytes, got {type(value).__name__}")
        return bytes(value)

    def decode(self, encoded: bytes) -> bytes:
        """The bytes unchanged (Beam's Coder.decode)."""
        return bytes(encoded)

    def is_deterministic(self) -> bool:
        """Always true: bytes encode as themselves (Beam's Coder.is_deterministic)."""
        return True

    def to_type_hint(self) -> Any:
        """`bytes` (Beam's Coder.to_type_hint)."""
        return bytes


class StrUtf8Coder(Coder):
    """`str` as UTF-8."""

    def encode(self, value: str) -> bytes:
        """The string as UTF-8; anything but str is refused (Beam's Coder.encode)."""
        if not isinstance(value, str):
            raise TypeError(f"StrUtf8Coder encodes str, got {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, encoded: bytes) -> str:
        """The string the UTF-8 bytes hold (Beam's Coder.decode)."""
        return encoded.decode("utf-8")

    def is_deterministic(self) -> bool:
        """Always true: UTF-8 is one encoding per string (Beam's Coder.is_deterministic)."""
        return True

    def to_type_hint(self) -> Any:
        """`str` (Beam's Coder.to_type_hint)."""
        return str


class VarIntCoder(Coder):
    """`int` as a signed 64-bit variable-length integer (Beam's varint encoding)."""

    def encode(self, value: int) -> bytes:
        """The int as Beam's varint of its 64-bit two's complement (Beam's Coder.encode)."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"VarIntCoder encodes int, got {type(value).__name__}")
        n = value & 0xFFFFFFFFFFFFFFFF  # two's complement, as Beam encodes negatives
        out = bytearray()
        while True:
            bits = n & 0x7F
            n >>= 7
            if n:
                out.append(bits | 0x80)
            else:
                out.append(bits)
                return bytes(out)

    def decode(self, encoded: bytes) -> int:
        """The signed 64-bit int a varint holds (Beam's Coder.decode)."""
        result = shift = 0
        for byte in encoded:
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return result - (1 << 64) if result >= 1 << 63 else result

    def is_deterministic(self) -> bool:
        """Always true: a varint is one encoding per int (Beam's Coder.is_deterministic)."""
        return True

    def to_type_hint(self) -> Any:
        """`int` (Beam's Coder.to_type_hint)."""
        return int


class FloatCoder(Coder):
    """`float` as a big-endian IEEE double."""

    def encode(self, value: float) -> bytes:
        """The float as 8 big-endian IEEE bytes (Beam's Coder.encode)."""
        return struct.pack(">d", value)

    def decode(self, encoded: bytes) -> float:
        """The float 8 big-endian IEEE bytes hold (Beam's Coder.decode)."""
        return float(struct.unpack(">d", encoded)[0])

    def is_deterministic(self) -> bool:
        """Always true: one fixed-width encoding per float (Beam's Coder.is_deterministic)."""
        return True

    def to_type_hint(self) -> Any:
        """`float` (Beam's Coder.to_type_hint)."""
        return float


class BooleanCoder(Coder):
    """`bool` as one byte."""

    def encode(self, value: bool) -> bytes:
        """One byte, 1 for true and 0 for false (Beam's Coder.encode)."""
        return b"\x01" if value else b"\x00"

    def decode(self, encoded: bytes) -> bool:
        """The bool one byte holds (Beam's Coder.decode)."""
        return encoded == b"\x01"

    def is_deterministic(self) -> bool:
        """Always true: one byte per bool (Beam's Coder.is_deterministic)."""
        return True

    def to_type_hint(self) -> Any:
        """`bool` (Beam's Coder.to_type_hint)."""
        return bool


class TimestampCoder(Coder):
    """A `Timestamp` as its microseconds, a big-endian signed 64-bit integer (Beam's encoding).

    >>> from millstream.engine.model.timestamp import Timestamp
    >>> TimestampCoder().decode(TimestampCoder().encode(Timestamp(1.5))) == Timestamp(1.5)
    True
    """

    def encode(self, value: Any) -> bytes:
        """Encode a `Timestamp` as big-endian signed 64-bit microseconds (Beam's `TimestampCoder.encode`)."""
        from millstream.engine.model.timestamp import Timestamp

        if not isinstance(value, Timestamp):
            raise TypeError(f"TimestampCoder encodes Timestamp, got {type(value).__name__}")
        return struct.pack(">q", value.micros)

    def decode(self, encoded: bytes) -> Any:
        """Decode the microseconds back into a `Timestamp` (Beam's `TimestampCoder.decode`)."""
        from millstream.engine.model.timestamp import Timestamp

        return Timestamp(micros=struct.unpack(">q", encoded)[0])

    def is_deterministic(self) -> bool:
        """Always deterministic: equal timestamps encode to equal bytes (Beam's `Coder.is_deterministic`)."""
        return True


class ToBytesCoder(Coder):
    """Encodes bytes as themselves and anything else as its `str` in UTF-8; encode only (Beam's sink default).

    >>> ToBytesCoder().encode(12)
    b'12'
    """

    def encode(self, value: Any) -> bytes:
        """Bytes as themselves, anything else as its `str` in UTF-8 (Beam's `ToBytesCoder.encode`)."""
        return value if isinstance(value, bytes) else str(value).encode("utf-8")

    def decode(self, encoded: bytes) -> Any:
        """Not supported: the coder is encode-only, as in Beam; raises `NotImplementedError`."""
        raise NotImplementedError("ToBytesCoder cannot be used for decoding (as in Beam)")

    def is_deterministic(self) -> bool:
        """Always deterministic: equal values encode to equal bytes (Beam's `Coder.is_deterministic`)."""
        return True


#: Beam's older name for `ToBytesCoder`.
ToStringCoder = ToBytesCoder


def _length_prefixed(parts: Iterable[bytes]) -> bytes:
    return b"".join(VarIntCoder().encode(len(p)) + p for p in parts)


def _split(encoded: bytes) -> list[bytes]:
    parts, i, varint = [], 0, VarIntCoder()
    while i < len(encoded):
        j = i
        while encoded[j] & 0x80:
            j += 1
        size = varint.decode(encoded[i : j + 1])
        parts.append(encoded[j + 1 : j + 1 + size])
        i = j + 1 + size
    return parts


class TupleCoder(Coder):
    """A tuple whose i-th component is encoded by the i-th coder."""

    def __init__(self, components: Iterable[Coder]) -> None:
        self._coders = tuple(components)

    def coders(self) -> tuple[Coder, ...]:
        """The component coders."""
        return self._coders

    def encode(self, value: Any) -> bytes:
        """Each component with its coder, length-prefixed (Beam's Coder.encode)."""
        if len(value) != len(self._coders):
            raise ValueError(f"TupleCoder of {len(self._coders)} components got a tuple of {len(value)}")
        return _length_prefixed(c.encode(v) for c, v in zip(self._coders, value))

    def decode(self, encoded: bytes) -> tuple[Any, ...]:
        """The tuple of components, each decoded by its coder (Beam's Coder.decode)."""
        return tuple(c.decode(p) for c, p in zip(self._coders, _split(encoded)))

    def is_deterministic(self) -> bool:
        """Whether every component coder is deterministic (Beam's Coder.is_deterministic)."""
        return all(c.is_deterministic() for c in self._coders)

    def __repr__(self) -> str:
        return f"TupleCoder[{', '.join(map(repr, self._coders))}]"


class IterableCoder(Coder):
    """An iterable whose elements are all encoded by one coder (decoded as a list)."""

    def __init__(self, elem_coder: Coder) -> None:
        self._elem_coder = elem_coder

    def encode(self, value: Iterable[Any]) -> bytes:
        """Each element with the element coder, length-prefixed (Beam's Coder.encode)."""
        return _length_prefixed(self._elem_coder.encode(v) for v in value)

    def decode(self, encoded: bytes) -> list[Any]:
        """The elements as a list, each decoded by the element coder (Beam's Coder.decode)."""
        return [self._elem_coder.decode(p) for p in _split(encoded)]

    def is_deterministic(self) -> bool:
        """Whether the element coder is deterministic (Beam's Coder.is_deterministic)."""
        return self._elem_coder.is_deterministic()


class ListCoder(IterableCoder):
    """A list whose elements are all encoded by one coder."""


_BUILTIN_CODERS: dict[Any, type[Coder]] = {
    int: VarIntCoder,
    str: StrUtf8Coder,
    bytes: BytesCoder,
    float: FloatCoder,
    bool: BooleanCoder,
}


class CoderRegistry:
    """Which coder encodes values of a Python type (Beam's `coders.registry`)."""

    def __init__(self) -> None:
        self._coders: dict[Any, type[Coder]] = dict(_BUILTIN_CODERS)

    def register_coder(self, typehint: Any, coder: type[Coder]) -> None:
        """Use `coder` (a Coder class) for values of `typehint`."""
        if not (isinstance(coder, type) and issubclass(coder, Coder)):
            raise TypeError(f"register_coder needs a Coder subclass for {typehint!r}, got {coder!r}")
        self._coders[typehint] = coder

    def registered_coder(self, typehint: Any) -> Coder | None:
        """The coder a user registered for `typehint` (`register_coder`), or None for a type that has none
        or keeps its built-in coder: only such a coder changes which values are equal as keys."""
        coder = self._coders.get(typehint)
        if coder is None or coder is _BUILTIN_CODERS.get(typehint):
            return None
        return coder()

    def get_coder(self, typehint: Any) -> Coder:
        """The coder registered for `typehint`, else the default (FastPrimitivesCoder)."""
        return self._coders.get(typehint, FastPrimitivesCoder)()


registry = CoderRegistry()

__all__ = [
    "BooleanCoder",
    "BytesCoder",
    "Coder",
    "CoderRegistry",
    "FastPrimitivesCoder",
    "FloatCoder",
    "IterableCoder",
    "ListCoder",
    "PickleCoder",
    "StrUtf8Coder",
    "TimestampCoder",
    "ToBytesCoder",
    "ToStringCoder",
    "TupleCoder",
    "VarIntCoder",
    "registry",
]
