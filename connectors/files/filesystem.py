"""Local file names, globs and compression: what every file connector needs before it reads or writes.

Paths are local paths, ``file://`` URLs or ``gs://`` objects (dispatched through `schemes.filesystem_for`, so
every connector gets Cloud Storage the same way); any other scheme fails at construction with one line saying
what is supported. A glob that matches nothing, a missing path and an empty directory fail the same way, before any
data is read. Compression is Beam's: ``auto`` (by extension), ``gzip``, ``bz2``, ``zip`` (a single-member
archive), ``xz`` and ``uncompressed``.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
import zipfile
from typing import IO, Any

SUPPORTED_SCHEMES = ("local paths", "file://", "gs://")


class FileInputError(ValueError):
    """An input path or glob that cannot be read: names the pattern and why."""


class CompressionTypes:
    """Beam's compression names (``apache_beam.io.filesystem.CompressionTypes``)."""

    AUTO = "auto"
    GZIP = "gzip"
    BZIP2 = "bz2"
    ZIP = "zip"
    XZ = "xz"
    LZMA = "xz"
    UNCOMPRESSED = "uncompressed"

    #: Every accepted value (``lzma`` and ``bzip2`` are aliases).
    ALL = ("auto", "gzip", "bz2", "bzip2", "zip", "xz", "lzma", "uncompressed")

    _BY_EXTENSION = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".lzma": "xz"}

    @classmethod
    def normalize(cls, compression_type: str | None) -> str:
        """The canonical name of `compression_type`; fails with the accepted names."""
        name = (compression_type or "auto").lower()
        if name not in cls.ALL:
            raise ValueError(
                f"compression_type={compression_type!r} is not supported; use one of {', '.join(cls.ALL[:-2])}, "
                "uncompressed"
            )
        return {"bzip2": "bz2", "lzma": "xz"}.get(name, name)

    @classmethod
    def detect(cls, path: str) -> str:
        """The compression a file's extension implies (``uncompressed`` when none does)."""
        return cls._BY_EXTENSION.get(os.path.splitext(path)[1].lower(), cls.UNCOMPRESSED)

    @classmethod
    def resolve(cls, compression_type: str | None, path: str) -> str:
        """The compression to use for `path`: the given one, or the extension's with ``auto``."""
        name = cls.normalize(compression_type)
        return cls.detect(path) if name == cls.AUTO else name


def local_path(pattern: str) -> str:
    """The local path of `pattern`; other URL schemes fail with a message listing what is supported."""
    if pattern.startswith("file://"):
        return pattern[len("file://") :]
    if "://" in pattern:
        from millstream.connectors.files.schemes import is_remote

        if is_remote(pattern):
            return pattern  # an object path, used as it is by its filesystem
        scheme = pattern.split("://", 1)[0]
        raise FileInputError(
            f"{pattern}: the {scheme}:// scheme is not supported; supported: {', '.join(SUPPORTED_SCHEMES)}"
        )
    return pattern


def has_glob(path: str) -> bool:
    """Whether `path` contains glob characters."""
    return any(c in path for c in "*?[")


def match_files(pattern: str) -> list[str]:
    """The files a path, directory or glob names now, sorted; empty when there are none (no error).

    Hidden files (a leading dot) are skipped in directories, as a glob's ``*`` skips them: writers create
    files under hidden temporary names and rename them when complete.
    """
    path = local_path(pattern)
    if path is pattern and "://" in path:
        return [info.path for info in _remote(path).match(path)]
    if has_glob(path):
        return sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
    if os.path.isdir(path):
        return sorted(
            os.path.join(path, f)
            for f in os.listdir(path)
            if not f.startswith(".") and os.path.isfile(os.path.join(path, f))
        )
    return [path] if os.path.isfile(path) else []


def files_signature(pattern: str) -> list[list[Any]]:
    """(path, size, mtime) of every file a pattern names: changes when the input changes, so a completed
    batch job re-reads changed input instead of finding nothing left to read."""
    out: list[list[Any]] = []
    if "://" in local_path(pattern):
        infos = _remote(pattern).match(pattern)
        if not infos:
            expand_pattern(pattern)
        return [[i.path, i.size, i.generation] for i in infos]
    for path in expand_pattern(pattern):
        st = os.stat(path)
        out.append([path, st.st_size, st.st_mtime_ns])
    return out


def expand_pattern(pattern: str) -> list[str]:
    """The files a path or glob names, sorted; fails before reading when there are none."""
    path = local_path(pattern)
    files = match_files(pattern)
    if files:
        return files
    if "://" in path:
        raise FileInputError(f"{pattern}: {_remote(path).missing_reason(path)}")
    if has_glob(path):
        raise FileInputError(f"{pattern}: the glob matches no files")
    if not os.path.exists(path):
        raise FileInputError(f"{pattern}: no such file or directory")
    if os.path.isdir(path):
        raise FileInputError(f"{pattern}: the directory has no files")
    raise FileInputError(f"{pattern}: not a regular file")


