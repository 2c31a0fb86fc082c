"""Text, JSON-lines and CSV files with Beam's names and arguments (``apache_beam.io.textio``).

Every read is checkpointable (positions per split: a whole compressed file or a line-aligned byte range of a
large uncompressed one) and every write is exactly-once (files per checkpoint, renamed on commit; naming in
`millstream.connectors.files.sink`). Beyond Beam's arguments, reads take ``timestamp_fn`` (value -> event time in
seconds), ``max_out_of_orderness``/``idle_timeout`` (streaming watermark), ``with_dead_letters`` (returns
``(good, bad)``: undecodable lines as ``{"file", "line", "offset", "raw", "reason"}`` instead of failing the run)
and ``watch``/``poll_interval`` (an unbounded source that reads new files and appended lines; see
`millstream.connectors.files.watch`).

Differences from Beam: ``ReadFromCsv`` yields dicts keyed by column name (Beam yields schema'd ``beam.Row``s
with pandas-inferred types); values are strings unless ``dtype``/``converters`` convert them. A custom line
``delimiter`` and Beam's per-shard limits are not supported and fail at construction. Output is committed at
each checkpoint (``--checkpoint_interval``), which is what ``triggering_frequency`` controls in Beam.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from millstream.connectors.files.filesystem import CompressionTypes
from millstream.connectors.files.formats.csv import CsvDecoder, CsvDialect, CsvFormat, read_header
from millstream.connectors.files.sink import FileSink, encode_json
from millstream.connectors.files.source import (
    DEFAULT_SPLIT_SIZE,
    FunctionDecoder,
    JsonDecoder,
    LineDecoder,
    LineFileSource,
    TextDecoder,
)
from millstream.engine.model.io import Read, Source, Write
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.value_providers import resolve_value

__all__ = [
    "ReadFromCsv",
    "ReadFromJson",
    "ReadFromText",
    "WriteToCsv",
    "WriteToJson",
    "WriteToText",
]


class _ReadTransform(PTransform):
    """A composite around one `Read` of a file source (so the step is named like Beam's)."""

    def __init__(
        self,
        label: str,
        source: Source,
        timestamp_fn: Callable[[Any], Any] | None,
        max_out_of_orderness: float,
        idle_timeout: float | None,
        with_dead_letters: bool,
        validate: bool = True,
    ) -> None:
        super().__init__(label)
        if not validate:  # Beam's validate=False: paths are checked when the job opens the source instead
            source.validate_paths = False  # type: ignore[attr-defined]
        self._read = Read(source, timestamp_fn, max_out_of_orderness, idle_timeout)
        if with_dead_letters:
            self._read = self._read.with_dead_letters()

    def with_dead_letters(self, tag: str = "bad") -> _ReadTransform:
        """Return (good, bad) instead of failing on undecodable records."""
        self._read = self._read.with_dead_letters(tag)
        return self

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class _WriteTransform(PTransform):
    """A composite around one `Write` to a `FileSink`."""

    def __init__(self, label: str, sink: FileSink) -> None:
        super().__init__(label)
        self._write = Write(sink)

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Write" >> self._write


def _unsupported(transform: str, **given: Any) -> None:
    for name, value in given.items():
        if value is not None:
            raise ValueError(f"{transform}: {name} is not supported by millstream (got {value!r})")


def _pandas_compression(compression: Any) -> str:
    """pandas' `compression` argument (``'infer'``, None, a name) as a CompressionTypes name."""
    if compression in (None, "infer"):
        return "auto" if compression == "infer" else "uncompressed"
    return str(compression)


class ReadFromText(_ReadTransform):
    """Lines of local text files (a path, directory or glob; gzip/bz2/zip/xz by extension) as strings.

    ``desired_split_size`` (bytes) is the size of the byte-range splits of large uncompressed files.
    """

    def __init__(
        self,
        file_pattern: str | None = None,
        min_bundle_size: int = 0,
        compression_type: str = "auto",
        strip_trailing_newlines: bool = True,
        coder: Any = None,
        validate: bool = True,
        skip_header_lines: int = 0,
        delimiter: bytes | None = None,
        escapechar: bytes | None = None,
        *,
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
        with_dead_letters: bool = False,
        watch: bool = False,
        poll_interval: float = 5.0,
        desired_split_size: int = DEFAULT_SPLIT_SIZE,
    ) -> None:
        file_pattern = resolve_value(file_pattern, "ReadFromText(file_pattern)")
        if file_pattern is None:
            raise ValueError("ReadFromText needs a file_pattern")
        _unsupported("ReadFromText", delimiter=delimiter, escapechar=escapechar)
        decoder: LineDecoder = TextDecoder() if coder is None else FunctionDecoder(coder.decode)
        source = LineFileSource(
            file_pattern,
            name="Text",
            decoder_factory=lambda path, compression: decoder,
            skip_header_lines=skip_header_lines,
            compression_type=compression_type,
            strip_trailing_newlines=strip_trailing_newlines,
            split_size=max(desired_split_size, min_bundle_size),
            watch=watch,
            poll_interval=poll_interval,
        )
        super().__init__(
            f"ReadFromText({file_pattern})",
            source,
            timestamp_fn,
            max_out_of_orderness,
            idle_timeout,
            with_dead_letters,
            validate,
        )


class ReadFromJson(_ReadTransform):
    """JSON-lines files; each line decoded with orjson (blank lines skipped). Only ``lines=True`` (Beam's
    default) is supported; ``orient``/``dtype`` are pandas' and accepted with their defaults."""

    def __init__(
        self,
        path: str,
        *,
        orient: str = "records",
        lines: bool = True,
        dtype: Any = False,
        compression: Any = "infer",
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
        with_dead_letters: bool = False,
        watch: bool = False,
        poll_interval: float = 5.0,
        desired_split_size: int = DEFAULT_SPLIT_SIZE,
    ) -> None:
        path = resolve_value(path, "ReadFromJson(path)")
        if not lines:
            raise ValueError("ReadFromJson reads JSON lines only (lines=True)")
        if orient != "records":
            raise ValueError(f"ReadFromJson supports orient='records' only, got {orient!r}")
        decoder = JsonDecoder()
        source = LineFileSource(
            path,
            name="Json",
            decoder_factory=lambda p, c: decoder,
            compression_type=_pandas_compression(compression),
            split_size=desired_split_size,
            watch=watch,
            poll_interval=poll_interval,
        )
        super().__init__(
            f"ReadFromJson({path})",
            source,
            timestamp_fn,
            max_out_of_orderness,
            idle_timeout,
            with_dead_letters,
        )


class ReadFromCsv(_ReadTransform):
    """CSV files as dicts {column: value} (Beam yields Rows; see the module doc).

    ``header='infer'``/``0``: the first line after ``skiprows`` holds the column names (``names`` replaces
    them); ``header=None``: no header line, ``names`` required. Values are strings; ``dtype`` (a callable for
    every column, or {column: callable}) and ``converters`` ({column: callable}) convert them, a failure
    making the line a bad record. A line with the wrong number of fields is a bad record with its line number.
    ``filename_column`` adds the file's path to each row; ``usecols`` keeps only those columns.
    """

    def __init__(
        self,
        path: str,
        *,
        splittable: bool = True,
        filename_column: str | None = None,
        sep: str = ",",
        delimiter: str | None = None,
        header: Any = "infer",
        names: Sequence[str] | None = None,
        skiprows: int = 0,
        usecols: Sequence[str] | None = None,
        dtype: Any = None,
        converters: dict[str, Callable[[str], Any]] | None = None,
        quotechar: str = '"',
        escapechar: str | None = None,
        doublequote: bool = True,
        encoding: str = "utf-8",
        compression: Any = "infer",
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
        with_dead_letters: bool = False,
        watch: bool = False,
        poll_interval: float = 5.0,
        desired_split_size: int = DEFAULT_SPLIT_SIZE,
    ) -> None:
        path = resolve_value(path, "ReadFromCsv(path)")
        if not splittable:
            raise ValueError("ReadFromCsv: splittable=False (records spanning lines) is not supported")
        if header not in ("infer", 0, None):
            raise ValueError(f"ReadFromCsv: header must be 'infer', 0 or None, got {header!r}")
        if header is None and names is None:
            raise ValueError("ReadFromCsv: header=None needs names=[...] for the columns")
        if not isinstance(skiprows, int) or skiprows < 0:
            raise ValueError(f"ReadFromCsv: skiprows must be an int >= 0, got {skiprows!r}")
        dialect = CsvDialect(delimiter or sep, quotechar, escapechar, doublequote)
        has_header_line = header == 0 or (header == "infer" and names is None)
        fixed_names = list(names) if names is not None else None

        def decoder_factory(file: str, compression: str) -> LineDecoder:
            columns = (
                fixed_names
                if fixed_names is not None
                else read_header(file, compression, skiprows, dialect, encoding)
            )
            conv: dict[str, Callable[[str], Any]] = {}
            if callable(dtype):
                conv = {c: dtype for c in columns}
            elif isinstance(dtype, dict):
                conv = dict(dtype)
            conv.update(converters or {})
            return CsvDecoder(columns, dialect, encoding, conv or None, file, filename_column, usecols)

        source = LineFileSource(
            path,
            name="Csv",
            decoder_factory=decoder_factory,
            skip_header_lines=skiprows + (1 if has_header_line else 0),
            compression_type=_pandas_compression(compression),
            split_size=desired_split_size,
            watch=watch,
            poll_interval=poll_interval,
        )
        super().__init__(
            f"ReadFromCsv({path})",
            source,
            timestamp_fn,
            max_out_of_orderness,
            idle_timeout,
            with_dead_letters,
        )


class WriteToText(_WriteTransform):
    """Text files, exactly once: each checkpoint's output is committed as ``num_shards`` files (1 when 0),
    with ``header``/``footer`` lines in each; compressed by ``compression_type`` (``auto``: by suffix)."""

    def __init__(
        self,
        file_path_prefix: str,
        file_name_suffix: str = "",
        append_trailing_newlines: bool = True,
        num_shards: int = 0,
        shard_name_template: str | None = None,
        coder: Any = None,
        compression_type: str = "auto",
        header: str | None = None,
        footer: str | None = None,
        *,
        max_records_per_shard: int | None = None,
        max_bytes_per_shard: int | None = None,
        skip_if_empty: bool = False,
        triggering_frequency: Any = None,
    ) -> None:
        _unsupported(
            "WriteToText",
            max_records_per_shard=max_records_per_shard,
            max_bytes_per_shard=max_bytes_per_shard,
        )
        file_path_prefix = resolve_value(file_path_prefix, "WriteToText(file_path_prefix)")
        file_name_suffix = resolve_value(file_name_suffix, "WriteToText(file_name_suffix)")
        newline = b"\n" if append_trailing_newlines else b""

        if coder is not None:

            def encode(value: Any) -> bytes:
                return coder.encode(value) + newline
        else:

            def encode(value: Any) -> bytes:
                return (value if isinstance(value, str) else str(value)).encode("utf-8") + newline

        sink = FileSink(
            file_path_prefix,
            file_name_suffix,
            encode,
            header,
            footer,
            "Text",
            num_shards=num_shards,
            shard_name_template=shard_name_template,
            compression_type=compression_type,
        )
        super().__init__(f"WriteToText({file_path_prefix})", sink)


class WriteToJson(_WriteTransform):
    """JSON-lines files (orjson), exactly once. Only Beam's defaults ``orient='records'``, ``lines=True``."""

    def __init__(
        self,
        path: str,
        num_shards: int | None = None,
        file_naming: Any = None,
        *,
        orient: str = "records",
        lines: bool = True,
        file_name_suffix: str = ".json",
        shard_name_template: str | None = None,
        compression: Any = "infer",
    ) -> None:
        _unsupported("WriteToJson", file_naming=file_naming)
        path = resolve_value(path, "WriteToJson(path)")
        file_name_suffix = resolve_value(file_name_suffix, "WriteToJson(file_name_suffix)")
        if not lines or orient != "records":
            raise ValueError("WriteToJson writes JSON lines of records only (orient='records', lines=True)")
        sink = FileSink(
            path,
            file_name_suffix,
            encode_json,
            name="Json",
            num_shards=num_shards or 0,
            shard_name_template=shard_name_template,
            compression_type=_pandas_compression(compression),
        )
        super().__init__(f"WriteToJson({path})", sink)


class WriteToCsv(_WriteTransform):
    """CSV files, exactly once: records are dicts, named tuples or Rows (sequences with ``columns``); a header
    line of column names in every file (``header=False`` to omit). Columns are ``columns`` or the first
    record's fields."""

    def __init__(
        self,
        path: str,
        num_shards: int | None = None,
        file_naming: Any = None,
        *,
        file_name_suffix: str = ".csv",
        shard_name_template: str | None = None,
        header: bool = True,
        columns: Sequence[str] | None = None,
        sep: str = ",",
        quotechar: str = '"',
        escapechar: str | None = None,
        doublequote: bool = True,
        lineterminator: str = "\n",
        na_rep: str = "",
        compression: Any = "infer",
    ) -> None:
        _unsupported("WriteToCsv", file_naming=file_naming)
        path = resolve_value(path, "WriteToCsv(path)")
        file_name_suffix = resolve_value(file_name_suffix, "WriteToCsv(file_name_suffix)")
        dialect = CsvDialect(sep, quotechar, escapechar, doublequote, lineterminator)
        comp = CompressionTypes.resolve(_pandas_compression(compression), file_name_suffix)
        fmt = CsvFormat(
            columns,
            header,
            dialect,
            comp,
            os.path.basename(path) + file_name_suffix.removesuffix(".zip"),
            na_rep,
        )
        sink = FileSink(
            path,
            file_name_suffix,
            name="Csv",
            fmt=fmt,
            num_shards=num_shards or 0,
            shard_name_template=shard_name_template,
        )
        super().__init__(f"WriteToCsv({path})", sink)
