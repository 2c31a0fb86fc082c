"""Beam's IO for the file connectors: what `Read`/`Write` of line files become on Beam's runners.

Registered with the translator's hook (`millstream.engine.translate.beam.hooks`) by `source.py` and
`sink.py`; imported only when a pipeline is translated. Line files (text, JSON lines, CSV read as lines)
become Beam's ``ReadFromText`` with raw bytes and this connector's own per-file decoder, so values are
decoded exactly as locally; text-format sinks become ``WriteToText`` of the bytes this connector's encoder
produces, with the same shard naming. Formats with a file structure of their own (Avro, Parquet, CSV with
a derived header) are refused with the step named.

>>> from millstream.connectors.files.source import LineFileSource
>>> from millstream.engine.translate.beam.hooks import beam_io_target
>>> beam_io_target(LineFileSource("/tmp/*.txt"))
'millstream.connectors.files.beam_io:read_lines'
"""

from __future__ import annotations

from typing import Any

from millstream.connectors.files.sink import FileSink, TextFormat
from millstream.connectors.files.source import LineFileSource


def read_lines(read: Any, beam: Any) -> Any:
    """``Read(LineFileSource)`` as Beam's ``ReadFromText`` of bytes, decoded by the source's decoder."""
    source: LineFileSource = read.source
    if source.watch:
        raise ValueError(f"step '{read.label}': a watched (unbounded) file source is not translated to Beam")
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


def write_text(write: Any, beam: Any) -> Any:
    """``Write(FileSink)`` with a text format as Beam's ``WriteToText`` of the encoded lines."""
    sink: FileSink = write.sink
    fmt = sink.fmt
    if type(fmt) is not TextFormat:
        raise ValueError(
            f"step '{write.label}': the {type(fmt).__name__} file format is not translated to Beam yet "
            "(use Beam's own IO in the pipeline for it)"
        )
    encode = fmt.encode
    header = None if fmt.header is None else fmt.header.decode("utf-8")
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
                    header=None if header is None else header.removesuffix("\n"),
                    footer=None if footer is None else footer.removesuffix("\n"),
                )
            )

    return _WriteLines()


__all__ = ["read_lines", "write_text"]
