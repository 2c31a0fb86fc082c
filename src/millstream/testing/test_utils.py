"""Beam's `apache_beam.testing.test_utils`: file helpers for tests."""

from millstream.connectors.files.test_utils import (
    TempDir,
    compute_hash,
    create_file,
    delete_files,
    read_files_from_pattern,
)

__all__ = ["TempDir", "compute_hash", "create_file", "delete_files", "read_files_from_pattern"]
