"""One filesystem interface for every file connector: a path's scheme picks local files or ``gs://`` objects.

`FileSystem` is the Protocol each scheme implements (match, info, open, create, delete, rename);
`filesystem_for(path)` returns the implementation for a path, so Beam's ``FileSystems`` and every source and
sink dispatch the same way. Local paths and ``file://`` URLs are `LocalFileSystem`; ``gs://`` is
`millstream.connectors.files.gcs.GcsFileSystem` (loaded on first use, so local jobs never import the GCS
client). Example::

    >>> filesystem_for("/tmp/in.txt").scheme
    'file'
"""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

__all__ = [
    "FileInfo",
    "FileSystem",
    "IncrementalLister",
    "LocalFileSystem",
    "filesystem_for",
    "is_remote",
    "register_scheme",
    "scheme_of",
    "supported_schemes",
]


@dataclass(frozen=True)
class FileInfo:
    """A matched file or object: its path, size, modification time and (object stores) generation."""

    path: str
    size: int
    mtime_ns: int
    #: The object's generation on an object store (changes on every overwrite); None for local files.
    generation: int | None = None


@runtime_checkable
class FileSystem(Protocol):
    """What a scheme provides; every path argument is a full path of this scheme."""

    scheme: str

    def match(self, pattern: str) -> list[FileInfo]:
        """The files a path, folder or glob names now, sorted by path (empty when none)."""
        ...

    def info(self, path: str) -> FileInfo | None:
        """One file's metadata, or None when it does not exist."""
        ...

    def missing_reason(self, pattern: str) -> str:
        """Why `pattern` matches nothing, for an error message (e.g. ``the bucket b does not exist``)."""
        ...

    def check_watchable(self, pattern: str) -> None:
        """Raise `FileInputError` unless `pattern` can be watched for new files."""
        ...

    def open_read(self, path: str, generation: int | None = None) -> IO[bytes]:
        """A seekable binary reader; with `generation`, reading fails clearly once that version is gone."""
        ...

    def create(self, path: str) -> IO[bytes]:
        """A binary writer; the file appears complete when the writer is closed."""
        ...

    def delete(self, paths: list[str]) -> None:
        """Delete files; missing ones are ignored."""
        ...

    def rename(self, sources: list[str], destinations: list[str]) -> None:
        """Move each source to its destination."""
        ...


@runtime_checkable
class IncrementalLister(Protocol):
    """A filesystem that lists in name order and can start a listing at a name (object stores).

    Watching a large prefix asks only for what sorts at or after the last name it has seen instead of listing
    everything every poll (`millstream.connectors.files.watch`).
    """

    def match_from(self, pattern: str, start: str) -> list[FileInfo]:
        """What `match(pattern)` gives, restricted to paths that sort at or after the full path `start`."""
        ...


class LocalFileSystem:
    """Local files (and ``file://`` URLs) through the operating system."""

    scheme = "file"

    @staticmethod
    def _path(path: str) -> str:
        return path[len("file://") :] if path.startswith("file://") else path

    def match(self, pattern: str) -> list[FileInfo]:
        from millstream.connectors.files.filesystem import match_files

        out = []
        for path in match_files(pattern):
            info = self.info(path)
            if info is not None:
                out.append(info)
        return out

    def info(self, path: str) -> FileInfo | None:
        try:
            st = os.stat(self._path(path))
        except FileNotFoundError:
            return None
        return FileInfo(path, st.st_size, st.st_mtime_ns)

    def missing_reason(self, pattern: str) -> str:
        path = self._path(pattern)
        if any(c in path for c in "*?["):
            return "the glob matches no files"
        if not os.path.exists(path):
            return "no such file or directory"
        return "the directory has no files" if os.path.isdir(path) else "not a regular file"

    def check_watchable(self, pattern: str) -> None:
        from millstream.connectors.files.filesystem import check_watchable

        check_watchable(pattern)

    def open_read(self, path: str, generation: int | None = None) -> IO[bytes]:
        return open(self._path(path), "rb")  # noqa: SIM115 - the caller owns the handle

    def create(self, path: str) -> IO[bytes]:
        target = self._path(path)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        return open(target, "wb")  # noqa: SIM115 - the caller owns the handle

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            for target in (
                _glob.glob(self._path(path)) if any(c in path for c in "*?[") else [self._path(path)]
            ):
                try:
                    os.remove(target)
                except FileNotFoundError:
                    pass

    def rename(self, sources: list[str], destinations: list[str]) -> None:
        for src, dst in zip(sources, destinations, strict=True):
            os.replace(self._path(src), self._path(dst))


_FACTORIES: dict[str, Callable[[], FileSystem]] = {}
_INSTANCES: dict[str, FileSystem] = {}
_LOCAL = LocalFileSystem()


def _gcs() -> FileSystem:
    from millstream.connectors.files.gcs import GcsFileSystem

    return GcsFileSystem()


def register_scheme(scheme: str, factory: Callable[[], FileSystem]) -> None:
    """Make ``scheme://`` paths use the filesystem `factory` builds (once, on first use)."""
    _FACTORIES[scheme] = factory
    _INSTANCES.pop(scheme, None)


register_scheme("gs", _gcs)


def scheme_of(path: str) -> str:
    """A path's scheme: ``file`` for local paths and ``file://`` URLs, else the part before ``://``."""
    if "://" not in path:
        return "file"
    return path.split("://", 1)[0].lower()


def supported_schemes() -> list[str]:
    """What paths may be, for error messages."""
    return ["local paths", "file://", *(f"{s}://" for s in sorted(_FACTORIES))]


def is_remote(path: str) -> bool:
    """Whether `path` names an object of a registered non-local scheme."""
    return scheme_of(path) in _FACTORIES


def filesystem_for(path: str) -> FileSystem:
    """The filesystem of `path`'s scheme; an unknown scheme fails listing the supported ones."""
    scheme = scheme_of(path)
    if scheme == "file":
        return _LOCAL
    fs = _INSTANCES.get(scheme)
    if fs is None:
        factory = _FACTORIES.get(scheme)
        if factory is None:
            from millstream.connectors.files.filesystem import FileInputError

            raise FileInputError(
                f"{path}: the {scheme}:// scheme is not supported; supported: {', '.join(supported_schemes())}"
            )
        fs = _INSTANCES[scheme] = factory()
    return fs
