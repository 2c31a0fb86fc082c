"""Loading test modules so that Beam pickles their functions by value (a worker-pool process cannot import them)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from apache_beam.internal.cloudpickle import cloudpickle


def load_by_value(path: Path, name: str, source: str | None = None) -> types.ModuleType:
    """`path` (or `source`, compiled as `path`) as module `name`, registered to be pickled by value."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    text = path.read_text() if source is None else source
    exec(compile(text, str(path), "exec"), module.__dict__)
    cloudpickle.register_pickle_by_value(module)
    return module


def here(name: str) -> Path:
    """A file beside this one."""
    return Path(__file__).resolve().with_name(name)
