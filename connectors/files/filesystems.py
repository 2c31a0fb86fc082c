"""Beam's `FileSystems`: match, open, create, delete, rename, ... on the schemes millstream's file connectors
support (local paths, ``file://`` and ``gs://``, the latter through `schemes.filesystem_for`, the same
`FileSystem` objects the sources and sinks use); any other scheme fails naming the path and what is
supported. On object stores folders do not exist: `mkdirs` does nothing and a path names one object."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import IO, Any

from millstream.connectors.files.filesystem import (
    SUPPORTED_SCHEMES,
    CompressionTypes,
    local_path,
    match_files,
    open_input,
    open_output,
)
from millstream.connectors.files.schemes import FileSystem, filesystem_for, is_remote, scheme_of


class BeamIOError(IOError):
    """An operation failed on some paths: `exception_details` maps each path to its error."""

    def __init__(self, msg: str, exception_details: dict[str, Exception] | None = None) -> None:
        super().__init__(msg)
        self.exception_details = exception_details or {}


@dataclass(frozen=True)
class FileMetadata:
    """A matched file: its path, size and modification time."""

    path: str
    size_in_bytes: int
    last_updated_in_seconds: float = 0.0


@dataclass
class MatchResult:
    """The files one pattern matched."""

    pattern: str
    metadata_list: list[FileMetadata] = field(default_factory=list)


def _local(path: str) -> str:
    try:
        return local_path(path)
    except ValueError as e:
        raise ValueError(f"FileSystems: {e} (supported: {', '.join(SUPPORTED_SCHEMES)})") from None


def _remote(path: str) -> FileSystem | None:
    """The object store filesystem of `path`, None for a local path (an unknown scheme fails naming it)."""
    _local(path)
    return filesystem_for(path) if is_remote(path) else None


def _metadata(path: str) -> FileMetadata:
    st = os.stat(path)
    return FileMetadata(path, st.st_size, st.st_mtime)


def _match_one(pattern: str, limit: int | None) -> MatchResult:
    fs = _remote(pattern)
    if fs is not None:
        return MatchResult(
            pattern, [FileMetadata(i.path, i.size, i.mtime_ns / 1e9) for i in fs.match(pattern)[:limit]]
        )
    return MatchResult(pattern, [_metadata(p) for p in match_files(pattern)[:limit]])


class _Stream:
    """A (de)compressing stream that also closes the file beneath it (Beam's readers and writers do)."""

    def __init__(self, stream: Any, raw: IO[bytes]) -> None:
        self._stream = stream
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Any:
        return iter(self._stream)

    def close(self) -> None:
        """Finish the stream, then close the file."""
        try:
            if self._stream is not self._raw:
                self._stream.close()
        finally:
            self._raw.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FileSystems:
    """File operations by path, as Beam's `apache_beam.io.filesystems.FileSystems`."""

    @staticmethod
    def set_options(pipeline_options: Any) -> None:
        """Accepted for Beam compatibility: local file systems need no options."""

    @staticmethod
    def get_scheme(path: str) -> str | None:
        """The scheme of `path` (`file` for file:// URLs), None for a plain local path."""
        return path.split("://", 1)[0] if "://" in path else None

    @staticmethod
    def join(base_path: str, *paths: str) -> str:
        """`base_path` joined with `paths` (with ``/`` on object stores)."""
        if "://" in base_path and not base_path.startswith("file://"):
            return "/".join([base_path.rstrip("/"), *(p.strip("/") for p in paths)])
        return os.path.join(base_path, *paths)

    @staticmethod
    def split(path: str) -> tuple[str, str]:
        """(directory, last component) of `path`."""
        if "://" in path and not path.startswith("file://"):
            head, _, tail = path.rstrip("/").rpartition("/")
            return head, tail
        return os.path.split(path)

    @staticmethod
    def mkdirs(path: str) -> None:
        """Create directory `path` and its parents; fails if it exists (object stores have no folders)."""
        if _remote(path) is None:
            os.makedirs(_local(path))

    @staticmethod
    def match(patterns: list[str], limits: list[int] | None = None) -> list[MatchResult]:
        """One MatchResult per pattern (a glob, a file or a directory); a pattern matching nothing gives none."""
        if isinstance(patterns, str):
            raise TypeError(f"FileSystems.match takes a list of patterns, got the string {patterns!r}")
        limits = limits or [None] * len(patterns)  # type: ignore[list-item]
        return [_match_one(p, n) for p, n in zip(patterns, limits)]

    @staticmethod
    def exists(path: str) -> bool:
        """Whether `path` exists."""
        fs = _remote(path)
        if fs is not None:
            return fs.info(path) is not None
        return os.path.exists(_local(path))

    @staticmethod
    def create(
        path: str, mime_type: str = "application/octet-stream", compression_type: str = CompressionTypes.AUTO
    ) -> IO[bytes]:
        """A binary writer for a new file `path` (parents created), compressed as its extension says by default."""
        local = _local(path)
        compression = CompressionTypes.resolve(compression_type, local)
        fs = _remote(path)
        if fs is not None:  # the object appears whole when the writer is closed
            raw = fs.create(path)
            return _Stream(open_output(raw, compression, local.rpartition("/")[2]), raw)  # type: ignore[return-value]
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        raw = open(local, "wb")
        return _Stream(open_output(raw, compression, os.path.basename(local)), raw)  # type: ignore[return-value]

    @staticmethod
    def open(
        path: str, mime_type: str = "application/octet-stream", compression_type: str = CompressionTypes.AUTO
    ) -> Any:
        """A binary reader of `path`, decompressed as its extension says by default."""
        local = _local(path)
        fs = _remote(path)
        if (fs is not None and fs.info(path) is None) or (fs is None and not os.path.isfile(local)):
            raise BeamIOError(f"FileSystems.open: no such file {path!r}", {path: FileNotFoundError(path)})
        reader, raw = open_input(local, CompressionTypes.resolve(compression_type, local))
        return _Stream(reader, raw)

    @staticmethod
    def copy(source_file_names: list[str], destination_file_names: list[str]) -> None:
        """Copy each source to its destination."""
        FileSystems._pairwise("copy", source_file_names, destination_file_names, _copy)

    @staticmethod
    def rename(source_file_names: list[str], destination_file_names: list[str]) -> None:
        """Rename each source to its destination."""
        FileSystems._pairwise("rename", source_file_names, destination_file_names, _rename)

    @staticmethod
    def delete(paths: list[str]) -> None:
        """Delete files and directories (recursively); a missing path is an error, as in Beam."""
        errors: dict[str, Exception] = {}
        for path in paths:
            local = _local(path)
            fs = _remote(path)
            try:
                if fs is not None:
                    if fs.info(path) is None:
                        raise FileNotFoundError(f"{path}: no such object")
                    fs.delete([path])
                else:
                    shutil.rmtree(local) if os.path.isdir(local) else os.remove(local)
            except OSError as e:
                errors[path] = e
        if errors:
            raise BeamIOError(f"Delete operation failed for {sorted(errors)}", errors)

    @staticmethod
    def _pairwise(what: str, sources: list[str], destinations: list[str], op: Any) -> None:
        if len(sources) != len(destinations):
            raise BeamIOError(f"{what}: {len(sources)} sources but {len(destinations)} destinations")
        errors: dict[str, Exception] = {}
        for src, dst in zip(sources, destinations):
            try:
                op(_local(src), _local(dst))
            except (OSError, ValueError) as e:
                errors[src] = e
        if errors:
            raise BeamIOError(f"{what} operation failed for {sorted(errors)}", errors)


def _copy(src: str, dst: str) -> None:
    """Copy one file or object to another, across schemes too."""
    if not (is_remote(src) or is_remote(dst)):
        shutil.copyfile(src, dst)
        return
    if filesystem_for(src).info(src) is None:
        raise FileNotFoundError(f"{src}: no such file or object")
    with filesystem_for(src).open_read(src) as reader, filesystem_for(dst).create(dst) as writer:
        shutil.copyfileobj(reader, writer)


def _rename(src: str, dst: str) -> None:
    """Move one file or object (an object store copies, then deletes)."""
    if not (is_remote(src) or is_remote(dst)):
        os.replace(src, dst)
    elif scheme_of(src) == scheme_of(dst):
        if filesystem_for(src).info(src) is None:
            raise FileNotFoundError(f"{src}: no such object")
        filesystem_for(src).rename([src], [dst])
    else:
        _copy(src, dst)
        filesystem_for(src).delete([src])


__all__ = ["BeamIOError", "FileMetadata", "FileSystems", "MatchResult"]
