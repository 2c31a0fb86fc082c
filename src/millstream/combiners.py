"""`millstream.combiners`, as `apache_beam.combiners`: the combiner library."""

from millstream.engine.model.combiners import *  # noqa: F403
from millstream.engine.model.combiners import __all__ as _all

__all__ = list(_all)
