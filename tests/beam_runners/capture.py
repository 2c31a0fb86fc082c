"""Capturing a pipeline's outputs into files, so that runs in another process (a Beam worker pool) are seen.

Loaded by value (cloudpickle) into the worker: each element is appended as one pickled, base64 line to
``<dir>/<name>.lines``; `read` gives the captured multisets back, canonicalised as the Beam-compat harness does.
"""

from __future__ import annotations

import base64
import math
import os
import pickle
from collections.abc import Iterable
from typing import Any


def _append(element: Any, path: str) -> None:
    line = base64.b64encode(pickle.dumps(element)) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write per line with O_APPEND: lines from concurrent bundles never interleave
    finally:
        os.close(fd)


def capture(beam: Any, pcoll: Any, name: str, directory: str) -> Any:
    """Append every element of `pcoll` to ``directory/name.lines`` when the pipeline runs."""
    path = os.path.join(directory, f"{name}.lines")
    open(path, "ab").close()
    return pcoll | f"Capture[{name}]" >> beam.Map(_append, path)


def canonical(value: Any) -> Any:
    """A comparable form: iterables (GroupByKey values) become sorted tuples, NaN a string."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((canonical(k), canonical(v)) for k, v in value.items()), key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((canonical(v) for v in value), key=repr)))
    if isinstance(value, Iterable):
        return ("seq", tuple(sorted((canonical(v) for v in value), key=repr)))
    return repr(value)


def read(directory: str) -> dict[str, list[Any]]:
    """Every capture in `directory`: name -> sorted canonical elements."""
    out: dict[str, list[Any]] = {}
    for entry in sorted(os.listdir(directory)):
        if entry.endswith(".lines"):
            with open(os.path.join(directory, entry), "rb") as f:
                values = [pickle.loads(base64.b64decode(line)) for line in f if line.strip()]
            out[entry[: -len(".lines")]] = sorted((canonical(v) for v in values), key=repr)
    return out
