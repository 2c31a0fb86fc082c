"""Beam's `apache_beam.transforms.util`: Keys, Values, KvSwap, Reshuffle, CoGroupByKey, Distinct, WithKeys, Regex,
ToString, LogElements, GroupIntoBatches, BatchElements."""

from millstream.engine.model.util import (
    CoGroupByKey,
    Distinct,
    Keys,
    KvSwap,
    Reify,
    Reshuffle,
    Values,
    WithKeys,
)
from millstream.engine.model.util_batch import BatchElements, GroupIntoBatches
from millstream.engine.model.util_log import LogElements
from millstream.engine.model.util_text import Regex, ToString

__all__ = [
    "BatchElements",
    "CoGroupByKey",
    "Distinct",
    "GroupIntoBatches",
    "Keys",
    "KvSwap",
    "LogElements",
    "Regex",
    "Reify",
    "Reshuffle",
    "ToString",
    "Values",
    "WithKeys",
]
