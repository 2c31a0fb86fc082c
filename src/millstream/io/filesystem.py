"""Beam's ``apache_beam.io.filesystem`` names that pipelines use: `CompressionTypes`."""

from millstream.connectors.files.filesystem import CompressionTypes

__all__ = ["CompressionTypes"]
