"""Beam's ``apache_beam.io.fileio``: match files once or continuously, then read the matches."""

from millstream.connectors.files.fileio import (
    FileMetadata,
    MatchContinuously,
    MatchFiles,
    ReadableFile,
    ReadMatches,
)

__all__ = [
    "FileMetadata",
    "MatchContinuously",
    "MatchFiles",
    "ReadMatches",
    "ReadableFile",
]
