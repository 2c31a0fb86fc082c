"""The one loader of Python files that are not importable by name: the example programs
(examples/streaming/*.py) and the modules whose functions Beam must pickle by value.

A loaded module is registered in `sys.modules` under the name given: dataclasses look their module up while
a class is created, and pickled functions must find it again; a second load of that name returns it.

Example::

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.py"
    >>> _ = path.write_text("X = 1\\n")
    >>> load_module(path, "support_loading_example").X
    1
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

__all__ = ["load_by_value", "load_module"]


def load_module(path: Path, name: str, source: str | None = None) -> types.ModuleType:
    """`path` (or `source`, compiled as `path`) as module `name`, loaded once."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    if source is None:
        if not path.is_file():
            raise FileNotFoundError(f"cannot load module {name!r}: no file {path}")
        source = path.read_text()
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]  # a failed load is not cached
        raise
    return module


def load_by_value(path: Path, name: str, source: str | None = None) -> types.ModuleType:
    """`load_module`, registered with Beam's cloudpickle to be pickled by value (a worker-pool process
    cannot import it)."""
    from apache_beam.internal.cloudpickle import cloudpickle

    module = load_module(path, name, source)
    cloudpickle.register_pickle_by_value(module)
    return module
