"""The example programs (examples/streaming/*.py, which is not a package) for their tests, loaded by
`support.loading` as ``millstream_example_<stem>``.

Example::

    >>> load_example("flights").__name__
    'millstream_example_flights'
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from support.loading import load_module

__all__ = ["EXAMPLES", "ROOT", "example_path", "load_example"]

#: The repository's root.
ROOT = Path(__file__).resolve().parents[2]
#: Where the example programs are.
EXAMPLES = ROOT / "examples" / "streaming"


def example_path(stem: str) -> Path:
    """The file of example `stem` (e.g. "flights"); fails naming it when there is none."""
    path = EXAMPLES / f"{stem}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no example program {stem!r} in {EXAMPLES}")
    return path


def load_example(stem: str) -> ModuleType:
    """Example `stem` as a module, loaded once."""
    return load_module(example_path(stem), f"millstream_example_{stem}")
