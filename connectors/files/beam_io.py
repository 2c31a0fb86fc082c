"""Beam's IO for the file connectors: what `Read`/`Write` of files become on Beam's runners.

Registered with the translator's hook (`millstream.engine.translate.beam.hooks`) by `source.py`, `sink.py`
and the Avro and Parquet formats; imported only when a pipeline is translated.

Reads. Line files (text, JSON lines) become Beam's ``ReadFromText`` of raw bytes with this connector's own
decoder, so values are decoded exactly as locally. Where ``ReadFromText`` would read differently, the
translation reads with this connector's own cursors inside Beam instead (`read_splits`: the pattern is
expanded when the job runs, into the same line-aligned splits as locally, which are reshuffled and read by a
DoFn): with ``with_dead_letters()`` (undecodable lines go, with file, line number, offset and reason, to a
tagged dead-letter output, as locally), for CSV (each file's own header names its columns) and for the
compressions Beam lacks (``zip``, ``xz``). Avro and Parquet become Beam's ``ReadFromAvro``/``ReadFromParquet``
(records as dicts, as locally).

Writes. Text-format sinks (text, JSON lines, CSV with ``columns`` given: Beam writes the header line given
before the job runs) become ``WriteToText`` of the bytes this connector's encoder produces, with the same
shard naming; Avro and Parquet become ``WriteToAvro``/``WriteToParquet`` with the same schema, codec and
shard naming. Parquet needs its ``schema`` given (Beam does not infer one).

>>> from millstream.connectors.files.source import LineFileSource
>>> from millstream.engine.translate.beam.hooks import beam_io_target
>>> beam_io_target(LineFileSource("/tmp/*.txt"))
'millstream.connectors.files.beam_io:read_lines'
"""

from __future__ import annotations

from typing import Any

import orjson

from millstream.connectors.files.filesystem import CompressionTypes
from millstream.connectors.files.formats.avro import AvroFormat, AvroSource
from millstream.connectors.files.formats.csv import CsvFormat
from millstream.connectors.files.formats.parquet import ParquetFormat, ParquetSource
from millstream.connectors.files.sink import FileSink, TextFormat
from millstream.connectors.files.source import FileSplit, LineFileSource, line_splits, pattern_files
from millstream.engine.translate.beam.hooks import UntranslatableIOError

#: Compressions Beam's ``ReadFromText`` reads as this connector does (others go through `read_splits`).
_BEAM_TEXT_COMPRESSIONS = (CompressionTypes.UNCOMPRESSED, CompressionTypes.GZIP, CompressionTypes.BZIP2)
#: Records read from a split per call of the cursor (a DoFn's batch; any size gives the same records).
_SPLIT_BATCH = 1024


def read_lines(read: Any, beam: Any) -> Any:
    """``Read(LineFileSource)`` as Beam's ``ReadFromText`` of bytes decoded by the source's decoder, or, when
    that would read differently (dead letters, CSV headers, zip/xz), as `read_splits`."""
    source: LineFileSource = read.source
    if source.watch:
        raise UntranslatableIOError(
            f"step '{read.label}': a watched (unbounded) file source is not translated to Beam"
        )
    compression = CompressionTypes.resolve(source.compression_type, source.file_pattern)
    if read.dead_letter_tag is not None or source.name == "Csv" or compression not in _BEAM_TEXT_COMPRESSIONS:
        return read_splits(read, beam)
    decoder = source.decoder_factory(source.file_pattern, source.compression_type)

    def decode(line: bytes) -> list[Any]:
        values, errors = decoder.decode([line])
        if errors:
            raise ValueError(f"{source.display_name()}: cannot decode a line: {errors[0][1]}")
        return values

    class _ReadLines(beam.PTransform):
        def expand(self, pbegin: Any) -> Any:
            return (
                pbegin
                | "ReadFromText"
                >> beam.io.ReadFromText(
                    source.file_pattern,
                    coder=beam.coders.BytesCoder(),
                    skip_header_lines=source.skip_header_lines,
                    strip_trailing_newlines=source.strip_trailing_newlines,
                )
                | "Decode" >> beam.FlatMap(decode)
            )

    return _ReadLines()


