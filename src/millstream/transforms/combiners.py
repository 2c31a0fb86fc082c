"""Beam's `apache_beam.transforms.combiners`: Count, Mean, Top, Sample, ToList, ..."""

from millstream.engine.model.combiners import *  # noqa: F403
from millstream.engine.model.combiners import __all__ as _all

__all__ = list(_all)

from millstream.engine.model.combiners_tuple import *  # noqa: E402, F403
from millstream.engine.model.combiners_tuple import __all__ as _more  # noqa: E402

__all__ += list(_more)

# Beam's module imports `core` and programs reach it as `combiners.core.CombineGlobally`.
from millstream.transforms import core  # noqa: E402, F401
