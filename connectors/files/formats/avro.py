"""Avro container files (fastavro): a checkpointable source and the Avro file format for `FileSink`.

Each file is one split; its position is ``[offset of the current block, records read from it]``, so a restore
seeks straight to the block and skips only the records already read in it. Corrupt data fails the job with the
file and block offset (an Avro file cannot be resynchronised line by line). Records are dicts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO, Any

from millstream.connectors.files.filesystem import FileInputError, expand_pattern, local_path, open_raw
from millstream.connectors.files.progress import wrap_progress
from millstream.connectors.files.sink import FileFormat, ShardWriter
from millstream.connectors.files.source import FileSourceReader, FileSplit, SplitCursor, pattern_splits
from millstream.engine.model.io import Source, SourceReader
from millstream.engine.translate.beam.hooks import register_beam_io

CODECS = ("null", "deflate", "bzip2", "xz", "snappy", "zstandard", "lz4")


class AvroCursor(SplitCursor):
    """Reads the records of one Avro file block by block."""

    def __init__(self, split: FileSplit, position: Any) -> None:
        import fastavro

        self.split = split
        self.fh: IO[bytes] = open_raw(split.path, split.generation)
        try:
            self.blocks: Iterator[Any] = iter(fastavro.block_reader(self.fh))
        except Exception as e:
            self.fh.close()
            raise FileInputError(f"{split.path}: not an Avro container file: {e}") from e
        self.skip = 0
        if position is not None:
            self.fh.seek(int(position[0]))
            self.skip = int(position[1])
        self.records: Iterator[Any] | None = None
        self.block_offset = self.fh.tell()
        self.block_size = 0
        self.in_block = 0

    def _next_block(self) -> bool:
        offset = self.fh.tell()
        try:
            block = next(self.blocks)
        except StopIteration:
            return False
        except Exception as e:
            raise FileInputError(f"{self.split.path}: corrupt Avro block at offset {offset}: {e}") from e
        self.block_offset = block.offset
        self.block_size = block.num_records
        self.in_block = 0
        self.records = iter(block)
        if self.skip:
            skipped = sum(1 for _ in itertools.islice(self.records, self.skip))
            self.in_block = skipped
            self.skip = 0
        return True

    def read_batch(self, max_records: int) -> tuple[list[Any], list[dict[str, Any]], bool]:
        values: list[Any] = []
        while len(values) < max_records:
            if self.records is None or self.in_block >= self.block_size:
                self.records = None
                if not self._next_block():
                    return values, [], True
                continue
            try:
                take = list(itertools.islice(self.records, max_records - len(values)))
            except Exception as e:
                raise FileInputError(
                    f"{self.split.path}: corrupt Avro record in the block at offset {self.block_offset}: {e}"
                ) from e
            if not take:
                self.in_block = self.block_size
                continue
            values.extend(take)
            self.in_block += len(take)
        return values, [], False

    def position(self) -> Any:
        if self.records is None:
            return [self.fh.tell(), 0]
        return [self.block_offset, self.in_block]

    def progress_bytes(self) -> int:
        return min(self.split.size, self.fh.tell())

    def close(self) -> None:
        self.fh.close()


class AvroSource(Source):
    """Avro container files matched by a path, directory or glob; one split per file."""

    def __init__(self, file_pattern: str) -> None:
        local_path(file_pattern)
        self.file_pattern = file_pattern

    #: False (Beam's ``validate=False``): paths are checked only when the job opens the source.
    validate_paths = True

    def validate(self) -> None:
        if self.validate_paths:
            expand_pattern(self.file_pattern)

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        splits = pattern_splits(self.file_pattern)
        reader = FileSourceReader(splits, AvroCursor, batch_size, self.file_pattern)
        return wrap_progress(reader, options, self.display_name())

    def display_name(self) -> str:
        return f"Avro({self.file_pattern})"

    def signature(self) -> Any:
        if getattr(self, "watch", False):
            return None  # an unbounded source never completes
        from millstream.connectors.files.filesystem import files_signature

        return files_signature(self.file_pattern)


class _AvroShard(ShardWriter):
    def __init__(self, raw: IO[bytes], fmt: AvroFormat) -> None:
        from fastavro.write import Writer

        self.writer = Writer(raw, fmt.parsed, codec=fmt.codec)

    def write(self, values: list[Any]) -> None:
        write = self.writer.write
        for v in values:
            write(v)

    def finish(self) -> None:
        self.writer.flush()


class AvroFormat(FileFormat):
    """Avro container files with `schema` (a dict or JSON string) and block `codec`."""

    def __init__(self, schema: Any, codec: str = "deflate") -> None:
        if schema is None:
            raise ValueError("WriteToAvro needs a schema (an Avro schema as a dict or JSON string)")
        if codec not in CODECS:
            raise ValueError(f"codec={codec!r} is not an Avro codec; use one of {', '.join(CODECS)}")
        self.schema = schema
        self.codec = codec
        self.parsed: Any = None
        self.validate()

    def validate(self) -> None:
        import fastavro
        import orjson

        schema = orjson.loads(self.schema) if isinstance(self.schema, (str, bytes)) else self.schema
        try:
            self.parsed = fastavro.parse_schema(schema)
        except Exception as e:
            raise ValueError(f"WriteToAvro: bad Avro schema: {e}") from e

    def open_shard(self, raw: IO[bytes], shard: int, num_shards: int) -> ShardWriter:
        return _AvroShard(raw, self)

    def concat(self, parts: list[str], raw: IO[bytes]) -> None:
        """One container file with the records of `parts`, in order."""
        import fastavro
        from fastavro.write import Writer

        writer = Writer(raw, self.parsed, codec=self.codec)
        for part in parts:
            with open(part, "rb") as f:
                for record in fastavro.reader(f):
                    writer.write(record)
        writer.flush()


__all__ = ["AvroCursor", "AvroFormat", "AvroSource"]

# Beam's runners read these files with Beam's own IO (connectors/files/beam_io.py; imported lazily).
register_beam_io(AvroSource, "millstream.connectors.files.beam_io:read_avro")
