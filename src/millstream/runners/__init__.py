"""Beam's `apache_beam.runners`: the runner names a pipeline can ask for (all run on millstream's runtime)."""

from millstream.engine.runtime.exec.runner import MillstreamRunner, PipelineResult, PipelineState
from millstream.engine.runtime.exec.runner import MillstreamRunner as DirectRunner
from millstream.runners import runner

__all__ = ["DirectRunner", "MillstreamRunner", "PipelineResult", "PipelineState", "runner"]
