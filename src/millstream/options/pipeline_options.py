"""Beam's `apache_beam.options.pipeline_options`."""

from millstream.engine.model.options import (
    DebugOptions,
    DirectOptions,
    GoogleCloudOptions,
    MillstreamOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    TypeOptions,
)

__all__ = [
    "DebugOptions",
    "DirectOptions",
    "GoogleCloudOptions",
    "MillstreamOptions",
    "PipelineOptions",
    "SetupOptions",
    "StandardOptions",
    "TypeOptions",
]
