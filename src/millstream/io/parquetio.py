"""Parquet files with Beam's names (``apache_beam.io.parquetio``), through pyarrow."""

from millstream.connectors.files.parquetio import (
    ReadFromParquet,
    WriteToParquet,
)

__all__ = [
    "ReadFromParquet",
    "WriteToParquet",
]
