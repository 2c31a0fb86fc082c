"""File matching as sources (Beam's ``fileio.MatchFiles`` / ``MatchContinuously``): elements are `FileMetadata`.

`MatchSource` lists a pattern once (bounded) or polls it every `interval` seconds (unbounded). Its position is
the set of files already emitted, ``{path: modification time in ns}`` (for ``gs://`` objects their
generation), so a restored job emits each file once
(again after a change with ``match_updated_files``). Reading a matched file (`ReadableFile`) happens downstream,
inside the checkpoint's consistent cut like any other step.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import IO, Any

import anyio

from millstream.connectors.files.filesystem import (
    CompressionTypes,
    FileInputError,
    check_watchable,
    expand_pattern,
    file_infos,
    has_glob,
    local_path,
    match_files,
    open_input,
)
from millstream.engine.model.io import Source, SourceBatch, SourceReader

EMPTY_MATCH = ("ALLOW", "DISALLOW", "ALLOW_IF_WILDCARD")


@dataclass(frozen=True)
class FileMetadata:
    """A matched file (Beam's ``FileMetadata``)."""

    path: str
    size_in_bytes: int
    last_updated_in_seconds: float = 0.0


class ReadableFile:
    """A matched file that can be opened or read whole (Beam's ``fileio.ReadableFile``)."""

    def __init__(self, metadata: FileMetadata, compression: str | None = None) -> None:
        self.metadata = metadata
        self._compression = compression

    def open(self, mime_type: str = "text/plain", compression_type: str | None = None) -> Any:
        """The file as a binary stream, decompressed by extension unless `compression_type` says otherwise."""
        compression = CompressionTypes.resolve(compression_type or self._compression, self.metadata.path)
        fh, raw = open_input(self.metadata.path, compression)
        if fh is raw:
            return fh
        return _Closing(fh, raw)

    def read(self, mime_type: str = "application/octet-stream") -> bytes:
        """The whole (decompressed) content."""
        with self.open(mime_type) as f:
            return f.read()

    def read_utf8(self) -> str:
        """The whole content as text."""
        return self.read().decode("utf-8")

    def __repr__(self) -> str:
        return f"ReadableFile({self.metadata.path!r})"


class _Closing:
    """A decompressing stream that also closes the raw file under it."""

    def __init__(self, fh: Any, raw: IO[bytes]) -> None:
        self.fh = fh
        self.raw = raw

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)

    def readline(self, limit: int = -1) -> bytes:
        return self.fh.readline(limit)

    def __iter__(self) -> Any:
        return iter(self.fh)

    def close(self) -> None:
        self.fh.close()
        self.raw.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _metadata(path: str) -> tuple[FileMetadata, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileMetadata(path, st.st_size, st.st_mtime_ns / 1e9), st.st_mtime_ns


class MatchReader(SourceReader):
    """Emits the metadata of matched files once each (per modification with `match_updated`)."""

    def __init__(self, source: MatchSource) -> None:
        self.source = source
        self.emitted: dict[str, int] = {}
        self.next_poll = 0.0
        self.done = False

    async def open(self, positions: dict[str, Any] | None) -> None:
        self.emitted = {k: int(v) for k, v in (positions or {}).items()}

    def positions(self) -> dict[str, Any]:
        return dict(self.emitted)

    async def read(self) -> SourceBatch | None:
        src = self.source
        if self.done:
            return None
        if src.is_bounded:
            self.done = True
            return SourceBatch(src.pattern, await self._match(), finished=True)
        now = time.monotonic()
        if now < self.next_poll:  # wait at most a second per call, so checkpoints and drain are not held up
            await anyio.sleep(min(self.next_poll - now, 1.0))
            if time.monotonic() < self.next_poll:
                return SourceBatch(src.pattern, [])
        self.next_poll = time.monotonic() + src.interval
        return SourceBatch(src.pattern, await self._match())

    async def _match(self) -> list[Any]:
        pattern = self.source.pattern
        found = [
            (
                FileMetadata(i.path, i.size, i.mtime_ns / 1e9),
                i.mtime_ns if i.generation is None else i.generation,
            )
            for i in await anyio.to_thread.run_sync(file_infos, pattern)
        ]
        out = []
        for meta, mtime in found:
            seen = self.emitted.get(meta.path)
            if seen is None or (self.source.match_updated_files and seen != mtime):
                self.emitted[meta.path] = mtime
                out.append(meta)
        return out


class MatchSource(Source):
    """The files a pattern matches, once (bounded) or polled every `interval` seconds (unbounded)."""

    def __init__(
        self,
        pattern: str,
        continuous: bool = False,
        interval: float = 360.0,
        match_updated_files: bool = False,
        empty_match_treatment: str = "ALLOW_IF_WILDCARD",
    ) -> None:
        local_path(pattern)
        if empty_match_treatment not in EMPTY_MATCH:
            raise ValueError(
                f"empty_match_treatment must be one of {', '.join(EMPTY_MATCH)}, "
                f"got {empty_match_treatment!r}"
            )
        if continuous and interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.pattern = pattern
        self.is_bounded = not continuous
        self.interval = interval
        self.match_updated_files = match_updated_files
        self.empty_match_treatment = empty_match_treatment

    def validate(self) -> None:
        if not self.is_bounded:
            check_watchable(self.pattern)
            return
        treatment = self.empty_match_treatment
        if treatment == "DISALLOW" or (
            treatment == "ALLOW_IF_WILDCARD" and not has_glob(local_path(self.pattern))
        ):
            expand_pattern(self.pattern)
        elif "://" in local_path(self.pattern):
            check_watchable(self.pattern)  # an object prefix needs only its bucket
        elif not match_files(self.pattern) and not has_glob(local_path(self.pattern)):
            root = os.path.dirname(local_path(self.pattern)) or "."
            if not os.path.isdir(root):
                raise FileInputError(f"{self.pattern}: the folder {root} does not exist")

    def create_reader(self, options: Any) -> SourceReader:
        return MatchReader(self)

    def display_name(self) -> str:
        return f"{'MatchContinuously' if not self.is_bounded else 'MatchFiles'}({self.pattern})"


__all__ = ["FileMetadata", "MatchReader", "MatchSource", "ReadableFile"]
