"""Shared test configuration: the `subprocess` and `crash` markers, applied from what a test uses.

A test launches processes when it uses the runners of tests/support (`support.jobs`, `support.kill9`,
`support.daemon`), directly or through the `daemons` / `killed_job` fixtures; the kill -9 harness makes it a
`crash` test too. Select with ``-m subprocess``, ``-m "not crash"``, ...
"""

from __future__ import annotations

import types
from typing import Any

import pytest

_RUNNER_MODULES = frozenset({"support.jobs", "support.kill9", "support.daemon"})
_SUBPROCESS_FIXTURES = frozenset({"daemons", "killed_job"})
_CRASH_FIXTURES = frozenset({"killed_job"})


def _uses_runner(module: types.ModuleType) -> bool:
    """True when the test module imported one of the runners (or something defined in one)."""
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if name in _RUNNER_MODULES:
            return True
    return False


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark users of the subprocess runners `subprocess`, users of the kill -9 harness `crash`."""
    runners: dict[Any, bool] = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        if module is not None and module not in runners:
            runners[module] = _uses_runner(module)
        if fixtures & _CRASH_FIXTURES:
            item.add_marker(pytest.mark.crash)
        if fixtures & _SUBPROCESS_FIXTURES or runners.get(module) or item.get_closest_marker("crash"):
            item.add_marker(pytest.mark.subprocess)
