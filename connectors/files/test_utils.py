"""File helpers Beam's tests use (`apache_beam.testing.test_utils`, `testing.util.open_shards`)."""

from __future__ import annotations

import glob
import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from millstream.connectors.files.filesystems import FileSystems

DEFAULT_HASHING_ALG = "sha1"


class TempDir:
    """A temporary directory, removed with its contents when the `with` block ends."""

    def __init__(self) -> None:
        self._tempdir = tempfile.mkdtemp()

    def __enter__(self) -> TempDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self._tempdir, ignore_errors=True)

    def get_path(self) -> str:
        """The directory's path."""
        return self._tempdir

    def create_temp_file(self, suffix: str = "", lines: Iterable[bytes] | None = None) -> str:
        """A new file in the directory holding `lines` (bytes, written as given); returns its name."""
        with tempfile.NamedTemporaryFile(delete=False, dir=self._tempdir, suffix=suffix) as f:
            for line in lines or ():
                f.write(line)
            return f.name


def compute_hash(content: Iterable[Any], hashing_alg: str = DEFAULT_HASHING_ALG) -> str:
    """A hash of the elements' string forms, independent of their order."""
    encoded = sorted(x if isinstance(x, bytes) else str(x).encode("utf-8") for x in content)
    digest = hashlib.new(hashing_alg)
    for elem in encoded:
        digest.update(elem)
    return digest.hexdigest()


def create_file(path: str, contents: str) -> str:
    """Write `contents` (UTF-8) to a new file `path`; returns `path`."""
    with FileSystems.create(path) as f:
        f.write(contents.encode("utf-8"))
    return path


def read_files_from_pattern(file_pattern: str) -> str:
    """The stripped contents of every file `file_pattern` matches, joined by newlines."""
    output = []
    for metadata in FileSystems.match([file_pattern])[0].metadata_list:
        with FileSystems.open(metadata.path) as f:
            output.append(f.read().decode("utf-8").strip())
    return "\n".join(output)


def delete_files(file_paths: list[str]) -> None:
    """Delete every file in `file_paths` (globs allowed)."""
    if not file_paths:
        raise RuntimeError("delete_files: no file paths given")
    matched = [m.path for r in FileSystems.match(file_paths) for m in r.metadata_list]
    FileSystems.delete(matched)


def open_shards(glob_pattern: str, mode: str = "rt", encoding: str = "utf-8") -> IO[Any]:
    """One stream with the contents of every file `glob_pattern` matches, concatenated."""
    data = b"".join(_read_bytes(p) for p in sorted(glob.glob(glob_pattern)))
    if "b" in mode:
        return io.BytesIO(data)
    return io.StringIO(data.decode(encoding))


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


__all__ = ["TempDir", "compute_hash", "create_file", "delete_files", "open_shards", "read_files_from_pattern"]
