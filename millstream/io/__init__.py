"""Beam's `apache_beam.io`: connectors (local files now; Kafka and Pub/Sub as they land)."""

from millstream.engine.model.io import Read, Sink, SinkWriter, Source, SourceBatch, SourceReader, Write
from millstream.io.textio import ReadFromJson, ReadFromText, WriteToJson, WriteToText

__all__ = [
    "Read",
    "ReadFromJson",
    "ReadFromText",
    "Sink",
    "SinkWriter",
    "Source",
    "SourceBatch",
    "SourceReader",
    "Write",
    "WriteToJson",
    "WriteToText",
]
