"""Beam's ``apache_beam.io.fileio``: match files once or continuously, then read the matches.

    files = p | fileio.MatchContinuously("/data/in/*.json", interval=10) | fileio.ReadMatches()
    records = files | beam.FlatMap(lambda f: f.read_utf8().splitlines())

`MatchFiles` is bounded, `MatchContinuously` unbounded (a streaming source polling every ``interval``
seconds; its checkpointed position is the set of files already emitted, so a restarted job emits each file
once). Elements are `FileMetadata`; `ReadMatches` turns them into `ReadableFile`s. To read the lines of new
files with line-level positions and dead letters, ``ReadFromText(pattern, watch=True)`` is usually better.
Differences from Beam: ``start_timestamp``/``stop_timestamp``/``apply_windowing`` of MatchContinuously are
not supported (matches carry no event time).
"""

from __future__ import annotations

from typing import Any

from millstream.connectors.files.matching import FileMetadata, MatchSource, ReadableFile
from millstream.engine.model.core import Map
from millstream.engine.model.io import Read
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.value_providers import resolve_value

__all__ = ["FileMetadata", "MatchContinuously", "MatchFiles", "ReadMatches", "ReadableFile"]


class MatchFiles(PTransform):
    """The files a path, directory or glob matches now, as `FileMetadata` (bounded).

    ``empty_match_treatment``: ``ALLOW_IF_WILDCARD`` (default: an empty glob is fine, a missing file is not),
    ``ALLOW`` or ``DISALLOW``.
    """

    def __init__(self, file_pattern: str, empty_match_treatment: str = "ALLOW_IF_WILDCARD") -> None:
        file_pattern = resolve_value(file_pattern, "MatchFiles(file_pattern)")
        super().__init__(f"MatchFiles({file_pattern})")
        self._read = Read(MatchSource(file_pattern, empty_match_treatment=empty_match_treatment))

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class MatchContinuously(PTransform):
    """New files matching a pattern, polled every ``interval`` seconds, as `FileMetadata` (unbounded); with
    ``match_updated_files`` a file is emitted again after each change of its modification time."""

    def __init__(
        self,
        file_pattern: str,
        interval: float = 360.0,
        has_deduplication: bool = True,
        start_timestamp: Any = None,
        stop_timestamp: Any = None,
        match_updated_files: bool = False,
        apply_windowing: bool = False,
        empty_match_treatment: str = "ALLOW",
    ) -> None:
        file_pattern = resolve_value(file_pattern, "MatchContinuously(file_pattern)")
        if not has_deduplication:
            raise ValueError("MatchContinuously: has_deduplication=False is not supported")
        if start_timestamp is not None or stop_timestamp is not None or apply_windowing:
            raise ValueError(
                "MatchContinuously: start_timestamp, stop_timestamp and apply_windowing are not supported"
            )
        super().__init__(f"MatchContinuously({file_pattern})")
        self._read = Read(
            MatchSource(file_pattern, True, interval, match_updated_files, empty_match_treatment)
        )

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class ReadMatches(PTransform):
    """`FileMetadata` -> `ReadableFile` (``compression`` overrides detection by extension)."""

    def __init__(self, compression: str | None = None, skip_directories: bool = True) -> None:
        super().__init__("ReadMatches")
        self.compression = compression

    def expand(self, pcoll: Any) -> Any:
        compression = self.compression
        return pcoll | "ToReadable" >> Map(lambda m: ReadableFile(m, compression))
