"""Shared test configuration: the `subprocess` and `crash` markers, applied from what a test uses.

A test launches processes when its body, a fixture it uses or a test helper either reaches starts one through
the runners of tests/support (`support.jobs`, and the kill -9 harness `support.kill9`, which makes it a `crash`
test too); support/markers.py reads that from the source, test by test, so an in-process test beside a
launching one is not marked. Select with ``-m subprocess``, ``-m "not crash"``, ...

In CI (`CI` set to a true value) a skipped test or module fails the run: every test there must run, the
broker, server and Beam-runner tests included, so a missing dependency cannot pass as a skip.
"""

from __future__ import annotations

import os

import pytest

from support.markers import CRASH, LaunchAnalysis, stronger

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


def _launch_kind(item: pytest.Item, analysis: LaunchAnalysis) -> str | None:
    """`crash`, `subprocess` or None for one test: its function, then every fixture in its closure."""
    function = getattr(item, "function", None)
    if function is None:
        return None
    kind = analysis.kind_of(function, getattr(item, "cls", None))
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in definitions.get(name, ()):
            kind = stronger(kind, analysis.kind_of(fixturedef.func, getattr(item, "cls", None)))
    return kind


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that start processes `subprocess`, those that use the kill -9 harness `crash` too."""
    analysis = LaunchAnalysis()
    for item in items:
        kind = _launch_kind(item, analysis)
        if kind == CRASH:
            item.add_marker(pytest.mark.crash)
        if kind is not None or item.get_closest_marker("crash"):
            item.add_marker(pytest.mark.subprocess)
