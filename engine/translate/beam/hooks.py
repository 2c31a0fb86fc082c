"""The IO hook of the Beam translator: connectors register how their sources and sinks become Beam's IO.

The translator never names a connector. A connector registers, per Source or Sink class, a
``"module:function"`` target that turns the millstream transform (`Read` or `Write`) into an ``apache_beam``
PTransform; the target is imported only when a pipeline is translated, so registering costs nothing and
does not import ``apache_beam``.

>>> from millstream.engine.translate.beam.hooks import beam_io_target, register_beam_io
>>> class MySource: ...
>>> register_beam_io(MySource, "my_package.beam_io:read_mine")
>>> beam_io_target(MySource())
'my_package.beam_io:read_mine'
"""

from __future__ import annotations

from typing import Any

_TARGETS: dict[type, str] = {}


class UntranslatableIOError(ValueError):
    """A source or sink that cannot become Beam's IO as configured: raised by a connector's Beam IO function,
    before submission, with one line naming the step and why (the CLI reports it as it reports the
    translator's `UntranslatableError`)."""


def register_beam_io(source_or_sink_type: type, target: str) -> None:
    """Translate `Read`s of (or `Write`s to) `source_or_sink_type` with the function named by `target`.

    `target` is ``"module:function"``; the function is called as ``function(transform, beam)`` with the
    millstream `Read`/`Write` and the ``apache_beam`` module, and returns a Beam PTransform.
    """
    if not isinstance(source_or_sink_type, type):
        raise TypeError(f"register_beam_io needs a class, got {source_or_sink_type!r}")
    if not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"register_beam_io target must be 'module:function', got {target!r}")
    _TARGETS[source_or_sink_type] = target


def beam_io_target(source_or_sink: Any) -> str | None:
    """The registered target for a source or sink object (by its class's MRO), or None."""
    for cls in type(source_or_sink).__mro__:
        target = _TARGETS.get(cls)
        if target is not None:
            return target
    return None


__all__ = ["UntranslatableIOError", "beam_io_target", "register_beam_io"]
