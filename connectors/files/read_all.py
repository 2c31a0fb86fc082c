"""Beam's ``textio.ReadAllFromText``: the lines of the files that each input element (a path or glob) names.

Each element is matched when it arrives and its files are read whole, line by line, by a DoFn, so the lines
keep the element's timestamp and window (Beam reads the slowly changing side-input files of its
``PeriodicImpulse`` pattern this way). Progress inside a file is not checkpointed: an element is read again in
full after a restore (its output is exactly-once only through the checkpoint that covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from millstream.connectors.files.filesystem import (
    CompressionTypes,
    FileInputError,
    has_glob,
    match_files,
    open_input,
)
from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.ptransform import PTransform


class _ReadAllLines(DoFn):
    """pattern -> every line of every file it matches (or (file, line) pairs)."""

    def __init__(
        self,
        compression_type: str,
        strip_trailing_newlines: bool,
        skip_header_lines: int,
        with_filename: bool,
        decode: Any,
    ) -> None:
        self.compression_type = compression_type
        self.strip = strip_trailing_newlines
        self.skip = skip_header_lines
        self.with_filename = with_filename
        self.decode = decode

    def process(self, pattern: Any) -> Iterator[Any]:
        """The lines of the files `pattern` matches now; a missing file (not a glob) is an error, as in Beam."""
        if not isinstance(pattern, str):
            raise TypeError(
                f"ReadAllFromText: elements must be file paths or globs, got {type(pattern).__name__}"
            )
        files = match_files(pattern)
        if not files and not has_glob(pattern):
            raise FileInputError(f"ReadAllFromText: {pattern}: no such file")
        for path in files:
            reader, raw = open_input(path, CompressionTypes.resolve(self.compression_type, path))
            try:
                for i, line in enumerate(reader):
                    if i < self.skip:
                        continue
                    if self.strip:
                        line = line.rstrip(b"\n").rstrip(b"\r")
                    text = self.decode(line)
                    yield (path, text) if self.with_filename else text
            finally:
                reader.close()
                raw.close()


class ReadAllFromText(PTransform):
    """A PCollection of file patterns -> the lines of the matching files (Beam's ``ReadAllFromText``)."""

    def __init__(
        self,
        min_bundle_size: int = 0,
        desired_bundle_size: int = 64 * 1024 * 1024,
        compression_type: str = CompressionTypes.AUTO,
        strip_trailing_newlines: bool = True,
        validate: bool = False,
        coder: Any = None,
        skip_header_lines: int = 0,
        with_filename: bool = False,
        delimiter: bytes | None = None,
        escapechar: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        if delimiter is not None or escapechar is not None:
            raise ValueError(
                "ReadAllFromText: custom delimiter and escapechar are not supported (lines end at \\n)"
            )
        super().__init__()
        decode = coder.decode if coder is not None else (lambda b: b.decode("utf-8"))
        self._fn = _ReadAllLines(
            CompressionTypes.normalize(compression_type),
            strip_trailing_newlines,
            skip_header_lines,
            with_filename,
            decode,
        )

    def expand(self, pcoll: Any) -> Any:
        """The lines, each with the timestamp and window of the pattern it came from."""
        return pcoll | "ReadAllFiles" >> ParDo(self._fn)


__all__ = ["ReadAllFromText"]
