"""Beam's `apache_beam.io.filesystems`: `FileSystems` (match, open, create, delete, rename, ...)."""

from millstream.connectors.files.filesystems import BeamIOError, FileMetadata, FileSystems, MatchResult

__all__ = ["BeamIOError", "FileMetadata", "FileSystems", "MatchResult"]
