"""Beam's `apache_beam.transforms.util`: Keys, Values, KvSwap, Reshuffle, CoGroupByKey, Distinct, WithKeys."""

from millstream.engine.model.util import CoGroupByKey, Distinct, Keys, KvSwap, Reshuffle, Values, WithKeys

__all__ = ["CoGroupByKey", "Distinct", "Keys", "KvSwap", "Reshuffle", "Values", "WithKeys"]
