"""Beam's `apache_beam.transforms.util`: Keys, Values, KvSwap, Reshuffle, CoGroupByKey, Distinct, WithKeys, Regex,
ToString."""

from millstream.engine.model.util import CoGroupByKey, Distinct, Keys, KvSwap, Reshuffle, Values, WithKeys
from millstream.engine.model.util_text import Regex, ToString

__all__ = ["CoGroupByKey", "Distinct", "Keys", "KvSwap", "Regex", "Reshuffle", "ToString", "Values", "WithKeys"]
