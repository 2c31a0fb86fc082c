"""Parquet files (pyarrow): a checkpointable source and the Parquet file format for `FileSink`.

Each file is one split; its position is ``[row group, row offset in it]``: a restore reads that row group
and continues at the row. Rows are dicts (``columns`` selects some). Writing buffers rows as Arrow record
batches of `record_batch_size` rows and writes a row group whenever `row_group_buffer_size` bytes are
buffered (Beam's parameters), and the rest when the checkpoint seals the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from millstream.connectors.files.filesystem import FileInputError, expand_pattern, local_path, open_raw
from millstream.connectors.files.progress import wrap_progress
from millstream.connectors.files.sink import FileFormat, ShardWriter
from millstream.connectors.files.source import FileSourceReader, FileSplit, SplitCursor, pattern_splits
from millstream.engine.model.io import Source, SourceReader
from millstream.engine.translate.beam.hooks import register_beam_io


class ParquetCursor(SplitCursor):
    """Reads the rows of one Parquet file, one row group at a time."""

    def __init__(self, split: FileSplit, position: Any, columns: Sequence[str] | None = None) -> None:
        import pyarrow.parquet as pq

        self.split = split
        self.fh = open_raw(split.path, split.generation)
        try:
            self.file = pq.ParquetFile(self.fh)
        except Exception as e:
            self.fh.close()
            raise FileInputError(f"{split.path}: not a Parquet file: {e}") from e
        self.columns = list(columns) if columns is not None else None
        meta = self.file.metadata
        self.groups = meta.num_row_groups
        self.group_rows = [meta.row_group(i).num_rows for i in range(self.groups)]
        self.total_rows = max(1, meta.num_rows)
        self.group, self.row = (0, 0) if position is None else (int(position[0]), int(position[1]))
        self.table: Any = None

    def read_batch(self, max_records: int) -> tuple[list[Any], list[dict[str, Any]], bool]:
        values: list[Any] = []
        while len(values) < max_records and self.group < self.groups:
            if self.row >= self.group_rows[self.group]:
                self.group, self.row, self.table = self.group + 1, 0, None
                continue
            if self.table is None:
                try:
                    self.table = self.file.read_row_group(self.group, columns=self.columns)
                except Exception as e:
                    raise FileInputError(f"{self.split.path}: cannot read row group {self.group}: {e}") from e
            k = min(self.group_rows[self.group] - self.row, max_records - len(values))
            values.extend(self.table.slice(self.row, k).to_pylist())
            self.row += k
        while self.group < self.groups and self.row >= self.group_rows[self.group]:
            self.group, self.row, self.table = self.group + 1, 0, None
        return values, [], self.group >= self.groups

    def position(self) -> Any:
        return [self.group, self.row]

    def progress_bytes(self) -> int:
        done = sum(self.group_rows[: self.group]) + self.row
        return self.split.size * done // self.total_rows

    def close(self) -> None:
        self.table = None
        self.file.close()
        self.fh.close()


class ParquetSource(Source):
    """Parquet files matched by a path, directory or glob; one split per file."""

    def __init__(self, file_pattern: str, columns: Sequence[str] | None = None) -> None:
        local_path(file_pattern)
        self.file_pattern = file_pattern
        self.columns = list(columns) if columns is not None else None

    #: False (Beam's ``validate=False``): paths are checked only when the job opens the source.
    validate_paths = True

    def validate(self) -> None:
        if self.validate_paths:
            expand_pattern(self.file_pattern)

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        splits = pattern_splits(self.file_pattern)
        columns = self.columns

        def open_cursor(split: FileSplit, position: Any) -> SplitCursor:
            return ParquetCursor(split, position, columns)

        reader = FileSourceReader(splits, open_cursor, batch_size, self.file_pattern)
        return wrap_progress(reader, options, self.display_name())

    def display_name(self) -> str:
        return f"Parquet({self.file_pattern})"

    def signature(self) -> Any:
        from millstream.connectors.files.filesystem import files_signature

        return files_signature(self.file_pattern)


def _as_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    from millstream.connectors.files.formats.csv import record_fields

    names, fields = record_fields(value)
    if names is None:
        raise ValueError(f"WriteToParquet needs dicts or named records, got {type(value).__name__}")
    return dict(zip(names, fields))


class _ParquetShard(ShardWriter):
    def __init__(self, raw: IO[bytes], fmt: ParquetFormat) -> None:
        self.raw = raw
        self.fmt = fmt
        self.writer: Any = None
        self.rows: list[Any] = []
        self.batches: list[Any] = []
        self.buffered = 0

    def _convert(self) -> None:
        import pyarrow as pa

        if not self.rows:
            return
        fmt = self.fmt
        if fmt.schema is None:
            fmt.schema = pa.Table.from_pylist(self.rows).schema
        batch = pa.RecordBatch.from_pylist(self.rows, schema=fmt.schema)
        self.rows = []
        self.batches.append(batch)
        self.buffered += batch.nbytes

    def _flush_group(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fmt = self.fmt
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.raw,
                fmt.schema,
                compression=fmt.codec,
                use_deprecated_int96_timestamps=fmt.use_deprecated_int96_timestamps,
                use_compliant_nested_type=fmt.use_compliant_nested_type,
            )
        if self.batches:
            table = pa.Table.from_batches(self.batches, schema=fmt.schema)
            self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.batches = []
        self.buffered = 0

    def write(self, values: list[Any]) -> None:
        size = self.fmt.record_batch_size
        for v in values:
            self.rows.append(_as_dict(v))
            if len(self.rows) >= size:
                self._convert()
                if self.buffered >= self.fmt.row_group_buffer_size:
                    self._flush_group()

    def finish(self) -> None:
        self._convert()
        if self.fmt.schema is None:
            raise ValueError("WriteToParquet: no schema given and no record to infer one from")
        self._flush_group()
        self.writer.close()  # writes the footer; a Python file object given to pyarrow stays open


class ParquetFormat(FileFormat):
    """Parquet files with a pyarrow `schema` (inferred from the first records when None)."""

    def __init__(
        self,
        schema: Any = None,
        codec: str = "none",
        row_group_buffer_size: int = 64 << 20,
        record_batch_size: int = 1000,
        use_deprecated_int96_timestamps: bool = False,
        use_compliant_nested_type: bool = False,
    ) -> None:
        import pyarrow as pa

        if schema is not None and not isinstance(schema, pa.Schema):
            raise ValueError(f"WriteToParquet: schema must be a pyarrow.Schema, got {type(schema).__name__}")
        if record_batch_size < 1 or row_group_buffer_size < 1:
            raise ValueError("WriteToParquet: record_batch_size and row_group_buffer_size must be positive")
        self.schema = schema
        self.codec = codec
        self.row_group_buffer_size = row_group_buffer_size
        self.record_batch_size = record_batch_size
        self.use_deprecated_int96_timestamps = use_deprecated_int96_timestamps
        self.use_compliant_nested_type = use_compliant_nested_type

    def open_shard(self, raw: IO[bytes], shard: int, num_shards: int) -> ShardWriter:
        return _ParquetShard(raw, self)

    def concat(self, parts: list[str], raw: IO[bytes]) -> None:
        """One Parquet file with the row groups of `parts`, in order."""
        import pyarrow.parquet as pq

        writer = pq.ParquetWriter(
            raw,
            pq.read_schema(parts[0]),
            compression=self.codec,
            use_deprecated_int96_timestamps=self.use_deprecated_int96_timestamps,
            use_compliant_nested_type=self.use_compliant_nested_type,
        )
        for part in parts:
            pf = pq.ParquetFile(part)
            for i in range(pf.num_row_groups):
                writer.write_table(pf.read_row_group(i))
        writer.close()


__all__ = ["ParquetCursor", "ParquetFormat", "ParquetSource"]

# Beam's runners read these files with Beam's own IO (connectors/files/beam_io.py; imported lazily).
register_beam_io(ParquetSource, "millstream.connectors.files.beam_io:read_parquet")
