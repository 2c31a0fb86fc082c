"""Typed errors of the state layer.

Every error names the store (``path``) and the cause, so a failed open or write can be reported in
one clear line. RocksDB reports every failure as a plain ``Exception`` whose message starts with a
status word ("Corruption: ...", "IO error: ..."); :func:`translate_rocksdb_error` maps those onto
this hierarchy::

    StateError
    ├── StateClosedError        the backend was closed
    ├── StateCorruptedError     files or records fail their checksums / cannot be parsed
    ├── StateFormatError        the store is not ours, or was written by an unknown format version
    └── StateIOError            the operating system refused (``errno``: ENOSPC, EACCES, ...)
        └── StateLockedError    another process (or another open in this one) holds the store
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "StateError",
    "StateClosedError",
    "StateCorruptedError",
    "StateFormatError",
    "StateIOError",
    "StateLockedError",
    "translate_rocksdb_error",
]


class StateError(Exception):
    """Base class of every error raised by ``millstream.state``."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"state store {path}: {cause}")
        self.path = path
        self.cause = cause


class StateClosedError(StateError):
    """An operation was attempted on a closed backend or snapshot."""


class StateCorruptedError(StateError):
    """Stored data failed a checksum or could not be parsed (files damaged or truncated)."""


class StateFormatError(StateError):
    """The store has no millstream format record, or one with an unsupported version."""

    def __init__(
        self, path: str, cause: str, *, found: int | None = None, supported: tuple[int, ...] = ()
    ) -> None:
        super().__init__(path, cause)
        self.found = found
        self.supported = supported


class StateIOError(StateError):
    """The operating system refused an operation; ``errno`` is set when the cause names one."""

    def __init__(self, path: str, cause: str, *, errno: int | None = None) -> None:
        super().__init__(path, cause)
        self.errno = errno


class StateLockedError(StateIOError):
    """The store's LOCK file is held: another process (or another open here) uses the store."""


# strerror text -> errno, longest first so that "No such file or directory" wins over shorter
# messages that happen to be contained in it.
_STRERRORS: list[tuple[str, int]] = sorted(
    ((os.strerror(code), code) for code in _errno.errorcode),
    key=lambda item: -len(item[0]),
)


def _errno_from_message(message: str) -> int | None:
    for text, code in _STRERRORS:
        if text and text in message:
            return code
    return None


def translate_rocksdb_error(exc: BaseException, path: str) -> StateError:
    """Map an exception raised by rocksdict onto the typed hierarchy (returned, not raised)."""
    if isinstance(exc, StateError):
        return exc
    if type(exc).__name__ == "DbClosedError":
        return StateClosedError(path, "the store is closed")
    message = str(exc)
    if message.startswith("Corruption"):
        return StateCorruptedError(path, message)
    if message.startswith("IO error") or isinstance(exc, OSError):
        code = exc.errno if isinstance(exc, OSError) else _errno_from_message(message)
        if "LOCK" in message:
            return StateLockedError(path, message, errno=code)
        return StateIOError(path, message, errno=code)
    if "does not exist (create_if_missing is false)" in message:
        return StateIOError(path, message, errno=_errno.ENOENT)
    return StateError(path, message or type(exc).__name__)
