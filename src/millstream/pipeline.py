"""Beam's `apache_beam.pipeline`: Pipeline, AppliedPTransform and PipelineVisitor."""

from millstream.engine.model.pipeline import AppliedPTransform, Pipeline, PipelineVisitor

__all__ = ["AppliedPTransform", "Pipeline", "PipelineVisitor"]