def check_watchable(pattern: str) -> None:
    """Fail unless `pattern` can be watched for new files: a glob or directory whose folder exists."""
    path = local_path(pattern)
    if "://" in path:
        _remote(path).check_watchable(path)
        return
    if has_glob(path):
        root = path
        while has_glob(root):
            root = os.path.dirname(root)
        if root and not os.path.isdir(root):
            raise FileInputError(f"{pattern}: the folder {root} does not exist")
        return
    if not os.path.exists(path):
        raise FileInputError(f"{pattern}: no such file or directory")


def _remote(path: str) -> Any:
    from millstream.connectors.files.schemes import filesystem_for

    return filesystem_for(path)


def file_infos(pattern: str) -> list[Any]:
    """`schemes.FileInfo` (path, size, mtime, generation) of every file a pattern names now; may be empty."""
    if "://" in local_path(pattern):
        return list(_remote(pattern).match(pattern))
    from millstream.connectors.files.schemes import LocalFileSystem

    return LocalFileSystem().match(pattern)


def open_raw(path: str, generation: int | None = None) -> IO[bytes]:
    """`path` opened for binary reading, seekable; for an object, pinned to `generation` when given."""
    if "://" in local_path(path):
        return _remote(path).open_read(path, generation)  # type: ignore[no-any-return]
    return open(path, "rb")  # noqa: SIM115 - the caller owns the handle


def open_input(path: str, compression: str, generation: int | None = None) -> tuple[Any, IO[bytes]]:
    """`path` opened for binary reading through `compression` (a canonical name): (decompressed reader, raw
    file). The raw file's position tells how much of the file on disk has been consumed; close both."""
    raw = open_raw(path, generation)
    try:
        if compression == CompressionTypes.UNCOMPRESSED:
            return raw, raw
        if compression == CompressionTypes.GZIP:
            return gzip.GzipFile(fileobj=raw, mode="rb"), raw
        if compression == CompressionTypes.BZIP2:
            return bz2.BZ2File(raw, "rb"), raw
        if compression == CompressionTypes.XZ:
            return lzma.LZMAFile(raw, "rb"), raw
        if compression == CompressionTypes.ZIP:
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                archive.close()
                raise FileInputError(
                    f"{path}: a zip input must hold exactly one file, this one holds {len(members)}"
                )
            return _ZipMember(archive, archive.open(members[0])), raw
        raise ValueError(f"unknown compression {compression!r}")
    except BaseException:
        raw.close()
        raise


class _ZipMember:
    """A zip archive's only member, read as a binary file; closing it closes the archive too."""

    def __init__(self, archive: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.archive = archive
        self.member = member

    def read(self, n: int = -1) -> bytes:
        return self.member.read(n)

    def read1(self, n: int = -1) -> bytes:
        return self.member.read1(n)  # type: ignore[attr-defined]

    def readline(self, limit: int = -1) -> bytes:
        return self.member.readline(limit)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.member.seek(offset, whence)

    def tell(self) -> int:
        return self.member.tell()

    def close(self) -> None:
        self.member.close()
        self.archive.close()

    def __enter__(self) -> _ZipMember:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_output(raw: IO[bytes], compression: str, inner_name: str) -> Any:
    """A binary writer over the open file `raw` that compresses with `compression` (a canonical name).

    Closing the returned writer finishes the compressed stream but leaves `raw` open (the sink fsyncs it).
    """
    if compression == CompressionTypes.UNCOMPRESSED:
        return raw
    if compression == CompressionTypes.GZIP:
        return gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
    if compression == CompressionTypes.BZIP2:
        return bz2.BZ2File(raw, "wb")
    if compression == CompressionTypes.XZ:
        return lzma.LZMAFile(raw, "wb")
    if compression == CompressionTypes.ZIP:
        archive = zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED)
        return _ZipWriter(archive, archive.open(inner_name, "w", force_zip64=True))
    raise ValueError(f"unknown compression {compression!r}")


class _ZipWriter:
    """Writes the single member of a zip archive; closing it finishes the archive."""

    def __init__(self, archive: zipfile.ZipFile, member: IO[bytes]) -> None:
        self.archive = archive
        self.member = member

    def write(self, data: bytes) -> int:
        return self.member.write(data)

    def flush(self) -> None:
        self.member.flush()

    def close(self) -> None:
        self.member.close()
        self.archive.close()


def fsync_dir(directory: str) -> None:
    """Make renames in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "CompressionTypes",
    "FileInputError",
    "SUPPORTED_SCHEMES",
    "check_watchable",
    "expand_pattern",
    "file_infos",
    "fsync_dir",
    "has_glob",
    "local_path",
    "match_files",
    "open_input",
    "open_output",
    "open_raw",
]
