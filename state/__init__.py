"""Durable keyed state for millstream: backends, key encoding, codecs, checkpoints.

This package knows nothing of windows, triggers or the engine. The pieces:

* :class:`StateBackend` protocol; :class:`MemoryBackend`; :class:`RocksDBBackend` (rocksdict).
* :mod:`millstream.state.keys`: (operator, key, namespace, name) -> sortable, prefix-safe bytes.
* :mod:`millstream.state.codecs`: ``MsgpackCodec`` (general, type-exact), ``StructCodec`` /
  ``OrjsonCodec`` (hot accumulators), ``RawCodec``.
* :class:`CheckpointStore`: one atomic batch per checkpoint (state + manifest), retention.
* Typed errors: :class:`StateError` and subclasses.
"""

from .backend import MemoryBackend, ReadView, StateBackend
from .checkpoints import CheckpointStore, Manifest
from .codecs import MSGPACK, RAW, Codec, MsgpackCodec, OrjsonCodec, RawCodec, StructCodec, codec_from_name
from .errors import (
    StateClosedError,
    StateCorruptedError,
    StateError,
    StateFormatError,
    StateIOError,
    StateLockedError,
)
from .format import FORMAT_VERSION, SUPPORTED_VERSIONS
from .rocks import RocksDBBackend

__all__ = [
    "StateBackend",
    "ReadView",
    "MemoryBackend",
    "RocksDBBackend",
    "CheckpointStore",
    "Manifest",
    "Codec",
    "MsgpackCodec",
    "StructCodec",
    "OrjsonCodec",
    "RawCodec",
    "MSGPACK",
    "RAW",
    "codec_from_name",
    "StateError",
    "StateClosedError",
    "StateCorruptedError",
    "StateFormatError",
    "StateIOError",
    "StateLockedError",
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
]