def read_splits(read: Any, beam: Any) -> Any:
    """``Read(LineFileSource)`` through this connector's cursors inside Beam: the pattern's splits (listed when
    the job runs), reshuffled, each read by a DoFn. With ``with_dead_letters(tag)`` the result is a dict
    ``{"main": values, tag: bad records}``; without, a bad record fails the job as it does locally."""
    source: LineFileSource = read.source
    tag: str | None = read.dead_letter_tag
    pattern = source.file_pattern
    where = f"step '{read.label}'"

    def splits(_: Any) -> list[FileSplit]:
        return line_splits(pattern_files(pattern), source.compression_type, source.split_size)

    class _ReadSplit(beam.DoFn):  # type: ignore[misc]
        """Reads one split with the source's cursor: values, and bad records to the dead-letter tag."""

        def process(self, split: FileSplit) -> Any:
            cursor = source.cursor(split, None)
            try:
                done = False
                while not done:
                    values, errors, done = cursor.read_batch(_SPLIT_BATCH)
                    yield from values
                    for error in errors:
                        if tag is None:
                            where_in = ", ".join(f"{k}={error[k]!r}" for k in ("file", "line") if k in error)
                            raise ValueError(f"{where}: bad record ({where_in}): {error.get('reason')}")
                        yield beam.pvalue.TaggedOutput(tag, error)
            finally:
                cursor.close()

    class _ReadSplits(beam.PTransform):
        def expand(self, pbegin: Any) -> Any:
            planned = (
                pbegin
                | "Pattern" >> beam.Create([pattern])
                | "Splits" >> beam.FlatMap(splits)
                | "Reshuffle" >> beam.Reshuffle()
            )
            if tag is None:
                return planned | "ReadSplits" >> beam.ParDo(_ReadSplit())
            result = planned | "ReadSplits" >> beam.ParDo(_ReadSplit()).with_outputs(tag, main="main")
            return {"main": result["main"], tag: result[tag]}

    return _ReadSplits()


def read_avro(read: Any, beam: Any) -> Any:
    """``Read(AvroSource)`` as Beam's ``ReadFromAvro`` (records as dicts)."""
    source: AvroSource = read.source
    return beam.io.ReadFromAvro(source.file_pattern, validate=source.validate_paths)


def read_parquet(read: Any, beam: Any) -> Any:
    """``Read(ParquetSource)`` as Beam's ``ReadFromParquet`` (rows as dicts, ``columns`` kept)."""
    source: ParquetSource = read.source
    return beam.io.ReadFromParquet(
        source.file_pattern, validate=source.validate_paths, columns=source.columns
    )


def write_files(write: Any, beam: Any) -> Any:
    """``Write(FileSink)`` as Beam's file sink for its format: text-like formats, Avro, Parquet."""
    sink: FileSink = write.sink
    fmt = sink.fmt
    if isinstance(fmt, AvroFormat):
        schema = orjson.loads(fmt.schema) if isinstance(fmt.schema, (str, bytes)) else fmt.schema
        return beam.io.WriteToAvro(
            sink.prefix,
            schema=schema,
            codec=fmt.codec,
            file_name_suffix=sink.suffix,
            num_shards=sink.num_shards,
            shard_name_template=sink.template,
        )
    if isinstance(fmt, ParquetFormat):
        if fmt.schema is None:
            raise UntranslatableIOError(
                f"step '{write.label}': WriteToParquet needs schema= (a pyarrow.Schema) on Beam, "
                "which does not infer one from the records"
            )
        return beam.io.WriteToParquet(
            sink.prefix,
            schema=fmt.schema,
            row_group_buffer_size=fmt.row_group_buffer_size,
            record_batch_size=fmt.record_batch_size,
            codec=fmt.codec,
            use_deprecated_int96_timestamps=fmt.use_deprecated_int96_timestamps,
            use_compliant_nested_type=fmt.use_compliant_nested_type,
            file_name_suffix=sink.suffix,
            num_shards=sink.num_shards,
            shard_name_template=sink.template,
        )
    return write_text(write, beam)


def write_text(write: Any, beam: Any) -> Any:
    """``Write(FileSink)`` with a text format (text, JSON lines, CSV with known columns) as Beam's
    ``WriteToText`` of the encoded lines."""
    sink: FileSink = write.sink
    fmt = sink.fmt
    if not isinstance(fmt, TextFormat):
        raise UntranslatableIOError(
            f"step '{write.label}': the {type(fmt).__name__} file format is not translated to Beam "
            "(use Beam's own IO in the pipeline for it)"
        )
    if fmt.compression == CompressionTypes.ZIP or fmt.compression == CompressionTypes.XZ:
        raise UntranslatableIOError(
            f"step '{write.label}': Beam's WriteToText cannot write {fmt.compression} files"
        )
    header_bytes = fmt.header
    encode = fmt.encode
    if isinstance(fmt, CsvFormat):
        if fmt.columns is None:
            raise UntranslatableIOError(
                f"step '{write.label}': WriteToCsv needs columns=[...] on Beam (the header line is written "
                "before any record is seen there)"
            )
        header_bytes = fmt.header_bytes([])
    header = None if header_bytes is None else header_bytes.decode("utf-8")
    footer = None if fmt.footer is None else fmt.footer.decode("utf-8")

    class _WriteLines(beam.PTransform):
        def expand(self, pcoll: Any) -> Any:
            return (
                pcoll
                | "Encode" >> beam.Map(encode)
                | "WriteToText"
                >> beam.io.WriteToText(
                    sink.prefix,
                    sink.suffix,
                    append_trailing_newlines=False,
                    num_shards=sink.num_shards,
                    shard_name_template=sink.template,
                    coder=beam.coders.BytesCoder(),
                    # written as given: no newline is appended (append_trailing_newlines=False)
                    header=header,
                    footer=footer,
                )
            )

    return _WriteLines()


__all__ = ["read_avro", "read_lines", "read_parquet", "read_splits", "write_files", "write_text"]
