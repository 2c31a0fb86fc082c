"""Makes the daemon test helpers importable as `_millstream_daemon_helpers`; the `daemons` fixture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location("_millstream_daemon_helpers", Path(__file__).with_name("daemon_helpers.py"))
assert _spec is not None and _spec.loader is not None
helpers = importlib.util.module_from_spec(_spec)
sys.modules["_millstream_daemon_helpers"] = helpers
_spec.loader.exec_module(helpers)


@pytest.fixture
def daemons(tmp_path: Any) -> Any:
    """A factory of Daemons in `tmp_path`; kills any still running at the end."""
    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        d = helpers.Daemon(str(tmp_path), **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()
