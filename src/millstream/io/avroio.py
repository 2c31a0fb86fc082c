"""Avro container files with Beam's names (``apache_beam.io.avroio``), through fastavro."""

from millstream.connectors.files.avroio import (
    ReadFromAvro,
    WriteToAvro,
)

__all__ = [
    "ReadFromAvro",
    "WriteToAvro",
]
