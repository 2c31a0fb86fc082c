"""Beam's `apache_beam.io.filesystems`: `FileSystems` (match, open, create, delete, rename, ...)."""

from millstream.connectors.filesystems import BeamIOError, FileMetadata, FileSystems, MatchResult

__all__ = ["BeamIOError", "FileMetadata", "FileSystems", "MatchResult"]
