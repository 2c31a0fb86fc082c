"""Parquet files with Beam's names (``apache_beam.io.parquetio``), through pyarrow.

`ReadFromParquet` yields rows as dicts and is checkpointable (position: row group and row offset in it);
`WriteToParquet` is exactly-once (files per checkpoint, renamed on commit; naming in
`millstream.connectors.files.sink`). Reads also take ``timestamp_fn``, ``max_out_of_orderness`` and ``idle_timeout``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from millstream.connectors.files.formats.parquet import ParquetFormat, ParquetSource
from millstream.connectors.files.sink import FileSink
from millstream.connectors.files.textio import _ReadTransform, _WriteTransform
from millstream.engine.model.value_providers import resolve_value

__all__ = ["ReadFromParquet", "WriteToParquet"]


class ReadFromParquet(_ReadTransform):
    """Rows of Parquet files (a path, directory or glob) as dicts; ``columns`` selects some."""

    def __init__(
        self,
        file_pattern: str | None = None,
        min_bundle_size: int = 0,
        validate: bool = True,
        columns: Sequence[str] | None = None,
        as_rows: bool = False,
        *,
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        file_pattern = resolve_value(file_pattern, "ReadFromParquet(file_pattern)")
        if file_pattern is None:
            raise ValueError("ReadFromParquet needs a file_pattern")
        if as_rows:
            raise ValueError("ReadFromParquet: as_rows=True is not supported; rows are dicts")
        super().__init__(
            f"ReadFromParquet({file_pattern})",
            ParquetSource(file_pattern, columns),
            timestamp_fn,
            max_out_of_orderness,
            idle_timeout,
            False,
            validate,
        )


class WriteToParquet(_WriteTransform):
    """Parquet files, exactly once. ``schema`` is a ``pyarrow.Schema`` (inferred from the first records when
    None); ``codec`` is pyarrow's compression (``none``, ``snappy``, ``gzip``, ``zstd``, ...)."""

    def __init__(
        self,
        file_path_prefix: str,
        schema: Any = None,
        row_group_buffer_size: int = 64 * 1024 * 1024,
        record_batch_size: int = 1000,
        codec: str = "none",
        use_deprecated_int96_timestamps: bool = False,
        use_compliant_nested_type: bool = False,
        file_name_suffix: str = "",
        num_shards: int = 0,
        shard_name_template: str | None = None,
        mime_type: str = "application/x-parquet",
        triggering_frequency: Any = None,
    ) -> None:
        file_path_prefix = resolve_value(file_path_prefix, "WriteToParquet(file_path_prefix)")
        file_name_suffix = resolve_value(file_name_suffix, "WriteToParquet(file_name_suffix)")
        fmt = ParquetFormat(
            schema,
            codec,
            row_group_buffer_size,
            record_batch_size,
            use_deprecated_int96_timestamps,
            use_compliant_nested_type,
        )
        sink = FileSink(
            file_path_prefix,
            file_name_suffix,
            name="Parquet",
            fmt=fmt,
            num_shards=num_shards,
            shard_name_template=shard_name_template,
            compression_type="uncompressed",
        )
        super().__init__(f"WriteToParquet({file_path_prefix})", sink)
