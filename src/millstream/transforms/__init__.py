"""Beam's `apache_beam.transforms`: the transform library."""

from millstream.transforms import combiners, timeutil, trigger, userstate, window
from millstream.transforms.core import *  # noqa: F403
from millstream.transforms.ptransform import PTransform, ptransform_fn
from millstream.transforms.util import CoGroupByKey, Distinct, Keys, KvSwap, Reshuffle, Values, WithKeys

__all__ = [
    "CoGroupByKey",
    "Distinct",
    "Keys",
    "KvSwap",
    "PTransform",
    "Reshuffle",
    "Values",
    "WithKeys",
    "combiners",
    "timeutil",
    "userstate",
    "ptransform_fn",
    "trigger",
    "window",
]
