"""Text, JSON-lines and CSV files with Beam's names and arguments (``apache_beam.io.textio``)."""

from millstream.connectors.files.read_all import ReadAllFromText
from millstream.connectors.files.textio import (
    ReadFromCsv,
    ReadFromJson,
    ReadFromText,
    WriteToCsv,
    WriteToJson,
    WriteToText,
)

__all__ = [
    "ReadAllFromText",
    "ReadFromCsv",
    "ReadFromJson",
    "ReadFromText",
    "WriteToCsv",
    "WriteToJson",
    "WriteToText",
]
