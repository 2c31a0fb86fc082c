"""Avro container files with Beam's names (``apache_beam.io.avroio``), through fastavro.

`ReadFromAvro` yields records as dicts and is checkpointable (position: block offset and records read in it);
`WriteToAvro` is exactly-once (files per checkpoint, renamed on commit; naming in
`millstream.connectors.files.sink`). Reads also take ``timestamp_fn``, ``max_out_of_orderness`` and ``idle_timeout``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.connectors.files.formats.avro import AvroFormat, AvroSource
from millstream.connectors.files.sink import FileSink
from millstream.connectors.files.textio import _ReadTransform, _WriteTransform
from millstream.engine.model.value_providers import resolve_value

__all__ = ["ReadFromAvro", "WriteToAvro"]


class ReadFromAvro(_ReadTransform):
    """Records of Avro files (a path, directory or glob) as dicts; ``as_rows=True`` is not supported."""

    def __init__(
        self,
        file_pattern: str | None = None,
        min_bundle_size: int = 0,
        validate: bool = True,
        use_fastavro: bool = True,
        as_rows: bool = False,
        *,
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        file_pattern = resolve_value(file_pattern, "ReadFromAvro(file_pattern)")
        if file_pattern is None:
            raise ValueError("ReadFromAvro needs a file_pattern")
        if as_rows:
            raise ValueError("ReadFromAvro: as_rows=True is not supported; records are dicts")
        super().__init__(
            f"ReadFromAvro({file_pattern})",
            AvroSource(file_pattern),
            timestamp_fn,
            max_out_of_orderness,
            idle_timeout,
            False,
            validate,
        )


class WriteToAvro(_WriteTransform):
    """Avro files with ``schema`` (a dict or JSON string; required), exactly once; ``codec`` as in Avro
    (``deflate`` by default, ``null``, ``bzip2``, ``xz``, ``snappy``, ``zstandard``, ``lz4``)."""

    def __init__(
        self,
        file_path_prefix: str,
        schema: Any = None,
        codec: str = "deflate",
        file_name_suffix: str = "",
        num_shards: int = 0,
        shard_name_template: str | None = None,
        mime_type: str = "application/x-avro",
        use_fastavro: bool = True,
        triggering_frequency: Any = None,
    ) -> None:
        file_path_prefix = resolve_value(file_path_prefix, "WriteToAvro(file_path_prefix)")
        file_name_suffix = resolve_value(file_name_suffix, "WriteToAvro(file_name_suffix)")
        sink = FileSink(
            file_path_prefix,
            file_name_suffix,
            name="Avro",
            fmt=AvroFormat(schema, codec),
            num_shards=num_shards,
            shard_name_template=shard_name_template,
            compression_type="uncompressed",
        )
        super().__init__(f"WriteToAvro({file_path_prefix})", sink)
