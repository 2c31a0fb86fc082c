"""Beam's `apache_beam.transforms.util`: Keys, Values, KvSwap, Reshuffle, CoGroupByKey, Distinct, WithKeys, Regex,
ToString, LogElements."""

from millstream.engine.model.util import CoGroupByKey, Distinct, Keys, KvSwap, Reshuffle, Values, WithKeys
from millstream.engine.model.util_log import LogElements
from millstream.engine.model.util_text import Regex, ToString

__all__ = ["CoGroupByKey", "Distinct", "Keys", "KvSwap", "LogElements", "Regex", "Reshuffle", "ToString", "Values", "WithKeys"]
