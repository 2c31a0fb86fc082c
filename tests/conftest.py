"""Shared test configuration: the `subprocess` and `crash` markers, applied from what a test uses.

A test launches processes when it uses the runners of tests/support (`support.jobs`, `support.kill9`,
`support.daemon`), directly or through the `daemons` / `killed_job` fixtures; the kill -9 harness makes it a
`crash` test too. Select with ``-m subprocess``, ``-m "not crash"``, ...

In CI (`CI` set to a true value) a skipped test or module fails the run: every test there must run, the
broker, server and Beam-runner tests included, so a missing dependency cannot pass as a skip.
"""

from __future__ import annotations

import os
import types
from typing import Any

import pytest

_RUNNER_MODULES = frozenset({"support.jobs", "support.kill9", "support.daemon"})
_SUBPROCESS_FIXTURES = frozenset({"daemons", "killed_job"})
_CRASH_FIXTURES = frozenset({"killed_job"})
_SKIPPED_KEY = pytest.StashKey[list[str]]()


def _in_ci() -> bool:
    """True on the CI machine, where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    """Start the list of skips that a CI run will report as failures."""
    config.stash[_SKIPPED_KEY] = []


def _record_skip(config: pytest.Config, report: pytest.CollectReport | pytest.TestReport) -> None:
    """Remember a skipped test or module with its reason (the longrepr's last element)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        config.stash[_SKIPPED_KEY].append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Collect skipped modules (a module-level importorskip)."""
    if report.skipped and _in_ci():
        _record_skip(_CONFIG[0], report)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect skipped tests."""
    if report.skipped and _in_ci():
        _record_skip(_CONFIG[0], report)


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Keep the config for the report hooks, which are not given it."""
    _CONFIG[:] = [session.config]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, fail the run when anything was skipped, listing what and why."""
    skipped = session.config.stash.get(_SKIPPED_KEY, [])
    if skipped and _in_ci():
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", "CI: nothing may be skipped, but these were", red=True)
            for line in skipped:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
