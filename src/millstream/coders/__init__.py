"""Beam's `apache_beam.coders`: Coder, PickleCoder, StrUtf8Coder, VarIntCoder, ..., and the coder registry."""

from millstream.coders import coders, typecoders
from millstream.engine.model.coders import *  # noqa: F403
from millstream.engine.model.coders import __all__ as _all

__all__ = [*_all, "coders", "typecoders"]
