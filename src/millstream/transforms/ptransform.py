"""Beam's `apache_beam.transforms.ptransform`."""

from millstream.engine.model.ptransform import PTransform, ptransform_fn

__all__ = ["PTransform", "ptransform_fn"]
