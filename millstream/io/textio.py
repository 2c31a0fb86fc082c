"""Text and JSON-lines files with Beam's names: ReadFromText, WriteToText, ReadFromJson, WriteToJson."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.connectors.files import (
    FileSink,
    LineFileSource,
    decode_json,
    decode_text,
    encode_json,
    encode_text,
)
from millstream.engine.model.io import Read, Write
from millstream.engine.model.ptransform import PTransform


class ReadFromText(PTransform):
    """Lines of local text files (a path, directory or glob) as strings."""

    def __init__(self, file_pattern: str, skip_header_lines: int = 0, timestamp_fn: Callable[[Any], Any] | None = None,
                 max_out_of_orderness: float = 0.0, with_dead_letters: bool = False, **kwargs: Any) -> None:
        super().__init__(f"ReadFromText({file_pattern})")
        self._read = Read(LineFileSource(file_pattern, decode_text, skip_header_lines, "Text"), timestamp_fn,
                          max_out_of_orderness)
        if with_dead_letters:
            self._read = self._read.with_dead_letters()

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class ReadFromJson(PTransform):
    """JSON-lines files; each line decoded with orjson. Bad lines fail the run, or go to a second output with
    `with_dead_letters=True` (returns (good, bad))."""

    def __init__(self, path: str, timestamp_fn: Callable[[Any], Any] | None = None,
                 max_out_of_orderness: float = 0.0, with_dead_letters: bool = False, lines: bool = True,
                 **kwargs: Any) -> None:
        if not lines:
            raise ValueError("ReadFromJson reads JSON lines only (lines=True)")
        super().__init__(f"ReadFromJson({path})")
        self._read = Read(LineFileSource(path, decode_json, 0, "Json"), timestamp_fn, max_out_of_orderness)
        if with_dead_letters:
            self._read = self._read.with_dead_letters()

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class WriteToText(PTransform):
    """Text files, exactly once: each checkpoint's output is committed as one file."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str = "", header: str | None = None,
                 footer: str | None = None, **kwargs: Any) -> None:
        super().__init__(f"WriteToText({file_path_prefix})")
        self._write = Write(FileSink(file_path_prefix, file_name_suffix, encode_text, header, footer, "Text"))

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Write" >> self._write


class WriteToJson(PTransform):
    """JSON-lines files, exactly once."""

    def __init__(self, path: str, file_name_suffix: str = ".json", **kwargs: Any) -> None:
        super().__init__(f"WriteToJson({path})")
        self._write = Write(FileSink(path, file_name_suffix, encode_json, name="Json"))

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Write" >> self._write
