"""Beam's `apache_beam.runners.runner`: PipelineState, PipelineResult, PipelineRunner."""

from millstream.engine.runtime.exec.runner import MillstreamRunner as PipelineRunner
from millstream.engine.runtime.exec.runner import PipelineResult, PipelineState

__all__ = ["PipelineResult", "PipelineRunner", "PipelineState"]
