"""The runtime's sink wrapper forwards every method of the SinkWriter protocol (none falls back to a default)."""

from __future__ import annotations

import inspect

from millstream.engine.model.io import SinkWriter
from millstream.engine.runtime.operators.sink_guard import GuardedSinkWriter


def test_every_sink_writer_method_is_forwarded():
    methods = {n for n, f in inspect.getmembers(SinkWriter, inspect.isfunction) if not n.startswith("_")}
    not_forwarded = sorted(n for n in methods if n not in GuardedSinkWriter.__dict__)
    assert not_forwarded == [], "GuardedSinkWriter would answer these with SinkWriter's defaults"
