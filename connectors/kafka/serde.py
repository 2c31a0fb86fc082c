"""Kafka (de)serializers: Python callables, or Beam's Java class names for the common ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.connectors.kafka.config import (
    KafkaConfigError,
)

_JAVA = "org.apache.kafka.common.serialization."


def _identity(b: Any) -> Any:
    return b


def _utf8_decode(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8")


def _utf8_encode(v: Any) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise TypeError(f"expected str or bytes, got {type(v).__name__}")


def to_bytes(v: Any) -> bytes | None:
    """The default serializer: bytes as they are, str as UTF-8, None as None (a null key or tombstone)."""
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise TypeError(
        f"a Kafka key or value must be bytes or str, got {type(v).__name__}; pass key_serializer=/value_serializer="
    )


def resolve_deserializer(spec: Any, what: str) -> Callable[[Any], Any] | None:
    """A deserializer (bytes or None -> value), or None for raw bytes."""
    if spec is None or spec in (_JAVA + "ByteArrayDeserializer", _JAVA + "BytesDeserializer"):
        return None
    if spec == _JAVA + "StringDeserializer":
        return _utf8_decode
    if isinstance(spec, str):
        raise KafkaConfigError(
            f"{what}={spec!r}: give a Python function (bytes -> value) or a Java "
            "ByteArray/String deserializer name"
        )
    if not callable(spec):
        raise KafkaConfigError(f"{what} must be callable, got {type(spec).__name__}")
    fn = spec

    def guarded(b: Any) -> Any:
        return None if b is None else fn(b)

    return guarded


def resolve_serializer(spec: Any, what: str) -> Callable[[Any], bytes | None]:
    """A serializer (value -> bytes or None)."""
    if spec is None or spec in (_JAVA + "ByteArraySerializer", _JAVA + "BytesSerializer"):
        return to_bytes
    if spec == _JAVA + "StringSerializer":
        return _utf8_encode
    if isinstance(spec, str):
        raise KafkaConfigError(
            f"{what}={spec!r}: give a Python function (value -> bytes) or a Java "
            "ByteArray/String serializer name"
        )
    if not callable(spec):
        raise KafkaConfigError(f"{what} must be callable, got {type(spec).__name__}")
    fn = spec

    def guarded(v: Any) -> bytes | None:
        return None if v is None else to_bytes(fn(v))

    return guarded
